"""A 2026-07-28 host (per-request envelopes, no handshake) through `mcpmux serve`: the call path in full."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext

from tests.conftest import FIXTURES, fixture_server_toml, host_session, serve_params
from tests.e2e_helpers import audit_events, exchange
from tests.test_protocol_e2e import everything_profile, sampler, text

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
MODERN = "2026-07-28"


def envelope(**extra: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern-host", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
        **extra,
    }


async def test_a_2026_host_sees_its_request_meta_reach_the_downstream_without_the_envelope(
    write_profile: WriteProfile,
):
    profile = write_profile(fixture_server_toml("alpha"))
    async with Client(serve_params(profile), mode="auto") as host:
        with anyio.fail_after(20):
            result = await host.call_tool("alpha__request_meta", {}, meta={"traceparent": "00-abc-def-01"})
        assert host.session.protocol_version == MODERN
    seen = json.loads(text(result))
    assert seen["traceparent"] == '"00-abc-def-01"'
    assert not [key for key in seen if key.startswith("io.modelcontextprotocol/")]


async def test_a_2026_host_gets_progress_for_its_token_while_the_call_runs(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(serve_params(profile), mode="auto") as host:
        with anyio.fail_after(30):
            result = await host.call_tool(
                "every__trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress_callback=on_progress
            )
    assert not result.is_error
    assert seen == [1, 2, 3]


async def test_a_2026_host_gets_the_log_messages_of_its_call_at_the_level_it_asked_for(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with Client(serve_params(profile), mode="auto", log_level="info", logging_callback=on_log) as host:
        with anyio.fail_after(20):
            await host.call_tool("alpha__request_meta", {})
            await host.list_tools()  # a log line precedes the call's answer on the wire; one more exchange flushes it
    assert [(m.level, m.data, m.logger) for m in logs] == [("info", "info from request_meta", "alpha")]


async def test_a_2026_host_calling_before_the_server_is_up_still_gets_its_calls_log_messages(
    write_profile: WriteProfile,
):
    # The call arrives while the server is starting, before its tools have routes.
    profile = write_profile(fixture_server_toml("alpha", "--slow-start", "2"))
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with Client(serve_params(profile), mode="auto", log_level="info", logging_callback=on_log) as host:
        with anyio.fail_after(30):
            await host.call_tool("alpha__request_meta", {})
            await host.list_tools()
    assert [(m.level, m.data, m.logger) for m in logs] == [("info", "info from request_meta", "alpha")]


async def test_a_2026_host_without_a_log_level_gets_no_log_messages(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    logs: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params)

    async with Client(serve_params(profile), mode="auto", logging_callback=on_log) as host:
        with anyio.fail_after(20):
            await host.call_tool("alpha__request_meta", {})
            await host.list_tools()
    assert logs == []


async def test_a_downstreams_sampling_request_is_asked_of_a_2026_host_within_its_call(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    asked: list[types.CreateMessageRequestParams] = []
    sample = sampler("sampled by a modern host", asked)

    async with Client(serve_params(profile), mode="auto", sampling_callback=sample) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("every__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
            after = await host.call_tool("every__echo", {"message": "next"})
        assert host.session.protocol_version == MODERN
    assert not result.is_error
    assert "sampled by a modern host" in text(result)
    assert len(asked) == 1
    assert text(after) == "Echo: next"


async def test_a_downstreams_elicitation_is_asked_of_a_2026_host_and_its_answer_returns(write_profile: WriteProfile):
    profile = write_profile(everything_profile())

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with Client(serve_params(profile), mode="auto", elicitation_callback=elicit) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("every__trigger-elicitation-request", {})
    assert not result.is_error
    assert "decline" in text(result).lower()


async def test_sampling_fails_cleanly_for_a_2026_host_that_cannot_sample(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    async with Client(serve_params(profile), mode="auto") as host:
        with anyio.fail_after(30):
            result = await host.call_tool("every__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
            still = await host.call_tool("every__echo", {"message": "alive"})
    assert result.is_error
    assert text(still) == "Echo: alive"


async def test_a_2026_call_answer_is_stamped_with_mcpmux_server_info_and_audited_with_the_host_name(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha"))
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": envelope()}},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "alpha__echo", "arguments": {"text": "hi"}, "_meta": envelope()},
        },
    ]
    replies = await exchange(profile, lines, answers=2)
    result = replies[2]["result"]
    assert result["content"] == [{"type": "text", "text": "hi"}]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpmux"
    assert "mcpmux gateway, profile 'test'." in replies[1]["result"]["instructions"]
    assert audit_events(mcpmux_home, "tool_call")[-1]["host"] == "raw-modern-host"


async def test_a_2026_host_cancelling_its_call_ends_it_downstream(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(fixture_server_toml("alpha"))
    started = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with Client(serve_params(profile), mode="auto") as host:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await host.call_tool("alpha__slow", {"steps": 1}, progress_callback=on_progress)

                tg.start_soon(call)
                await started.wait()
                tg.cancel_scope.cancel()
            answer = await host.call_tool("alpha__echo", {"text": "after"})
    assert text(answer) == "after"
    outcomes = [e["outcome"] for e in audit_events(mcpmux_home, "tool_call") if e["tool"] == "slow"]
    assert outcomes == ["cancelled"]


async def test_a_downstream_speaking_an_older_version_than_the_host_still_serves_both_eras(
    write_profile: WriteProfile,
):
    old = FIXTURES / "old_server.py"
    profile = write_profile(f'[servers.old]\ncommand = "{sys.executable}"\nargs = ["{old}"]\n')
    async with host_session(profile) as host:
        handshake = await host.call_tool("old__echo", {"text": "from a 2025-11-25 host"})
    async with Client(serve_params(profile), mode="auto") as modern:
        enveloped = await modern.call_tool("old__echo", {"text": "from a 2026-07-28 host"})
        assert modern.session.protocol_version == MODERN
    assert text(handshake) == "from a 2025-11-25 host"
    assert text(enveloped) == "from a 2026-07-28 host"


async def test_progress_after_an_input_round_reaches_a_2026_host_under_its_retrys_token(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha"))
    seen: list[str | None] = []

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"answer": "carry on"})

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    async with Client(serve_params(profile), mode="auto", elicitation_callback=elicit) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("alpha__ask_then_work", {"steps": 2}, progress_callback=on_progress)
            await host.list_tools()  # progress precedes the call's answer on the wire; one more exchange flushes it
    assert text(result) == "carry on"
    assert seen == ["after the answer, step 1", "after the answer, step 2"]


async def test_a_downstreams_elicitation_during_prompts_get_and_resources_read_is_asked_of_a_2026_host(
    write_profile: WriteProfile,
):
    profile = write_profile(fixture_server_toml("alpha"))
    questions: list[str] = []

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        questions.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "tides"})

    async with Client(serve_params(profile), mode="auto", elicitation_callback=elicit) as host:
        with anyio.fail_after(30):
            prompt = await host.get_prompt("alpha__asked_prompt")
            resource = await host.read_resource("mcpmux://alpha/fixture://asked/sea")
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent) and message.text == "Write about tides."
    assert text(resource) == "tides"
    assert questions == ["Which topic?", "Which content about sea?"]
