"""Downstreams of either era, probed as the 2026-07-28 versioning rules say, serving hosts of either era.

The fixtures speak one era only (tests/fixtures/era_server.py): a 2026-07-28 one
refuses `initialize`, a handshake one refuses `server/discover`. Each is driven
through `mcpmux serve` by SDK hosts of both eras, including the `ask` tool's
input round: an `input_required` result in the modern era, an `elicitation/create`
request in the handshake era, bridged to whichever the host speaks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.conftest import FIXTURES, REPO, fixture_server_toml, serve_params
from tests.e2e_helpers import ListChanged, audit_events

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
ERA_SERVER = FIXTURES / "era_server.py"


def era_server_toml(name: str, era: str) -> str:
    return f'[servers.{name}]\ncommand = "{sys.executable}"\nargs = ["{ERA_SERVER}", "--era", "{era}"]\n'


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent), result
    return block.text


async def say_hello(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "hello"})


def received(home: Path, server: str) -> list[list[str]]:
    """The methods the era fixture received, one list per start of it (from its logs: one per serve, oldest first)."""
    starts: list[list[str]] = []
    logs = sorted((home / "state" / "logs").glob(f"*/{server}.*.log"), key=lambda p: p.stat().st_mtime)
    for line in (line for log in logs for line in log.read_text().splitlines()):
        if line.startswith("--- mcpmux: starting"):
            starts.append([])
        elif line.startswith("era-server: received ") and starts:
            starts[-1].append(line.removeprefix("era-server: received "))
    return starts


@pytest.mark.parametrize("host_mode", ["legacy", "auto"])
async def test_a_2026_only_server_serves_hosts_of_both_eras_and_asks_its_input_round_of_each(
    write_profile: WriteProfile, host_mode: str
) -> None:
    profile = write_profile(era_server_toml("new", "modern"))
    async with Client(serve_params(profile), mode=host_mode, elicitation_callback=say_hello) as host:
        with anyio.fail_after(30):
            spoken = await host.call_tool("new__era", {})
            asked = await host.call_tool("new__ask", {"topic": "tides"})
            tools = await host.list_tools()
        assert host.session.protocol_version == ("2026-07-28" if host_mode == "auto" else "2025-11-25")
    assert (text(spoken), bool(spoken.is_error)) == ("modern", False)
    assert (text(asked), bool(asked.is_error)) == ("tides: hello", False)
    assert {t.name for t in tools.tools} == {"new__echo", "new__era", "new__ask", "new__grow", "new__note"}


@pytest.mark.parametrize("host_mode", ["legacy", "auto"])
async def test_a_handshake_only_server_serves_hosts_of_both_eras_and_asks_its_request_of_each(
    write_profile: WriteProfile, host_mode: str
) -> None:
    profile = write_profile(era_server_toml("old", "handshake"))
    async with Client(serve_params(profile), mode=host_mode, elicitation_callback=say_hello) as host:
        with anyio.fail_after(30):
            spoken = await host.call_tool("old__era", {})
            asked = await host.call_tool("old__ask", {"topic": "tides"})
    assert (text(spoken), bool(spoken.is_error)) == ("handshake", False)
    assert (text(asked), bool(asked.is_error)) == ("tides: hello", False)


async def test_a_handshake_host_that_cannot_elicit_gets_a_clean_error_from_a_2026_servers_input_round(
    write_profile: WriteProfile,
) -> None:
    profile = write_profile(era_server_toml("new", "modern"))
    async with Client(serve_params(profile), mode="legacy") as host:
        with anyio.fail_after(30):
            asked = await host.call_tool("new__ask", {"topic": "tides"})
            still = await host.call_tool("new__echo", {"text": "alive"})
    assert asked.is_error
    assert "elicitation" in text(asked) and "'new'" in text(asked)
    assert (text(still), bool(still.is_error)) == ("alive", False)


@pytest.mark.parametrize(
    ("era", "opened", "reopened"),
    [
        # A 2026-07-28-only server refuses the handshake, then answers the probe; remembered, it is probed at once.
        ("modern", ["initialize", "server/discover"], ["server/discover"]),
        ("handshake", ["initialize"], ["initialize"]),
    ],
)
async def test_each_servers_era_is_found_once_and_remembered_for_the_next_start(
    write_profile: WriteProfile, mcpmux_home: Path, era: str, opened: list[str], reopened: list[str]
) -> None:
    profile = write_profile(era_server_toml("srv", era))
    for _ in range(2):
        async with Client(serve_params(profile), mode="legacy") as host:
            with anyio.fail_after(30):
                spoken = await host.call_tool("srv__era", {})
        assert text(spoken) == era
    first, second = received(mcpmux_home, "srv")
    opening = {"server/discover", "initialize"}
    assert [m for m in first if m in opening] == opened
    assert [m for m in second if m in opening] == reopened


async def test_a_server_of_both_eras_keeps_the_handshake_where_its_own_requests_work(
    write_profile: WriteProfile,
) -> None:
    """An SDK server serves whichever era its client opens with; its `ctx.elicit` works only in the handshake one."""
    profile = write_profile(fixture_server_toml("both"))
    async with Client(serve_params(profile), mode="legacy", elicitation_callback=say_hello) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("both__ask_then_work", {"steps": 0})
    assert (text(result), bool(result.is_error)) == ("hello", False)


@pytest.mark.parametrize("era", ["modern", "handshake"])
async def test_a_servers_new_tool_reaches_a_handshake_host_whichever_era_announced_it(
    write_profile: WriteProfile, era: str
) -> None:
    """A 2026-07-28 server announces changes only on a `subscriptions/listen` stream, which mcpmux opens."""
    profile = write_profile(era_server_toml("srv", era))
    changed = ListChanged()
    async with Client(serve_params(profile), mode="legacy", message_handler=changed) as host:
        with anyio.fail_after(30):
            await host.call_tool("srv__grow", {"name": "fresh"})
            while "srv__fresh" not in {t.name for t in (await host.list_tools()).tools}:
                await changed.wait()
            fresh = await host.call_tool("srv__fresh", {"text": "new"})
    assert (text(fresh), bool(fresh.is_error)) == ("new", False)


@pytest.mark.parametrize("era", ["modern", "handshake"])
async def test_a_handshake_hosts_log_level_reaches_a_server_of_either_era_and_its_messages_come_back(
    write_profile: WriteProfile, era: str
) -> None:
    """A 2026-07-28 server has no `logging/setLevel`: the level goes in the `_meta` of each request instead."""
    profile = write_profile(era_server_toml("srv", era))
    logs: list[types.LoggingMessageNotificationParams] = []
    heard = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)
        heard.set()

    async with Client(serve_params(profile), mode="legacy", logging_callback=on_log) as host:
        with anyio.fail_after(30):
            await host.list_tools()  # the server is up: the level reaches it
            with pytest.warns(MCPDeprecationWarning):  # the SDK flags logging as a legacy-era feature
                await host.set_logging_level("info")  # pyright: ignore[reportDeprecated]
            await host.call_tool("srv__note", {"text": "written down"})
            await heard.wait()
    assert [(m.level, m.data, m.logger) for m in logs] == [("info", "written down", "srv")]


@pytest.mark.parametrize("era", ["modern", "handshake"])
@pytest.mark.parametrize("host_mode", ["legacy", "auto"])
async def test_a_prompt_that_asks_the_user_works_for_hosts_of_both_eras_from_servers_of_both_eras(
    write_profile: WriteProfile, era: str, host_mode: str
) -> None:
    profile = write_profile(era_server_toml("srv", era))
    questions: list[str] = []

    async def answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        questions.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "tides"})

    async with Client(serve_params(profile), mode=host_mode, elicitation_callback=answer) as host:
        with anyio.fail_after(30):
            prompt = await host.get_prompt("srv__topic")
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent) and message.text == "Write about tides."
    assert questions == ["Which topic?"]


async def test_status_names_the_protocol_each_server_speaks(write_profile: WriteProfile, mcpmux_home: Path) -> None:
    profile = write_profile(era_server_toml("new", "modern") + era_server_toml("old", "handshake"))
    async with Client(serve_params(profile), mode="legacy") as host:
        with anyio.fail_after(30):
            await host.list_tools()
            status = await anyio.run_process([sys.executable, "-m", "mcpmux", "status", "--json"], cwd=REPO)
    (serve,) = json.loads(status.stdout)["serves"]
    assert {s["name"]: s["protocol"] for s in serve["servers"]} == {"new": "2026-07-28", "old": "2025-11-25"}


async def test_a_2026_servers_input_round_is_held_to_the_policy_on_requests_to_the_host(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    """Asked within a call or by a request of its own, elicitation from a server `[policy.requests]` leaves out
    never reaches the host."""
    profile = write_profile(era_server_toml("new", "modern") + '[policy.requests]\nelicitation = ["someone-else"]\n')
    questions: list[str] = []

    async def answer(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        questions.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "hello"})

    async with Client(serve_params(profile), mode="legacy", elicitation_callback=answer) as host:
        with anyio.fail_after(30):
            asked = await host.call_tool("new__ask", {"topic": "tides"})
    assert asked.is_error and "policy.requests.elicitation" in text(asked)
    assert questions == []
    refused = audit_events(mcpmux_home, "refused")
    assert [(e["kind"], e["server"], e["rule"]) for e in refused] == [("request", "new", "policy.requests.elicitation")]
