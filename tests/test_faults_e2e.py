"""Fault injection through `mcpmux serve`: servers that never answer, start slowly, exit, flood stderr, ignore SIGTERM.

Every test drives a real `mcpmux serve` over stdio with `tests/fixtures/faulty_server.py` below it. Two tests
also measure (printed with `pytest -s`): how fast a host's `initialize` is answered while a downstream is still
starting, and the restart latency after a crash.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
import orjson
import pytest

from tests.conftest import FIXTURES, REPO, fixture_server_toml, host_session, processes_marked_by
from tests.e2e_helpers import ListChanged, audit_events, serve_pid, server_log, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
FAULTY = FIXTURES / "faulty_server.py"
SMALL_BUDGET = "restart = { max_restarts = 1, window_seconds = 60, backoff_initial_seconds = 0.1 }"


def faulty(name: str, *flags: str, settings: str = "") -> str:
    args = ", ".join(f'"{a}"' for a in [str(FAULTY), "--name", name, *flags])
    return f'[servers.{name}]\ncommand = "{sys.executable}"\nargs = [{args}]\n{settings}\n'


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def wait_for_event(home: Path, event: str, server: str, seconds: float = 20.0) -> dict[str, Any]:
    """The first audit event of a kind for a server; polled, because the audit log signals nothing."""
    with anyio.fail_after(seconds):
        while True:
            found = [e for e in audit_events(home, event) if e.get("server") == server]
            if found:
                return found[0]
            await anyio.sleep(0.1)


async def tool_names(host: Any) -> set[str]:
    return {t.name for t in (await host.list_tools()).tools}


# --- start-up -------------------------------------------------------------------------------------


async def test_a_server_that_never_answers_initialize_fails_after_its_startup_timeout_naming_its_log(
    write_profile: WriteProfile, mcpmux_home: Path
):
    silent = faulty("silent", "--never-answer-initialize", settings=f"startup_timeout_seconds = 2\n{SMALL_BUDGET}")
    profile = write_profile(silent + fixture_server_toml("alpha"))
    began = time.monotonic()
    async with host_session(profile) as host:
        names = await tool_names(host)  # waits for every first start attempt, the silent one included
        listed_after = time.monotonic() - began
        served = await host.call_tool("alpha__echo", {"text": "still serving"})
        failed = await wait_for_event(mcpmux_home, "downstream_failed", "silent")
        after_failure = await host.call_tool("alpha__echo", {"text": "after the failure"})
    log = server_log(mcpmux_home, "silent")
    assert 1.5 < listed_after < 15  # one startup timeout of 2 s, not the 30 s default nor the host's wait bound
    assert "alpha__echo" in names
    assert not any(n.startswith("silent__") for n in names)
    assert text_of(served) == "still serving"
    assert text_of(after_failure) == "after the failure"
    assert "server 'silent' did not finish starting within 2 s" in failed["error"]
    assert str(log) in failed["error"]
    assert failed["log"] == str(log)
    assert [e["server"] for e in audit_events(mcpmux_home, "downstream_restart")] == ["silent"]


async def test_initialize_is_answered_at_once_while_a_slow_server_starts_and_tools_list_waits_for_it(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(faulty("slow", "--slow-start", "5") + fixture_server_toml("alpha"))
    timings: list[tuple[float, float]] = []
    for run in ("first", "second"):  # the first run learns the servers' instructions (server_facts.py)
        began = time.monotonic()
        async with host_session(profile) as host:
            initialized = time.monotonic() - began
            started_before_initialize = [e["server"] for e in audit_events(mcpmux_home, "downstream_start")]
            names = await tool_names(host)
            listed = time.monotonic() - began
        print(f"\n{run} run: initialize after {initialized:.2f} s; full catalog after {listed:.2f} s (slow start 5 s)")
        timings.append((initialized, listed))
        assert started_before_initialize.count("slow") == len(timings) - 1  # the slow one never, this run
        assert 5.0 < listed < 25  # tools/list waited for the slow server, bounded
        assert {"slow__echo", "alpha__echo"} <= names
    # First run: initialize waits for servers never seen until mcpmux is FIRST_ANSWER_BY_SECONDS (0.85 s)
    # old (or its own start-up, if slower), never for the slow server's 5 s; afterwards it never waits for a downstream.
    assert timings[0][0] < 5.0
    assert timings[1][0] < 3.0


# --- run time -------------------------------------------------------------------------------------


async def test_the_call_after_a_server_exits_gets_an_answer_and_the_server_is_restarted(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(faulty("brief", "--exit-after", "2"))
    async with host_session(profile) as host:
        with anyio.fail_after(10):
            first = await host.call_tool("brief__echo", {"text": "one"})
            second = await host.call_tool("brief__echo", {"text": "two"})
            third = await host.call_tool("brief__echo", {"text": "three"})  # an answer, never a hang
        restart = await wait_for_event(mcpmux_home, "downstream_restart", "brief")
        with anyio.fail_after(20):
            while True:  # the restart is asynchronous; poll its observable effect, bounded
                back = await host.call_tool("brief__echo", {"text": "back"})
                if not back.is_error:
                    break
                await anyio.sleep(0.1)
    assert (text_of(first), text_of(second)) == ("one", "two")
    assert third.is_error or text_of(third) == "three"
    if third.is_error:  # "server 'brief' closed its stdout (log: …)", or "unknown tool 'brief__echo'" once it left
        assert "brief" in text_of(third)
    assert restart["attempt"] == 1
    assert [e["exit_code"] for e in audit_events(mcpmux_home, "downstream_exit")][:1] == [0]
    assert text_of(back) == "back"


async def test_a_server_past_its_restart_budget_is_failed_and_its_tools_leave_the_catalog(
    write_profile: WriteProfile, mcpmux_home: Path
):
    changes = ListChanged()
    profile = write_profile(faulty("flaky", "--exit-after", "1", settings=SMALL_BUDGET) + fixture_server_toml("alpha"))
    async with host_session(profile, message_handler=changes) as host:
        before = await tool_names(host)
        with anyio.fail_after(10):
            await host.call_tool("flaky__echo", {"text": "first life"})  # exits after answering
        with anyio.fail_after(20):
            while True:  # restarted once (the whole budget); its tools come back
                again = await host.call_tool("flaky__echo", {"text": "second life"})
                if not again.is_error:
                    break
                await anyio.sleep(0.1)
        failed = await wait_for_event(mcpmux_home, "downstream_failed", "flaky")
        with anyio.fail_after(10):
            while any(n.startswith("flaky__") for n in await tool_names(host)):
                await changes.wait()
        after = await tool_names(host)
        refused = await host.call_tool("flaky__echo", {"text": "third life"})
        served = await host.call_tool("alpha__echo", {"text": "the rest keep serving"})
    assert "flaky__echo" in before
    assert text_of(again) == "second life"
    assert failed["error"] == "exited with code 0"
    assert "alpha__echo" in after
    assert not any(n.startswith("flaky__") for n in after)
    assert refused.is_error
    assert text_of(served) == "the rest keep serving"
    assert len(audit_events(mcpmux_home, "downstream_restart")) == 1


async def test_a_server_that_crashes_at_every_start_is_failed_once_its_budget_is_spent(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(faulty("doomed", "--crash-at-start", settings=SMALL_BUDGET) + fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        failed = await wait_for_event(mcpmux_home, "downstream_failed", "doomed")
        names = await tool_names(host)
        served = await host.call_tool("alpha__echo", {"text": "unaffected"})
    restarts = [e for e in audit_events(mcpmux_home, "downstream_restart") if e["server"] == "doomed"]
    assert len(restarts) == 1  # a crash at start is retried like a runtime crash, within the budget
    assert "doomed" in failed["error"]
    assert not any(n.startswith("doomed__") for n in names)
    assert text_of(served) == "unaffected"
    assert server_log(mcpmux_home, "doomed").read_text().count("crashing at start as asked") == 2


async def test_a_server_that_floods_stderr_before_serving_starts_and_its_log_holds_the_flood(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(faulty("loud", "--stderr-flood", "20"))
    async with host_session(profile) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("loud__echo", {"text": "heard over the noise"})
    log = server_log(mcpmux_home, "loud")
    assert text_of(result) == "heard over the noise"
    assert log.stat().st_size >= 20 * 1024 * 1024


# --- shutdown -------------------------------------------------------------------------------------


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


async def read_replies(stream: anyio.abc.ByteReceiveStream, count: int) -> list[dict[str, Any]]:
    buffer = b""
    replies: list[dict[str, Any]] = []
    while len(replies) < count:
        buffer += await stream.receive()
        *lines, buffer = buffer.split(b"\n")
        replies += [m for m in map(orjson.loads, lines) if "id" in m and "method" not in m]
    return replies


async def test_when_the_host_closes_stdin_serve_ends_a_server_that_ignores_eof_and_sigterm(
    write_profile: WriteProfile, mcpmux_home: Path, tmp_path: Path
):
    profile = write_profile(faulty("stubborn", "--ignore-sigterm", "--linger", "--spawn-grandchild"))
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}
    with (tmp_path / "serve.err").open("wb") as errors:
        async with await anyio.open_process(
            [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO, stderr=errors
        ) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            await proc.stdin.send(
                line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
                + line({"jsonrpc": "2.0", "method": "notifications/initialized"})
                + line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            )
            with anyio.fail_after(30):
                replies = await read_replies(proc.stdout, 2)
            pid = serve_pid(mcpmux_home)
            tree = processes_marked_by(pid)
            closed = time.monotonic()
            await proc.stdin.aclose()
            with anyio.fail_after(15):  # stdin close 2 s + SIGTERM 2 s + SIGKILL, with room
                code = await proc.wait()
            took = time.monotonic() - closed
            for child in tree:
                await wait_for_exit(child, seconds=5)
    print(f"\nserve ended a downstream ignoring EOF and SIGTERM {took:.2f} s after stdin closed")
    assert any(t["name"] == "stubborn__echo" for r in replies if r["id"] == 2 for t in r["result"]["tools"])
    assert len(tree) == 2  # the server and its grandchild
    assert code == 0
    assert took < 10
    assert processes_marked_by(pid) == []


# --- measurement ----------------------------------------------------------------------------------


async def test_a_crashed_server_serves_again_within_a_bounded_restart_latency(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        await host.list_tools()
        with anyio.fail_after(10):
            crashed = await host.call_tool("alpha__crash", {})
        errored = time.monotonic()
        attempts = 0
        with anyio.fail_after(30):
            while True:  # nothing signals "restarted" to the caller; poll with a short sleep, bounded
                attempts += 1
                result = await host.call_tool("alpha__echo", {"text": "back"})
                if not result.is_error:
                    break
                await anyio.sleep(0.02)
        latency = time.monotonic() - errored
    print(f"\nrestart latency: {latency:.3f} s from the crash's error result to the first success ({attempts} calls)")
    assert crashed.is_error
    assert text_of(result) == "back"
    assert latency < 15


# --- restarts as the host sees them ---------------------------------------------------------------


async def test_a_call_to_a_restarting_server_says_it_is_restarting_and_names_its_log(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(faulty("brief", "--exit-after", "1", settings="restart = { backoff_initial_seconds = 5 }"))
    async with host_session(profile) as host:
        with anyio.fail_after(10):
            await host.call_tool("brief__echo", {"text": "one"})  # exits after answering
        await wait_for_event(mcpmux_home, "downstream_restart", "brief")  # written before the 5 s backoff
        during = await host.call_tool("brief__echo", {"text": "two"})
    assert during.is_error
    assert "restarting" in text_of(during)
    assert str(server_log(mcpmux_home, "brief")) in text_of(during)


async def test_restart_max_restarts_is_validated_as_a_whole_count(tmp_path: Path):
    zero, fraction = tmp_path / "zero.toml", tmp_path / "fraction.toml"  # validate needs no trust
    zero.write_text('[servers.a]\ncommand = "true"\nrestart = { max_restarts = 0 }\n')
    fraction.write_text('[servers.a]\ncommand = "true"\nrestart = { max_restarts = 2.5 }\n')
    with anyio.fail_after(60):
        never = await anyio.run_process([sys.executable, "-m", "mcpmux", "validate", str(zero)], check=False)
        partial = await anyio.run_process([sys.executable, "-m", "mcpmux", "validate", str(fraction)], check=False)
    assert never.returncode == 0, never.stderr  # 0 means: never restart
    assert partial.returncode == 1
    assert b"max_restarts: must be a whole number" in partial.stderr


async def test_a_host_that_sigterms_serve_mid_shutdown_leaves_no_downstream_or_grandchild(
    write_profile: WriteProfile, mcpmux_home: Path
):
    """The SDK's stdio client closes stdin, and 2 s later SIGTERMs (then SIGKILLs) the server's group.

    serve is then still waiting for a downstream that ignores EOF; it must end that downstream's
    whole group at once rather than die midway, which would orphan the grandchild.
    """
    profile = write_profile(faulty("stubborn", "--ignore-sigterm", "--linger", "--spawn-grandchild"))
    async with host_session(profile) as host:
        await host.list_tools()
        pid = serve_pid(mcpmux_home)
        tree = processes_marked_by(pid)
    await wait_for_exit(pid)
    for child in tree:
        await wait_for_exit(child, seconds=5)
    assert len(tree) == 2  # the server and its grandchild
    assert processes_marked_by(pid) == []
    stop = audit_events(mcpmux_home, "serve_stop")
    assert stop and stop[-1]["reason"] == "the host closed stdin"  # a clean end, not a kill
