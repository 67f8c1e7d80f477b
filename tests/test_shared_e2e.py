"""End to end, shared mode: SDK hosts, each with its own `mcpmux serve --shared`, attached to one gateway process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.session import ClientSession, ElicitationFnT
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from mcpmux.paths import state_paths
from mcpmux.shared.address import gateway_key, socket_path
from tests.conftest import REPO, fixture_server_toml, processes_marked_by
from tests.e2e_helpers import audit_events, gateway_pids, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def shared_params(profile: Path, idle: float = 30.0) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpmux", "serve", "--shared", "--profile", str(profile)],
        env={**os.environ, "MCPMUX_SHARED_IDLE_SECONDS": str(idle)},
        cwd=str(REPO),
    )


@asynccontextmanager
async def shared_host(profile: Path, idle: float = 30.0, **session_options: Any) -> AsyncGenerator[ClientSession]:
    params = shared_params(profile, idle)
    async with stdio_client(params) as (read, write), ClientSession(read, write, **session_options) as session:
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def status_json() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", "status", "--json"], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(done.stdout)["serves"]


async def test_hosts_attached_to_one_gateway_share_one_process_per_downstream(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    answers: dict[int, str] = {}
    attached = anyio.Event()
    done = [anyio.Event() for _ in range(3)]
    statuses: list[list[dict[str, Any]]] = []
    gateway, processes, pipes = 0, list[int](), list[bytes]()

    async def host(i: int) -> None:
        async with shared_host(profile) as session:
            answers[i] = text_of(await session.call_tool("alpha__echo", {"text": f"host {i}"}))
            done[i].set()
            await attached.wait()

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(host, i)
        with anyio.fail_after(60):
            for event in done:
                await event.wait()
        statuses = [await anyio.to_thread.run_sync(status_json)]
        pipes = [cmdline(h["pipe_pid"]) for s in statuses[0] for h in s.get("hosts", [])]
        (gateway,) = gateway_pids(mcpmux_home)
        processes = processes_marked_by(gateway)
        attached.set()
    assert answers == {0: "host 0", 1: "host 1", 2: "host 2"}
    assert len(processes) == 2  # alpha and beta, once each, for three hosts
    (shown,) = [s for s in statuses[0] if s.get("shared")]
    assert shown["pid"] == gateway
    assert len(shown["hosts"]) == 3
    assert {h["name"] for h in shown["hosts"]} == {"mcp"}  # the SDK client's default name
    assert {h["stdio"] for h in shown["hosts"]} == {"handed over"}  # the gateway serves each host's pipes itself
    assert len(pipes) == 3 and all(b"pump.py" in cmdline for cmdline in pipes)  # each serve became the bare pipe
    assert [e.get("serve") for e in audit_events(mcpmux_home, "tool_call")].count(None) == 0


async def test_a_host_detaching_leaves_another_hosts_call_running(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    progressed = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    async with shared_host(profile) as staying:
        async with shared_host(profile) as leaving:
            assert text_of(await leaving.call_tool("alpha__echo", {"text": "bye"})) == "bye"
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: staying.call_tool("alpha__slow", {"steps": 1}, progress_callback=on_progress))
                with anyio.fail_after(30):
                    await progressed.wait()
                tg.cancel_scope.cancel()  # the staying host cancels its own call: nothing else ended it
        after = text_of(await staying.call_tool("alpha__echo", {"text": "still here"}))
    assert after == "still here"
    assert len(gateway_pids(mcpmux_home)) == 1


async def test_the_gateway_exits_after_its_last_host_and_the_grace_leaving_no_process(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with shared_host(profile, idle=0.5) as session:
        await session.call_tool("alpha__echo", {"text": "x"})
        (gateway,) = gateway_pids(mcpmux_home)
        assert len(processes_marked_by(gateway)) == 1
    await wait_for_exit(gateway, 20)
    assert processes_marked_by(gateway) == []
    assert not socket_path(state_paths(), gateway_key(profile)).exists()
    stops = [e for e in audit_events(mcpmux_home, "serve_stop") if e.get("shared")]
    assert [e["reason"] for e in stops] == ["idle: no host attached"]
    (attached,) = audit_events(mcpmux_home, "host_attached")
    assert (attached["host"], attached["era"]) == ("mcp", "handshake")
    assert isinstance(attached["pipe_pid"], int)


async def test_a_gateway_that_dies_fails_the_call_in_flight_and_the_next_serve_starts_another(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    progressed = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    failed: list[BaseException] = []
    async with shared_host(profile) as session:
        (first,) = gateway_pids(mcpmux_home)
        downstreams = processes_marked_by(first)

        async def call() -> None:
            try:
                await session.call_tool("alpha__slow", {"steps": 1}, progress_callback=on_progress)
            except MCPError as exc:
                failed.append(exc)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await progressed.wait()
                os.kill(first, signal.SIGKILL)
    assert failed, "the call in flight got no error"
    for pid in downstreams:  # PR_SET_PDEATHSIG ends a dead gateway's children
        await wait_for_exit(pid, 10)
    async with shared_host(profile) as session:
        again = text_of(await session.call_tool("alpha__echo", {"text": "again"}))
    assert again == "again"
    assert len(gateway_pids(mcpmux_home)) == 2


async def test_a_gateway_of_another_version_is_left_alone_and_serve_runs_in_process(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    path = socket_path(state_paths(), gateway_key(profile))
    path.parent.mkdir(parents=True, mode=0o700)
    hellos: list[bytes] = []
    answer = ""

    async def other_version(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            hellos.append(await stream.receive())
            await stream.send(b'{"mcpmux":"attached","protocol":1,"version":"0.0.1-other","pid":1}\n')

    async with await anyio.create_unix_listener(path) as listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, other_version)
        async with shared_host(profile) as session:
            answer = text_of(await session.call_tool("alpha__echo", {"text": "in-process"}))
        tg.cancel_scope.cancel()
    assert answer == "in-process"
    assert hellos and all(b'"attach"' in hello for hello in hellos)  # asked (fast path, then the full command)
    assert gateway_pids(mcpmux_home) == []  # the serve ran the profile itself


async def test_hosts_of_both_eras_each_get_their_own_elicitation_and_progress(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    asked: dict[str, int] = {"old": 0, "modern": 0}
    heard: dict[str, list[float]] = {"old": [], "modern": []}
    results: dict[str, str] = {}

    def elicit_as(who: str) -> ElicitationFnT:
        async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
            asked[who] += 1
            return types.ElicitResult(action="accept", content={"answer": f"from {who}"})

        return elicit

    def progress_of(who: str) -> ProgressFnT:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            heard[who].append(progress)

        return on_progress

    async with (
        shared_host(profile, elicitation_callback=elicit_as("old")) as old,
        Client(shared_params(profile), mode="auto", elicitation_callback=elicit_as("modern")) as modern,
    ):
        with anyio.fail_after(60):  # one after the other: a server's request names no call (front/hosts.py)
            for who, host in (("old", old), ("modern", modern)):
                result = await host.call_tool("alpha__ask_then_work", {"steps": 2}, progress_callback=progress_of(who))
                results[who] = text_of(result)
    assert results == {"old": "from old", "modern": "from modern"}
    assert asked == {"old": 1, "modern": 1}
    assert heard == {"old": [1.0, 2.0], "modern": [1.0, 2.0]}
    assert len(gateway_pids(mcpmux_home)) == 1
