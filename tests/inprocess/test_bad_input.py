"""The front under bad input: nesting past what mcpmux parses or writes, odd and reused ids, notification storms,
and what may reach the host before its `initialize` answer or after its input ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mcpmux import wire
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import Replies, ScriptedServer, ToolCall, gateway_of
from tests.inprocess.test_front import ERAS, echo, envelope, front_of

pytestmark = pytest.mark.anyio


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def deep_call(request_id: int, depth: int, era: str) -> bytes:
    """A `tools/call` line whose arguments nest `depth` arrays deep (orjson writes at most 254 levels)."""
    meta = b'"_meta":' + orjson.dumps(envelope()) + b"," if era == "envelope" else b""
    head = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"alpha__echo",' % request_id
    return head + meta + b'"arguments":{"text":' + nested(depth) + b"}}}"


def answers_to(replies: Replies, request_id: object) -> list[dict[str, Any]]:
    return [m for m in replies.lines if m.get("id") == request_id and "method" not in m]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("depth", [300, 1000, 5000])
async def test_arguments_nested_deeper_than_mcpmux_relays_are_refused_once_naming_the_limit_and_audited(
    era: str, depth: int, tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, era) as (_, host):
        await host.request("tools/list")  # opens the era (an envelope host has no handshake)
        await host.send_line(deep_call(50, depth, era))
        answer = await host.replies.answer(50)
        await host.request("ping")  # everything the deep call caused has been written before this answer
        ds: Any = gateway.supervisor.states["alpha"].downstream
        in_flight = gateway.relay.calls_to(ds)
    result = answer["result"]
    assert result["isError"] is True
    assert f"at most {wire.MAX_DEPTH} levels" in result["content"][0]["text"]
    assert "alpha__echo" in result["content"][0]["text"]
    assert ("resultType" in result) == (era == "envelope")
    assert len(answers_to(host.replies, 50)) == 1
    assert in_flight == []  # no timer left to answer it a second time
    assert not [m for m in server.received if m.get("method") == "tools/call"]
    [event] = audit_events(mcpmux_home, "tool_call")
    assert (event["exposed"], event["decision"], event["rule"]) == ("alpha__echo", "denied", "mcpmux.max_depth")


async def test_a_request_nested_too_deep_to_parse_that_is_not_a_call_gets_an_error_under_its_id(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, "handshake") as (_, host),
    ):
        await host.send_line(
            b'{"jsonrpc":"2.0","id":"deep","method":"prompts/get","params":{"x":' + nested(3000) + b"}}"
        )
        answer = await host.replies.answer("deep")
        still = await host.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "alive"}})
    assert answer["error"]["code"] == wire.INVALID_REQUEST
    assert f"at most {wire.MAX_DEPTH} levels" in answer["error"]["message"]
    assert still["result"]["content"][0]["text"] == "echo alive"


async def test_a_result_nested_deeper_than_mcpmux_writes_is_answered_once_with_an_error_naming_the_limit(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    def deep(call: ToolCall) -> None:  # id first: not the SDK's layout, so mcpmux must re-encode it to re-address it
        result = b'{"content":[{"type":"text","text":"x"}],"structuredContent":{"v":' + nested(300) + b"}}"
        call.ds.deliver(b'{"id":' + orjson.dumps(call.id) + b',"jsonrpc":"2.0","result":' + result + b"}")

    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"deep": deep})}) as gateway,
        front_of(gateway, "handshake") as (_, host),
    ):
        answer = await host.request("tools/call", {"name": "alpha__deep", "arguments": {}})
        await host.request("ping")
    assert answer["result"]["isError"] is True
    assert f"more than {wire.MAX_DEPTH} levels deep" in answer["result"]["content"][0]["text"]
    assert len(answers_to(host.replies, answer["id"])) == 1
    assert [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")] == ["error"]
