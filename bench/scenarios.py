"""Steady-state scenarios: one session per variant, kept open. Each returns `Row`s.

The variants are mcpmux, the direct connection and the floor (the echo server behind a
bare stdlib line relay). They alternate inside every round, and which goes first rotates
between rounds, so drift in machine load lands on all of them. Start-up and exit
scenarios are in startup.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from bench.harness import BenchError, Endpoint, cpu_seconds, rss_mb
from bench.results import Row, percentile

MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Config:
    rounds: int = 5
    latency_calls: int = 300
    warmup_calls: int = 50
    throughput_calls: int = 1600
    in_flight: tuple[int, ...] = (16, 64)
    payloads: tuple[tuple[int, int], ...] = ((1 * MB, 3), (10 * MB, 6))
    """(size in bytes, calls per round per variant); 10 MB gets enough calls for a p90"""
    modern_era: bool = True
    """Also measure `mcp.Client` (mode 'auto', 2026-07-28 era), skipped by --quick."""
    startup_rounds: int = 3
    fanout: int = 20
    fanout_rounds: int = 3
    exit_rounds: int = 5
    shared_servers: int = 10
    """Servers in the shared-mode scenario (4 hosts; bench/shared_bench.py); 0 skips it."""

    @classmethod
    def quick(cls) -> Config:
        return cls(
            rounds=2,
            latency_calls=100,
            warmup_calls=20,
            throughput_calls=320,
            payloads=((1 * MB, 1), (10 * MB, 2)),
            modern_era=False,
            startup_rounds=1,
            fanout=5,
            fanout_rounds=1,
            exit_rounds=1,
            shared_servers=3,
        )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def ordered(round_no: int, endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints rotated by the round number, so each goes first in turn."""
    k = round_no % len(endpoints)
    return endpoints[k:] + endpoints[:k]


def by_label(endpoints: list[Endpoint], label: str) -> Endpoint | None:
    return next((ep for ep in endpoints if ep.label == label), None)


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


Samples = dict[str, list[list[float]]]
"""Per variant label, one sorted list of per-call values per round."""


async def sample_latency(endpoints: list[Endpoint], cfg: Config, cpu: CpuMeter | None = None) -> tuple[Samples, str]:
    """Per round, the sorted per-call latencies (ms) of sequential calls, in blocks alternating between variants."""
    per_round: Samples = {ep.label: [] for ep in endpoints}
    block = min(50, cfg.latency_calls)
    blocks = max(1, cfg.latency_calls // block)
    for r in range(cfg.rounds):
        samples: dict[str, list[float]] = {ep.label: [] for ep in endpoints}
        for b in range(blocks):
            for ep in ordered(r + b, endpoints):
                out = samples[ep.label]
                meter = cpu if ep.label == "mcpmux" else None
                if meter is not None:
                    meter.start()
                for _ in range(block):
                    t0 = time.perf_counter()
                    await ep.echo("hello")
                    out.append((time.perf_counter() - t0) * 1000)
                if meter is not None:
                    meter.stop(block)
        for label, values in samples.items():
            per_round[label].append(sorted(values))
    return per_round, f"{cfg.rounds}×{block * blocks} calls"


def stat(per_round: Samples, label: str, q: float) -> list[float] | None:
    rounds = per_round.get(label)
    return [percentile(v, q) for v in rounds] if rounds else None


async def latency(endpoints: list[Endpoint], cfg: Config) -> list[Row]:
    mux = by_label(endpoints, "mcpmux")
    cpu = CpuMeter(mux.serve_pid if mux else None)
    per_round, note = await sample_latency(endpoints, cfg, cpu)

    def row(q: float, **target: object) -> Row:
        mcpmux = stat(per_round, "mcpmux", q)
        assert mcpmux is not None
        name = "max" if q == 100 else f"p{q:g}"
        return Row(
            f"sequential echo {name}",
            "ms",
            mcpmux,
            stat(per_round, "direct", q),
            floor=stat(per_round, "floor", q),
            **target,  # pyright: ignore[reportArgumentType]
        )

    rows = [
        row(50, kind="overhead", limit=0.3, max_ratio=1.3, target="≤ +0.3 ms, ≤ 1.3×", note=note),
        row(90),
        row(99, kind="overhead", limit=1.0, target="≤ +1 ms"),
        row(100),
    ]
    if cpu.us_per_call is not None:
        note = "/proc/<pid>/schedstat of mcpmux serve"
        rows.append(Row("mcpmux CPU per call, sequential", "µs", [cpu.us_per_call], note=note))
    return rows


async def modern_latency(direct: Endpoint, mux: Endpoint, cfg: Config) -> list[Row]:
    """The same sequential calls from `mcp.Client` (mode 'auto'): a 2.x SDK server then speaks 2026-07-28."""
    for ep in (direct, mux):
        await ep.echo_checked("warm-up")
        for _ in range(cfg.warmup_calls):
            await ep.echo("warm-up")
    per_round, note = await sample_latency([direct, mux], cfg)
    rows: list[Row] = []
    for q in (50, 99):
        mcpmux = stat(per_round, "mcpmux", q)
        assert mcpmux is not None
        target = {"kind": "overhead", "limit": 0.2, "target": "≤ +0.2 ms"} if q == 50 else {}
        rows.append(
            Row(
                f"mcp.Client (2026-07-28 era) echo p{q}",
                "ms",
                mcpmux,
                stat(per_round, "direct", q),
                note=note if q == 50 else "",
                **target,  # pyright: ignore[reportArgumentType]
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


async def throughput(endpoints: list[Endpoint], cfg: Config) -> list[Row]:
    rows: list[Row] = []
    mux = by_label(endpoints, "mcpmux")
    cpu = CpuMeter(mux.serve_pid if mux else None)
    for in_flight in cfg.in_flight:
        calls = cfg.throughput_calls // in_flight * in_flight
        values: dict[str, list[float]] = {ep.label: [] for ep in endpoints}
        for r in range(cfg.rounds):
            for ep in ordered(r, endpoints):
                if ep is mux:
                    cpu.start()
                values[ep.label].append(await burst(ep, cfg.throughput_calls, in_flight))
                if ep is mux:
                    cpu.stop(calls)
        rows.append(
            Row(
                f"throughput, {in_flight} in flight",
                "calls/s",
                values["mcpmux"],
                values.get("direct"),
                floor=values.get("floor"),
                kind="percent",
                limit=90,
                target="≥ 90 % of direct",
                note=f"{cfg.rounds}×{calls} calls",
            )
        )
    if cpu.us_per_call is not None:
        rows.append(Row("mcpmux CPU per call, in flight", "µs", [cpu.us_per_call], note="all throughput runs"))
    return rows


async def payloads(endpoints: list[Endpoint], cfg: Config) -> list[Row]:
    """Large results: each call's time pooled over the rounds, so the tail (p90, max) has enough calls."""
    for ep in endpoints:
        await ep.blob(MB)  # first large result: buffers grow once, outside the measurement
    rows: list[Row] = []
    for size, calls in cfg.payloads:
        times: dict[str, list[float]] = {ep.label: [] for ep in endpoints}
        for r in range(cfg.rounds):
            for ep in ordered(r, endpoints):
                for _ in range(calls):
                    t0 = time.perf_counter()
                    await ep.blob(size)
                    times[ep.label].append((time.perf_counter() - t0) * 1000)
        pooled = {label: sorted(values) for label, values in times.items()}
        note = f"{cfg.rounds}×{calls} calls pooled"

        def at(label: str, q: float, pooled: dict[str, list[float]] = pooled) -> list[float] | None:
            return [percentile(pooled[label], q)] if label in pooled else None

        mb = size // MB
        if mb < 10:
            rows.append(
                Row(
                    f"blob {mb} MB result p50",
                    "ms",
                    at("mcpmux", 50) or [],
                    at("direct", 50),
                    floor=at("floor", 50),
                    kind="ratio",
                    limit=1.3,
                    target="≤ 1.3× direct",
                    note=note,
                )
            )
            continue
        for q, limit in ((50, 1.05), (90, 1.15), (100, None)):
            name = "max" if q == 100 else f"p{q}"
            rows.append(
                Row(
                    f"blob {mb} MB result {name}",
                    "ms",
                    at("mcpmux", q) or [],
                    at("direct", q),
                    floor=at("floor", q),
                    kind="ratio" if limit else "info",
                    limit=limit,
                    target=f"≤ {limit}× direct" if limit else "",
                    note=note if q == 50 else "",
                )
            )
    return rows


def steady_rss(mux: Endpoint, floor: Endpoint | None) -> Row | None:
    if mux.serve_pid is None:
        return None
    rss, hwm = rss_mb(mux.serve_pid)
    floor_rss = [rss_mb(floor.serve_pid)[0]] if floor is not None and floor.serve_pid is not None else None
    return Row(
        "mcpmux RSS, 1 downstream, after the above",
        "MB",
        [rss],
        floor=floor_rss,
        kind="limit",
        limit=50,
        target="≤ 50 MB",
        note=f"peak (VmHWM) {hwm:.1f} MB",
        extra={"vm_hwm_mb": hwm},
    )
