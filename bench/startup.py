"""Start-up and exit scenarios: fresh processes every round. Each returns `Row`s."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
from mcp import StdioServerParameters

from bench.harness import BenchError, Workspace, children_of, rss_mb, serve_pid, spawn_window
from bench.results import Row
from bench.scenarios import Config, plural


@dataclass(slots=True)
class Startup:
    initialize_s: float
    listed_s: float
    tools: int
    rss_mb: float | None = None
    spawn_window_s: float | None = None
    """First to last downstream started (kernel start times of the processes)."""


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
        window = spawn_window(children_of(pid)) if pid is not None else None
        return Startup(t_init - t0, t_list - t0, len(tools), rss, window)


async def start_many_direct(ws: Workspace, n: int) -> Startup:
    """`n` SDK clients starting `n` echo servers in parallel; the time until every one has listed its tools."""
    listed = 0
    all_listed = anyio.Event()
    release = anyio.Event()
    inits: list[float] = []
    t_list = 0.0
    window = 0.0
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
        window = spawn_window(children_of(os.getpid()))
        release.set()
    return Startup(max(inits), t_list, 2 * n, spawn_window_s=window)


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
    # instructions (downstream/facts.py); the rows after it are the runs that follow.
    first = [await start_mcpmux(ws, ["echo"], fresh=True) for _ in range(cfg.startup_rounds)]
    direct, mux = await alternate(cfg.startup_rounds, lambda: start_direct(ws), lambda: start_mcpmux(ws, ["echo"]))
    n = plural(cfg.startup_rounds, "round")
    return [
        Row(
            "initialize, first run of a new profile",
            "s",
            [s.initialize_s for s in first],
            [s.initialize_s for s in direct],
            kind="limit",
            limit=1.0,
            target="mcpmux ≤ 1 s",
            note=n + "; servers never seen before",
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
    first = await start_mcpmux(ws, names, fresh=True)  # then the measured runs start as a user's do
    direct, mux = await alternate(cfg.fanout_rounds, lambda: start_many_direct(ws, n), lambda: start_mcpmux(ws, names))
    rss = [s.rss_mb for s in mux if s.rss_mb is not None]
    note = plural(cfg.fanout_rounds, "round")
    rows = [
        Row(
            f"initialize, first run of a new profile, {n} downstreams",
            "s",
            [first.initialize_s],
            kind="limit",
            limit=1.0,
            target="mcpmux ≤ 1 s",
            note="1 round; servers never seen before",
        ),
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
            f"spawn window, {n} downstreams",
            "s",
            [s.spawn_window_s for s in mux if s.spawn_window_s is not None],
            [s.spawn_window_s for s in direct if s.spawn_window_s is not None],
            kind="limit",
            limit=0.3,
            target="mcpmux ≤ 0.3 s",
            note=note + f"; first to last started (kernel start times, 10 ms ticks); direct: {n} clients in parallel",
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
                limit=50,
                target="≤ 50 MB",
                note="after listing and a call to each",
            )
        )
    return rows


# --- exit: the host closes stdin and keeps its end of stdout open -------------------------
def _line(message: Mapping[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"


OPENING = b"".join(
    _line(m)
    for m in (
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    )
)


async def time_exit(ws: Workspace, params: StdioServerParameters) -> float:
    """Seconds from closing the process's stdin (after a handshake and a tools/list) to its exit."""
    env = {**os.environ, **(params.env or {})}
    async with await anyio.open_process([params.command, *params.args], env=env, stderr=ws.errlog) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        await proc.stdin.send(OPENING)
        buffer = b""
        with anyio.fail_after(60):
            while b'"id":2' not in buffer.replace(b" ", b""):
                buffer += await proc.stdout.receive()
        t0 = time.perf_counter()
        await proc.stdin.aclose()
        with anyio.fail_after(60):
            await proc.wait()
        return time.perf_counter() - t0


async def exit_time(ws: Workspace, cfg: Config) -> list[Row]:
    params, _ = ws.prepare_mcpmux(["echo"], fresh=False)
    direct, mux = [], []
    for r in range(cfg.exit_rounds):
        pair = [(direct, ws.direct_params()), (mux, params)]
        for out, p in pair if r % 2 == 0 else reversed(pair):
            out.append(await time_exit(ws, p))
    return [
        Row(
            "exit after the host closes stdin",
            "s",
            mux,
            direct,
            kind="limit",
            limit=0.5,
            target="mcpmux ≤ 0.5 s",
            note=plural(cfg.exit_rounds, "round") + "; the host keeps its end of stdout open",
        )
    ]
