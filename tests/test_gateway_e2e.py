"""End to end: an SDK client as the host, `mcpmux serve` as a subprocess, real downstreams over stdio."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from tests.conftest import fixture_server_toml, host_session, processes_marked_by
from tests.e2e_helpers import audit_events, serve_pid, server_log, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_host_sees_tools_of_two_downstreams_namespaced_and_denied_ones_hidden(write_profile: WriteProfile):
    profile = write_profile(
        fixture_server_toml("alpha") + fixture_server_toml("beta") + '[policy]\ndeny = ["*__delete_*"]\n'
    )
    async with host_session(profile) as host:
        names = {t.name for t in (await host.list_tools()).tools}
    assert {"alpha__echo", "beta__echo", "alpha__show_env", "beta__blob"} <= names
    assert not any("delete_everything" in n for n in names)


async def test_a_call_is_routed_to_its_server_and_the_result_passes_through(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    async with host_session(profile) as host:
        result = await host.call_tool("beta__echo", {"text": "hello through the gateway"})
        failed = await host.call_tool("alpha__fail", {"message": "boom"})
    assert not result.is_error
    assert text_of(result) == "hello through the gateway"
    assert result.structured_content == {"result": "hello through the gateway"}
    assert failed.is_error
    assert "boom" in text_of(failed)


async def test_a_denied_tool_is_refused_at_call_time_naming_the_rule(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + '[policy]\ndeny = ["*__delete_*"]\n')
    async with host_session(profile) as host:
        result = await host.call_tool("alpha__delete_everything", {})
    assert result.is_error
    assert "alpha__delete_everything" in text_of(result)
    assert 'policy.deny[0] "*__delete_*"' in text_of(result)


async def test_an_unknown_tool_is_an_error_result_suggesting_the_closest_name(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        result = await host.call_tool("alpha__ecko", {"text": "x"})
    assert result.is_error
    assert "unknown tool 'alpha__ecko'" in text_of(result)
    assert "alpha__echo" in text_of(result)


async def test_a_downstream_sees_its_profile_env_but_not_the_parent_environment(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha", env='{ GREETING = "hi" }'))
    async with host_session(profile, env={"PARENT_ONLY_CREDENTIAL": "must-not-leak"}) as host:
        greeting = await host.call_tool("alpha__show_env", {"name": "GREETING"})
        leaked = await host.call_tool("alpha__show_env", {"name": "PARENT_ONLY_CREDENTIAL"})
        names = await host.call_tool("alpha__env_names", {})
    assert text_of(greeting) == "hi"
    assert text_of(leaked) == "<unset>"
    assert names.structured_content is not None
    assert "MCPMUX_HOME" not in names.structured_content["result"]


async def test_a_downstream_that_fails_to_start_leaves_the_others_serving(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("broken", "--fail-start") + fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        names = {t.name for t in (await host.list_tools()).tools}
        result = await host.call_tool("alpha__echo", {"text": "still here"})
    assert "alpha__echo" in names
    assert not any(n.startswith("broken__") for n in names)
    assert text_of(result) == "still here"
    assert "failing at start as asked" in server_log(mcpmux_home, "broken").read_text()


async def test_a_crash_mid_call_answers_at_once_and_the_server_is_restarted(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        with anyio.fail_after(10):
            crashed = await host.call_tool("alpha__crash", {})
        assert crashed.is_error
        assert "alpha" in text_of(crashed)
        with anyio.fail_after(20):
            while True:  # the restart is asynchronous; the host learns of it through list_changed
                result = await host.call_tool("alpha__echo", {"text": "back"})
                if not result.is_error:
                    break
                await anyio.sleep(0.1)
    assert text_of(result) == "back"


async def test_a_call_past_its_timeout_ends_with_an_error_result(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha", timeout_seconds="1"))
    async with host_session(profile) as host:
        with anyio.fail_after(10):
            result = await host.call_tool("alpha__slow", {"steps": 0})
    assert result.is_error
    assert "did not answer tool 'slow' within 1 s" in text_of(result)


async def test_progress_reaches_the_host_and_cancellation_reaches_the_downstream(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha"))
    got_progress = anyio.Event()
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)
        if len(seen) == 3:
            got_progress.set()

    async with host_session(profile) as host:
        async with anyio.create_task_group() as tg:

            async def slow_call() -> None:
                await host.call_tool("alpha__slow", {"steps": 3}, progress_callback=on_progress)

            tg.start_soon(slow_call)
            with anyio.fail_after(10):
                await got_progress.wait()
            tg.cancel_scope.cancel()
        still_alive = await host.call_tool("alpha__echo", {"text": "after cancel"})
    assert seen == [1, 2, 3]
    assert text_of(still_alive) == "after cancel"
    outcomes = [e["outcome"] for e in audit_events(mcpmux_home, "tool_call") if e["tool"] == "slow"]
    assert outcomes == ["cancelled"]


async def test_every_call_is_audited_with_decision_and_outcome_but_no_argument_values(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha") + '[policy]\ndeny = ["*__delete_*"]\n')
    async with host_session(profile) as host:
        await host.call_tool("alpha__echo", {"text": "a-distinctive-argument"})
        await host.call_tool("alpha__fail", {"message": "x"})
        await host.call_tool("alpha__delete_everything", {})
        await host.call_tool("nope__nothing", {})
    calls = audit_events(mcpmux_home, "tool_call")
    summary = [(e["exposed"], e["decision"], e["outcome"]) for e in calls]
    assert summary == [
        ("alpha__echo", "allowed", "ok"),
        ("alpha__fail", "allowed", "tool_error"),
        ("alpha__delete_everything", "denied", "denied"),
        ("nope__nothing", "unknown", "unknown"),
    ]
    assert all(e["host"] == "mcp" and e["profile"] == "test" for e in calls)
    assert all(e["args"].startswith("hmac-sha256:") for e in calls)
    assert "a-distinctive-argument" not in (mcpmux_home / "state" / "audit.jsonl").read_text()


async def test_no_downstream_process_or_grandchild_outlives_serve(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    async with host_session(profile) as host:
        grandchild = await host.call_tool("alpha__spawn_grandchild", {})
        pid = serve_pid(mcpmux_home)
        tree = processes_marked_by(pid)
    assert grandchild.structured_content is not None
    assert grandchild.structured_content["result"] in tree
    assert len(tree) == 3  # two downstreams and one grandchild
    await wait_for_exit(pid)
    for child in tree:
        await wait_for_exit(child)
    assert processes_marked_by(pid) == []


async def test_long_names_are_shortened_deterministically_and_still_callable(write_profile: WriteProfile):
    profile = write_profile("max_name_length = 16\n" + fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        tools = (await host.list_tools()).tools
        short = next(t.name for t in tools if "grandchild" in (t.description or ""))
        result = await host.call_tool(short, {})
    assert short.startswith("alpha__")
    assert all(len(t.name) <= 16 for t in tools)
    assert len({t.name for t in tools}) == len(tools)
    assert not result.is_error


@pytest.mark.parametrize("stdin", ["/dev/null", "a regular file"])
async def test_serve_with_stdin_that_is_not_a_pipe_exits_at_its_end_and_ends_its_downstreams(
    write_profile: WriteProfile, mcpmux_home: Path, tmp_path: Path, stdin: str
):
    """`nohup`, systemd's StandardInput=null and smoke tests give serve such a stdin; epoll refuses both.

    The end of stdin is the host's shutdown signal, so requests still in flight then are not answered.
    """
    profile = write_profile(fixture_server_toml("alpha"))
    source = Path(stdin) if stdin.startswith("/") else tmp_path / "requests.jsonl"
    if source != Path(stdin):
        ping = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
        source.write_text(
            '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
            '"capabilities":{},"clientInfo":{"name":"file","version":"1"}}}\n' + ping
        )
    command = [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)]
    with source.open("rb") as requests, anyio.fail_after(30):
        done = await anyio.run_process(command, stdin=requests, check=False)
    assert done.returncode == 0, done.stderr.decode()
    stop = audit_events(mcpmux_home, "serve_stop")
    assert stop and stop[-1]["reason"] == "the host closed stdin"
    assert processes_marked_by(serve_pid(mcpmux_home)) == []
