"""Shared mode: 4 hosts on one profile, each with its own `serve` (non-shared) or attached to one gateway.

In these rows the "direct" column is the non-shared mode and the "mcpmux" column the shared one.
Measured: downstream processes and total RSS (every process of the run's tag: serves, pipes, the
gateway and downstreams) with all hosts connected; spawn → `initialize` answered and → first full
`tools/list` for a host attaching to a running gateway; sequential `tools/call` latency over the
extra hop (blocks alternating between one shared and one non-shared host); throughput of all 4 hosts
at once, 16 calls in flight each (rounds alternating between the shared and the non-shared hosts).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters

from bench.harness import BenchError, Endpoint, Workspace, rss_mb, tagged_processes
from bench.results import Row, percentile
from bench.scenarios import burst

HOSTS = 4
IN_FLIGHT = 16
IDLE_SECONDS = 0.5
"""The shared gateway's grace after its last host: short, so the leftover check finds nothing."""


def _downstreams(pids: list[int]) -> list[int]:
    found: list[int] = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"echo_server.py" in cmdline:
            found.append(pid)
    return found


def _total_rss(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += rss_mb(pid)[0]
        except (OSError, KeyError):
            continue
    return total


class _Host:
    def __init__(self, session: ClientSession, initialize_s: float, listed_s: float) -> None:
        self.endpoint = Endpoint("host", session, prefix="e01__")
        self.initialize_s = initialize_s
        self.listed_s = listed_s


@asynccontextmanager
async def _host(ws: Workspace, params: StdioServerParameters, tools: int) -> AsyncIterator[_Host]:
    t0 = time.perf_counter()
    async with ws.session(params) as session:
        await session.initialize()
        t_init = time.perf_counter()
        listed = (await session.list_tools()).tools
        t_list = time.perf_counter()
        if len(listed) != tools:
            raise BenchError(f"a host listed {len(listed)} tools, not {tools}")
        yield _Host(session, t_init - t0, t_list - t0)


async def _latency(a: Endpoint, b: Endpoint, calls: int, rounds: int) -> tuple[list[float], list[float]]:
    """Per round, the p50 (ms) of sequential echo calls from `a` and from `b`, in alternating blocks."""
    p50s: dict[str, list[float]] = {"a": [], "b": []}
    block = min(50, calls)
    for r in range(rounds):
        samples: dict[str, list[float]] = {"a": [], "b": []}
        for i in range(max(1, calls // block)):
            for label, ep in (("a", a), ("b", b)) if (r + i) % 2 == 0 else (("b", b), ("a", a)):
                for _ in range(block):
                    t0 = time.perf_counter()
                    await ep.echo("hello")
                    samples[label].append((time.perf_counter() - t0) * 1000)
        for label, values in samples.items():
            p50s[label].append(percentile(sorted(values), 50))
    return p50s["a"], p50s["b"]


async def _together(hosts: list[_Host], calls: int) -> float:
    """Calls per second of every host's burst of `calls` echo calls, IN_FLIGHT at a time each, run at once."""
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for host in hosts:
            tg.start_soon(burst, host.endpoint, calls, IN_FLIGHT)
    return len(hosts) * (calls // IN_FLIGHT * IN_FLIGHT) / (time.perf_counter() - t0)


async def _throughput(
    shared: list[_Host], plain: list[_Host], calls: int, rounds: int
) -> tuple[list[float], list[float]]:
    """Per round, calls per second of all hosts at once: attached to the gateway, and each with its own serve."""
    rates: dict[str, list[float]] = {"shared": [], "plain": []}
    sides = [("shared", shared), ("plain", plain)]
    for r in range(rounds):
        for label, hosts in sides if r % 2 == 0 else sides[::-1]:
            rates[label].append(await _together(hosts, calls))
    return rates["shared"], rates["plain"]


async def shared_hosts(ws: Workspace, servers: int, calls: int, rounds: int) -> list[Row]:
    names = [f"e{i + 1:02d}" for i in range(servers)]
    plain, _ = ws.prepare_mcpmux(names, fresh=True)
    async with _host(ws, plain, 2 * servers):
        pass  # a first run: the servers' instructions are remembered, as on a user's machine
    shared = plain.model_copy(
        update={
            "args": [*plain.args, "--shared"],
            "env": {**(plain.env or {}), "MCPMUX_SHARED_IDLE_SECONDS": str(IDLE_SECONDS)},
        }
    )
    async with AsyncExitStack() as stack:
        alone = [await stack.enter_async_context(_host(ws, plain, 2 * servers)) for _ in range(HOSTS)]
        pids = tagged_processes(ws.tag)
        plain_procs, plain_rss = len(_downstreams(pids)), _total_rss(pids)
        async with AsyncExitStack() as shared_stack:
            await shared_stack.enter_async_context(_host(ws, shared, 2 * servers))  # starts the gateway
            attached = [await shared_stack.enter_async_context(_host(ws, shared, 2 * servers)) for _ in range(HOSTS)]
            everyone = tagged_processes(ws.tag)
            shared_pids = [p for p in everyone if p not in pids]
            shared_procs, shared_rss = len(_downstreams(shared_pids)), _total_rss(shared_pids)
            shared_p50, plain_p50 = await _latency(attached[0].endpoint, alone[0].endpoint, calls, rounds)
            burst_calls = max(IN_FLIGHT, calls // IN_FLIGHT * IN_FLIGHT)
            shared_rate, plain_rate = await _throughput(attached, alone, burst_calls, rounds)
    n = f"{HOSTS} hosts, {servers} servers"
    return [
        Row(
            f"shared: downstream processes, {n}",
            "",
            [float(shared_procs)],
            [float(plain_procs)],
            kind="limit",
            limit=float(servers),
            target=f"shared ≤ {servers}",
            note="direct column: non-shared (a serve per host)",
        ),
        Row(
            f"shared: total RSS, {n}",
            "MB",
            [shared_rss],
            [plain_rss],
            kind="ratio",
            limit=0.4,
            target="≤ 0.4× non-shared",
            note="every process of the run: serves or pipes, the gateway, downstreams",
        ),
        Row(
            "shared: initialize answered after spawn, attaching",
            "s",
            [statistics.median(h.initialize_s for h in attached)],
            [statistics.median(h.initialize_s for h in alone)],
            kind="limit",
            limit=0.1,
            target="shared ≤ 100 ms",
            note=f"median of {HOSTS} hosts; non-shared: its own serve",
        ),
        Row(
            "shared: first full tools/list after spawn, attaching",
            "s",
            [statistics.median(h.listed_s for h in attached)],
            [statistics.median(h.listed_s for h in alone)],
            kind="limit",
            limit=0.15,
            target="shared ≤ 150 ms",
            note=f"median of {HOSTS} hosts",
        ),
        Row(
            "shared: sequential echo p50 over the extra hop",
            "ms",
            shared_p50,
            plain_p50,
            kind="overhead",
            limit=0.1,
            target="≤ +0.1 ms",
            note=f"{rounds}×{calls} calls, {HOSTS} hosts attached",
        ),
        Row(
            f"shared: throughput, {HOSTS} hosts × {IN_FLIGHT} in flight",
            "calls/s",
            shared_rate,
            plain_rate,
            kind="percent",
            limit=90,
            target="≥ 90 % of non-shared",
            note=f"{rounds}×{HOSTS}×{burst_calls} calls, all hosts at once",
        ),
    ]
