"""The front under bad input: nesting past what mcpmux parses or writes, odd and reused ids, notification storms,
and what may reach the host before its `initialize` answer or after its input ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from mcpmux import wire
from mcpmux.front.server import Front
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


@pytest.mark.parametrize("method", ["tools/call", "tools/list"])
@pytest.mark.parametrize("bad_id", [{"a": 1}, [1], True, 1.5, None], ids=["object", "array", "bool", "float", "null"])
async def test_a_request_whose_id_is_not_a_string_or_an_integer_is_an_invalid_request_and_never_relayed(
    method: str, bad_id: object, tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, "handshake") as (_, host):
        params = {"name": "alpha__echo", "arguments": {"text": "x"}}
        await host.send({"id": bad_id, "method": method, "params": params})
        await host.request("ping")
        await host.request("ping")  # a call relayed by mistake would have been answered by now
    replies = [m for m in host.replies.lines if m.get("id") not in (1, 2, 3)]
    assert replies == [
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": wire.INVALID_REQUEST, "message": replies[0]["error"]["message"]},
        }
    ]
    assert "string or an integer" in replies[0]["error"]["message"]
    assert not [m for m in server.received if m.get("method") == "tools/call"]


async def test_a_second_call_reusing_an_id_in_flight_is_refused_and_the_first_keeps_its_answer_and_cancellation(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held: list[ToolCall] = []
    server = ScriptedServer({"hold": held.append})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, "handshake") as (_, host):
        first = {"id": 7, "method": "tools/call", "params": {"name": "alpha__hold", "arguments": {"n": 1}}}
        await host.send(first)
        sent = await server.next_message(lambda m: m.get("method") == "tools/call")
        await host.send({**first, "params": {"name": "alpha__hold", "arguments": {"n": 2}}})
        refused = await host.replies.wait_for(lambda m: m.get("id") == 7 and "error" in m)
        await host.send({"method": "notifications/cancelled", "params": {"requestId": 7, "reason": "stop"}})
        cancelled = await server.next_message(lambda m: m.get("method") == "notifications/cancelled")
        await host.send({**first, "params": {"name": "alpha__hold", "arguments": {"n": 3}}})  # 7 is free again
        await server.next_message(lambda m: m.get("method") == "tools/call" and m["params"]["arguments"]["n"] == 3)
        held[-1].answer("n=3")
        again = await host.replies.wait_for(lambda m: m.get("id") == 7 and "result" in m)
    assert refused["error"]["code"] == wire.INVALID_REQUEST
    assert "already in use" in refused["error"]["message"]
    assert cancelled["params"]["requestId"] == sent["id"]  # the first call's, not an overwriting second one's
    assert [m["params"]["arguments"]["n"] for m in server.received if m.get("method") == "tools/call"] == [1, 3]
    assert answers_to(host.replies, 7) == [refused, again]
    assert again["result"]["content"][0]["text"] == "n=3"


async def test_a_storm_of_list_changed_notifications_causes_at_most_one_relist_in_flight_and_one_trailing(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"echo": echo})
    note = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, "handshake") as (_, host):
        ds: Any = gateway.supervisor.states["alpha"].downstream
        listed_before = len(server.received)
        server.tools["added"] = echo
        for _ in range(200):
            ds.deliver(note)
        await host.replies.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        server.tools["another"] = echo
        ds.deliver(note)
        await host.replies.wait_for(
            lambda m: len([x for x in host.replies.lines if x.get("method") == "notifications/tools/list_changed"]) == 2
        )
    relists = [m for m in server.received[listed_before:] if m.get("method") == "tools/list"]
    announced = [m for m in host.replies.lines if m.get("method") == "notifications/tools/list_changed"]
    assert len(relists) <= 3  # the storm's one in flight, its one trailing, and the later change's
    assert len(announced) == 2  # one per change the host can see


async def test_nothing_reaches_a_handshake_host_before_its_initialize_answer_and_early_requests_wait_for_it(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"echo": echo})
    initialize: dict[str, Any] = {
        "protocolVersion": "2025-11-25",
        "capabilities": {"sampling": {}, "roots": {}, "elicitation": {}},
        "clientInfo": {"name": "early", "version": "1"},
    }

    def note(method: str, params: dict[str, Any]) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params})

    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        ds: Any = gateway.supervisor.states["alpha"].downstream
        front = Front(gateway.supervisor, gateway.relay)
        replies = Replies()
        ended = anyio.Event()

        async def read_lines(on_line: Callable[[bytes], None]) -> None:
            on_line(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize}))
            # The SDK answers from a task of its own: all of this happens before it can have.
            ds.deliver(note("notifications/message", {"level": "error", "data": "early log"}))
            ds.deliver(note("notifications/resources/updated", {"uri": "file:///early"}))
            ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": "s1", "method": "sampling/createMessage", "params": {}}))
            front.catalog_changed(gateway.supervisor.catalog, frozenset({"tools", "prompts", "resources"}))
            await ended.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(front.serve, read_lines, replies)
            await replies.answer(1)
            assert replies.lines[0]["id"] == 1 and "result" in replies.lines[0]
            # The server's early request was held, not refused: it reaches the host right after the answer.
            carried = await replies.wait_for(lambda m: m.get("method") == "sampling/createMessage")
            front.on_line(orjson.dumps({"jsonrpc": "2.0", "id": carried["id"], "result": {"role": "assistant"}}))
            answered = await server.next_message(lambda m: m.get("id") == "s1")
            ds.deliver(note("notifications/message", {"level": "error", "data": "later log"}))
            later = await replies.wait_for(lambda m: m.get("method") == "notifications/message")
            ended.set()
            assert [m for m in replies.lines if "method" in m] == [carried, later]
            assert later["params"]["data"] == "later log"
            assert answered["result"] == {"role": "assistant"}


async def test_requests_received_before_the_hosts_input_ends_are_answered_before_serve_returns(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held: list[ToolCall] = []
    server = ScriptedServer({"hold": held.append})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        front = Front(gateway.supervisor, gateway.relay)
        replies = Replies()
        at_return: list[dict[str, Any]] = []

        async def read_lines(on_line: Callable[[bytes], None]) -> None:
            messages: tuple[dict[str, Any], ...] = (
                {"id": 1, "method": "tools/call", "params": {"name": "alpha__hold", "arguments": {}}},
                {"id": 2, "method": "tools/list"},
            )
            for message in messages:
                on_line(orjson.dumps({"jsonrpc": "2.0", **message}))  # then the input ends

        async def serve() -> None:
            await front.serve(read_lines, replies)
            at_return.extend(replies.lines)

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            await server.next_message(lambda m: m.get("method") == "tools/call")
            held[0].answer("answered after the input ended")
    assert sorted(m["id"] for m in at_return) == [1, 2]
    assert at_return[[m["id"] for m in at_return].index(1)]["result"]["content"][0]["text"].startswith("answered")


async def test_a_call_never_answered_holds_serve_only_until_its_timeout_after_the_input_ends(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"hang": lambda call: None})
    async with gateway_of(tmp_path, {"alpha": server}, "timeout_seconds = 0.2\n") as gateway:
        front = Front(gateway.supervisor, gateway.relay)

        async def read_lines(on_line: Callable[[bytes], None]) -> None:
            params: dict[str, Any] = {"name": "alpha__hang", "arguments": {}}
            on_line(orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))

        replies = Replies()
        with anyio.fail_after(5):
            await front.serve(read_lines, replies)
    [answer] = replies.lines
    assert answer["id"] == 1 and answer["result"]["isError"] is True  # the call's own timeout answered it
