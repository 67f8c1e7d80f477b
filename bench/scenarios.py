"""The scenarios. Each returns `Row`s with one value per round for each variant.

Variants alternate inside every round (and which goes first alternates between
rounds), so drift in machine load lands on both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from bench.harness import BenchError, Endpoint, Workspace, cpu_seconds, rss_mb, serve_pid
from bench.results import Row, percentile

MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Config:
    rounds: int = 5
    latency_calls: int = 300
    warmup_calls: int = 50
    throughput_calls: int = 1600
    in_flight: tuple[int, ...] = (16, 64)
    payloads: tuple[tuple[int, int], ...] = ((1 * MB, 3), (10 * MB, 2))
    """(size in bytes, calls per round per variant)"""
    modern_era: bool = True
    """Also measure `mcp.Client` (mode 'auto', 2026-07-28 era); info only, skipped by --quick."""
    startup_rounds: int = 3
    fanout: int = 20
    fanout_rounds: int = 3

    @classmethod
    def quick(cls) -> Config:
        return cls(
            rounds=2,
            latency_calls=100,
            warmup_calls=20,
            throughput_calls=320,
            payloads=((1 * MB, 1), (10 * MB, 1)),
            modern_era=False,
            startup_rounds=1,
            fanout=5,
            fanout_rounds=1,
        )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def ordered(round_no: int, a: Endpoint, b: Endpoint) -> tuple[Endpoint, Endpoint]:
    return (a, b) if round_no % 2 == 0 else (b, a)


# --- steady state: one session each, kept open -------------------------------------------
async def warm_up(endpoints: list[Endpoint], calls: int) -> None:
    for ep in endpoints:
        names = {t.name for t in (await ep.session.list_tools()).tools}
        if {ep.prefix + "echo", ep.prefix + "blob"} - names:
            raise BenchError(f"{ep.label}: tools missing from {sorted(names)}")
        await ep.echo_checked("warm-up")
        for _ in range(calls):
            await ep.echo("warm-up")


class CpuMeter:
    """CPU time `mcpmux serve` spends, summed over the stretches it is measured."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.seconds = 0.0
        self.calls = 0
        self._t0 = 0.0

    def start(self) -> None:
        if self.pid is not None:
            self._t0 = cpu_seconds(self.pid)

    def stop(self, calls: int) -> None:
        if self.pid is not None:
            self.seconds += cpu_seconds(self.pid) - self._t0
            self.calls += calls

    @property
    def us_per_call(self) -> float | None:
        return self.seconds / self.calls * 1e6 if self.calls else None


async def sample_latency(
    direct: Endpoint, mux: Endpoint, cfg: Config, cpu: CpuMeter | None = None
) -> tuple[dict[str, list[list[float]]], str]:
    """Per round, the sorted per-call latencies (ms) of sequential calls, in blocks alternating between variants."""
    per_round: dict[str, list[list[float]]] = {"direct": [], "mcpmux": []}
    block = min(50, cfg.latency_calls)
    for r in range(cfg.rounds):
        samples: dict[str, list[float]] = {"direct": [], "mcpmux": []}
        for b in range(max(1, cfg.latency_calls // block)):
            for ep in ordered(r + b, direct, mux):
                out = samples[ep.label]
                if cpu is not None and ep is mux:
                    cpu.start()
                for _ in range(block):
                    t0 = time.perf_counter()
                    await ep.echo("hello")
                    out.append((time.perf_counter() - t0) * 1000)
                if cpu is not None and ep is mux:
                    cpu.stop(block)
        for label, values in samples.items():
            per_round[label].append(sorted(values))
    return per_round, f"{cfg.rounds}×{block * max(1, cfg.latency_calls // block)} calls"


async def latency(direct: Endpoint, mux: Endpoint, cfg: Config) -> list[Row]:
    cpu = CpuMeter(mux.serve_pid)
    per_round, note = await sample_latency(direct, mux, cfg, cpu)

    def stat(label: str, q: float) -> list[float]:
        return [percentile(v, q) for v in per_round[label]]

    rows = [
        Row(
            "sequential echo p50",
            "ms",
            stat("mcpmux", 50),
            stat("direct", 50),
            kind="overhead",
            limit=0.3,
            max_ratio=1.3,
            target="≤ +0.3 ms, ≤ 1.3×",
            note=note,
        ),
        Row("sequential echo p90", "ms", stat("mcpmux", 90), stat("direct", 90)),
        Row(
            "sequential echo p99",
            "ms",
            stat("mcpmux", 99),
            stat("direct", 99),
            kind="overhead",
            limit=1.0,
            target="≤ +1 ms",
        ),
        Row("sequential echo max", "ms", stat("mcpmux", 100), stat("direct", 100)),
    ]
    if cpu.us_per_call is not None:
        rows.append(
            Row(
                "mcpmux CPU per call, sequential",
                "µs",
                [cpu.us_per_call],
                note="/proc/<pid>/schedstat of mcpmux serve",
            )
        )
    return rows


async def modern_latency(direct: Endpoint, mux: Endpoint, cfg: Config) -> list[Row]:
    """The same sequential calls from `mcp.Client` (mode 'auto'): a 2.x SDK server then speaks 2026-07-28."""
    for ep in (direct, mux):
        await ep.echo_checked("warm-up")
        for _ in range(cfg.warmup_calls):
            await ep.echo("warm-up")
    per_round, note = await sample_latency(direct, mux, cfg)
    rows: list[Row] = []
    for q in (50, 99):
        mux_values = [percentile(v, q) for v in per_round["mcpmux"]]
        direct_values = [percentile(v, q) for v in per_round["direct"]]
        rows.append(
            Row(
                f"mcp.Client (2026-07-28 era) echo p{q}",
                "ms",
                mux_values,
                direct_values,
                target="info: era not in the targets",
                note=note if q == 50 else "",
            )
        )
    return rows


async def burst(ep: Endpoint, total: int, in_flight: int) -> float:
    """Calls per second for `total` echo calls made by `in_flight` concurrent tasks."""
    each = total // in_flight

    async def worker() -> None:
        for _ in range(each):
            await ep.echo("x")

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(in_flight):
            tg.start_soon(worker)
    return each * in_flight / (time.perf_counter() - t0)


async def throughput(direct: Endpoint, mux: Endpoint, cfg: Config) -> list[Row]:
    rows: list[Row] = []
    cpu = CpuMeter(mux.serve_pid)
    for in_flight in cfg.in_flight:
        values: dict[str, list[float]] = {"direct": [], "mcpmux": []}
        for r in range(cfg.rounds):
            for ep in ordered(r, direct, mux):
                if ep is mux:
                    cpu.start()
                values[ep.label].append(await burst(ep, cfg.throughput_calls, in_flight))
                if ep is mux:
                    cpu.stop(cfg.throughput_calls // in_flight * in_flight)
        rows.append(
            Row(
                f"throughput, {in_flight} in flight",
                "calls/s",
                values["mcpmux"],
                values["direct"],
                kind="percent",
                limit=90,
                target="≥ 90 % of direct",
                note=f"{cfg.rounds}×{cfg.throughput_calls // in_flight * in_flight} calls",
            )
        )
    if cpu.us_per_call is not None:
        rows.append(Row("mcpmux CPU per call, in flight", "µs", [cpu.us_per_call], note="all throughput runs"))
    return rows


async def payloads(direct: Endpoint, mux: Endpoint, cfg: Config) -> list[Row]:
    for ep in (direct, mux):
        await ep.blob(MB)  # first large result: buffers grow once, outside the measurement
    rows: list[Row] = []
    for size, calls in cfg.payloads:
        values: dict[str, list[float]] = {"direct": [], "mcpmux": []}
        for r in range(cfg.rounds):
            for ep in ordered(r, direct, mux):
                times: list[float] = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    await ep.blob(size)
                    times.append((time.perf_counter() - t0) * 1000)
                values[ep.label].append(sorted(times)[len(times) // 2])
        rows.append(
            Row(
                f"blob {size // MB} MB result",
                "ms",
                values["mcpmux"],
                values["direct"],
                kind="ratio",
                limit=1.3,
                target="≤ 1.3× direct",
                note=f"{cfg.rounds}×{calls} calls",
            )
        )
    return rows


def steady_rss(mux: Endpoint) -> Row | None:
    if mux.serve_pid is None:
        return None
    rss, hwm = rss_mb(mux.serve_pid)
    return Row(
        "mcpmux RSS, 1 downstream, after the above",
        "MB",
        [rss],
        note=f"peak (VmHWM) {hwm:.1f} MB",
        extra={"vm_hwm_mb": hwm},
    )


# --- start-up: fresh processes every round ------------------------------------------------
@dataclass(slots=True)
class Startup:
    initialize_s: float
    listed_s: float
    tools: int
    rss_mb: float | None = None


async def start_direct(ws: Workspace) -> Startup:
    t0 = time.perf_counter()
    async with ws.session(ws.direct_params()) as session:
        await session.initialize()
        t_init = time.perf_counter()
        tools = (await session.list_tools()).tools
        return Startup(t_init - t0, time.perf_counter() - t0, len(tools))


async def start_mcpmux(ws: Workspace, names: list[str], *, fresh: bool = False) -> Startup:
    params, home = ws.prepare_mcpmux(names, fresh=fresh)
    downstreams = len(names)
    t0 = time.perf_counter()
    async with ws.session(params) as session:
        await session.initialize()
        t_init = time.perf_counter()
        tools = (await session.list_tools()).tools
        t_list = time.perf_counter()
        if len(tools) != 2 * downstreams:
            raise BenchError(f"mcpmux listed {len(tools)} tools for {downstreams} downstreams")
        for tool in tools:
            if tool.name.endswith("__echo"):
                result = await session.call_tool(tool.name, {"text": "rss"})
                if result.is_error:
                    raise BenchError(f"mcpmux: {tool.name} failed")
        pid = serve_pid(home)
        rss = rss_mb(pid)[0] if pid is not None else None
        return Startup(t_init - t0, t_list - t0, len(tools), rss)


async def start_many_direct(ws: Workspace, n: int) -> Startup:
    """`n` SDK clients starting `n` echo servers in parallel; the time until every one has listed its tools."""
    listed = 0
    all_listed = anyio.Event()
    release = anyio.Event()
    inits: list[float] = []
    t_list = 0.0
    t0 = time.perf_counter()

    async def one(name: str) -> None:
        nonlocal listed
        async with ws.session(ws.direct_params(name)) as session:
            await session.initialize()
            inits.append(time.perf_counter() - t0)
            await session.list_tools()
            listed += 1
            if listed == n:
                all_listed.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, f"e{i + 1:02d}")
        await all_listed.wait()
        t_list = time.perf_counter() - t0
        release.set()
    return Startup(max(inits), t_list, 2 * n)


async def alternate(
    rounds: int, a: Callable[[], Awaitable[Startup]], b: Callable[[], Awaitable[Startup]]
) -> tuple[list[Startup], list[Startup]]:
    got_a: list[Startup] = []
    got_b: list[Startup] = []
    for r in range(rounds):
        if r % 2 == 0:
            got_a.append(await a())
            got_b.append(await b())
        else:
            got_b.append(await b())
            got_a.append(await a())
    return got_a, got_b


async def startup(ws: Workspace, cfg: Config) -> list[Row]:
    # The first run of a profile waits (boundedly) for servers never seen, to learn their
    # instructions (mcpmux/server_facts.py); the rows below are the runs after it.
    first = [await start_mcpmux(ws, ["echo"], fresh=True) for _ in range(cfg.startup_rounds)]
    direct, mux = await alternate(cfg.startup_rounds, lambda: start_direct(ws), lambda: start_mcpmux(ws, ["echo"]))
    n = plural(cfg.startup_rounds, "round")
    return [
        Row(
            "initialize, first run of a new profile",
            "s",
            [s.initialize_s for s in first],
            [s.initialize_s for s in direct],
            kind="info",
            note=n + "; waits for servers never seen (their instructions)",
        ),
        Row(
            "initialize answered after spawn",
            "s",
            [s.initialize_s for s in mux],
            [s.initialize_s for s in direct],
            kind="limit",
            limit=1.0,
            target="mcpmux ≤ 1 s",
            note=n,
        ),
        Row(
            "first tools/list result after spawn",
            "s",
            [s.listed_s for s in mux],
            [s.listed_s for s in direct],
            kind="info",
            note=n,
        ),
    ]


async def fanout(ws: Workspace, cfg: Config) -> list[Row]:
    n = cfg.fanout
    names = [f"e{i + 1:02d}" for i in range(n)]
    await start_mcpmux(ws, names, fresh=True)  # a first run, so the measured ones start as a user's do
    direct, mux = await alternate(cfg.fanout_rounds, lambda: start_many_direct(ws, n), lambda: start_mcpmux(ws, names))
    rss = [s.rss_mb for s in mux if s.rss_mb is not None]
    note = plural(cfg.fanout_rounds, "round")
    rows = [
        Row(
            f"initialize answered, {n} downstreams",
            "s",
            [s.initialize_s for s in mux],
            [s.initialize_s for s in direct],
            kind="limit",
            limit=1.0,
            target="mcpmux ≤ 1 s",
            note=note + "; direct: slowest client",
        ),
        Row(
            f"full catalog, {n} downstreams",
            "s",
            [s.listed_s for s in mux],
            [s.listed_s for s in direct],
            kind="ratio",
            limit=1.2,
            target="≤ 1.2× direct",
            note=note + f"; direct: {n} clients in parallel",
        ),
    ]
    if rss:
        rows.append(
            Row(
                f"mcpmux RSS, {n} downstreams",
                "MB",
                rss,
                kind="limit",
                limit=80,
                target="≤ 80 MB",
                note="after listing and a call to each",
            )
        )
    return rows
