"""The relay's hot path in-process: ids, cancellation, timeouts, crashes and progress, without a subprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcpmux.relay.host import HostInfo
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import Replies, ScriptedServer, ToolCall, gateway_of

pytestmark = pytest.mark.anyio


def echo(call: ToolCall) -> None:
    call.answer(f"echo {call.arguments.get('text')}")


def params(name: str, arguments: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if meta:
        out["_meta"] = meta
    return out


async def test_a_call_reaches_the_server_under_mcpmux_id_and_its_answer_returns_under_the_hosts_id(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies = Replies()
        gateway.relay.call_from_host("host-7", params("alpha__echo", {"text": "hi"}), replies)
        answer = await replies.answer("host-7")
        sent = await server.next_message(lambda m: m.get("method") == "tools/call")
    assert answer["result"]["content"][0]["text"] == "echo hi"
    assert sent["id"] != "host-7" and str(sent["id"]).startswith("mx-")
    assert sent["params"]["name"] == "echo"  # the namespace is taken off on the way down
    assert len(replies.lines) == 1


async def test_two_hosts_ids_that_collide_downstream_never_cross_answers(tmp_path: Path, mcpmux_home: Path) -> None:
    held: list[ToolCall] = []
    server = ScriptedServer({"hold": held.append})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies = Replies()
        gateway.relay.call_from_host(1, params("alpha__hold", {"n": 1}), replies)
        gateway.relay.call_from_host("1", params("alpha__hold", {"n": 2}), replies)
        await server.next_message(lambda m: m.get("method") == "tools/call" and m["params"]["arguments"]["n"] == 2)
        for call in reversed(held):
            call.answer(f"n={call.arguments['n']}")
        numeric, text = await replies.answer(1), await replies.answer("1")
    assert numeric["result"]["content"][0]["text"] == "n=1"
    assert text["result"]["content"][0]["text"] == "n=2"


async def test_a_host_cancellation_tells_the_server_and_the_host_gets_no_answer(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held: list[ToolCall] = []
    server = ScriptedServer({"hold": held.append})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies = Replies()
        gateway.relay.call_from_host("c1", params("alpha__hold"), replies)
        sent = await server.next_message(lambda m: m.get("method") == "tools/call")
        assert gateway.relay.cancel_from_host("c1", "user pressed stop")
        cancelled = await server.next_message(lambda m: m.get("method") == "notifications/cancelled")
        held[0].answer("too late")  # delivered at once: an answer after the cancellation is dropped
        assert not gateway.relay.cancel_from_host("c1", "again")  # the call is gone
    assert cancelled["params"] == {"requestId": sent["id"], "reason": "user pressed stop"}
    assert replies.lines == []
    assert [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")] == ["cancelled"]


async def test_a_server_that_never_answers_gets_a_cancellation_and_the_host_a_timeout_result(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"hang": lambda call: None})
    async with gateway_of(tmp_path, {"alpha": server}, "timeout_seconds = 0.2\n") as gateway:
        state = gateway.supervisor.live("alpha")
        assert state is not None
        replies = Replies()
        gateway.relay.call_from_host("t1", params("alpha__hang"), replies)
        answer = await replies.answer("t1")
        cancelled = await server.next_message(lambda m: m.get("method") == "notifications/cancelled")
    assert answer["result"]["isError"] is True
    assert "did not answer tool 'hang'" in answer["result"]["content"][0]["text"]
    assert cancelled["params"]["reason"] == "timed out"
    assert [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")] == ["timeout"]


async def test_a_server_crashing_mid_call_answers_the_host_at_once_saying_it_is_unavailable(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"crash": lambda call: call.ds.end(139)})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies = Replies()
        gateway.relay.call_from_host("x1", params("alpha__crash"), replies)
        answer = await replies.answer("x1")
    assert answer["result"]["isError"] is True
    assert "exited with code 139" in answer["result"]["content"][0]["text"]
    assert [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")] == ["unavailable"]


async def test_progress_reaches_the_host_under_its_own_token_and_only_for_its_call(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    def work(call: ToolCall) -> None:
        call.progress(1)
        call.progress(2, token="someone-elses")
        call.answer("done")

    server = ScriptedServer({"work": work})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies, notes = Replies(), Replies()
        gateway.relay.call_from_host("p1", params("alpha__work", progressToken="tok-9"), replies, notes)
        await replies.answer("p1")
    assert [n["params"] for n in notes.lines] == [{"progressToken": "tok-9", "progress": 1}]


async def test_a_call_is_audited_with_the_bound_host(tmp_path: Path, mcpmux_home: Path) -> None:
    server = ScriptedServer({"echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        gateway.relay.host.bind(HostInfo("handshake", "cursor", "2.0"))
        replies = Replies()
        gateway.relay.call_from_host(5, params("alpha__echo", {"text": "a"}), replies)
        await replies.answer(5)
    [event] = audit_events(mcpmux_home, "tool_call")
    assert (event["host"], event["outcome"], event["server"], event["tool"]) == ("cursor", "ok", "alpha", "echo")


async def test_an_unknown_tool_is_refused_with_the_closest_name(tmp_path: Path, mcpmux_home: Path) -> None:
    server = ScriptedServer({"echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway:
        replies = Replies()
        gateway.relay.call_from_host(9, params("alpha__ecoh"), replies)
        answer = await replies.answer(9)
    assert answer["result"]["isError"] is True
    assert "unknown tool 'alpha__ecoh'" in answer["result"]["content"][0]["text"]
    assert "alpha__echo" in answer["result"]["content"][0]["text"]


async def test_a_call_to_a_server_that_failed_to_start_says_so_and_is_audited_unavailable(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    servers = {"alpha": ScriptedServer({"echo": echo}), "beta": ScriptedServer({}, refuse_initialize="bad config")}
    async with gateway_of(tmp_path, servers, "restart = { max_restarts = 0 }\n") as gateway:
        replies = Replies()
        gateway.relay.call_from_host(1, params("beta__anything", {"text": "x"}), replies)
        answer = await replies.answer(1)
    text = answer["result"]["content"][0]["text"]
    assert answer["result"]["isError"] is True
    assert "server 'beta' failed to start" in text and "bad config" in text and "mcpmux logs beta" in text
    [event] = audit_events(mcpmux_home, "tool_call")
    assert (event["server"], event["decision"], event["outcome"]) == ("beta", "unknown", "unavailable")
