"""Several hosts on one gateway, in-process: each keeps its ids, progress, policy, rate, log level and requests."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from mcpmux.front.hosts import Hosts
from mcpmux.front.server import Front
from mcpmux.gateway import Gateway
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import Replies, ScriptedServer, ToolCall, gateway_of
from tests.inprocess.test_front import HostSide, echo

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def attached(
    hosts: Hosts, name: str, capabilities: dict[str, Any] | None = None
) -> AsyncGenerator[tuple[Front, HostSide]]:
    """A handshake-era host attached to the shared gateway; detached when the block ends (its input closes)."""
    front = hosts.attach()
    send, receive = anyio.create_memory_object_stream[bytes](math.inf)
    replies = Replies()

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        async with receive:
            async for line in receive:
                on_line(line)

    async def run() -> None:
        try:
            await front.serve(read_lines, replies)
        finally:
            hosts.detach(front)

    async with send, anyio.create_task_group() as tg:
        tg.start_soon(run)
        host = HostSide(send, replies, "handshake")
        hello = {
            "protocolVersion": "2025-11-25",
            "capabilities": capabilities or {},
            "clientInfo": {"name": name, "version": "1"},
        }
        await host.request("initialize", hello)
        await host.send({"method": "notifications/initialized"})
        yield front, host
        await send.aclose()


@asynccontextmanager
async def shared(gateway: Gateway) -> AsyncGenerator[Hosts]:
    yield Hosts(gateway.supervisor, gateway.audit)


class Held:
    """A tool whose calls wait until the test answers them."""

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self.came = anyio.Event()

    def __call__(self, call: ToolCall) -> None:
        self.calls.append(call)
        self.came.set()

    async def wait(self, count: int) -> list[ToolCall]:
        with anyio.fail_after(5):
            while len(self.calls) < count:
                self.came = anyio.Event()
                await self.came.wait()
        return self.calls


def call_params(name: str, text: str = "", token: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": {"text": text}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return params


async def test_two_hosts_using_the_same_ids_each_get_their_own_answers(tmp_path: Path, mcpmux_home: Path) -> None:
    held = Held()
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"work": held})}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as (_, b),
    ):
        await a.send({"id": 7, "method": "tools/call", "params": call_params("alpha__work", "from a")})
        await b.send({"id": 7, "method": "tools/call", "params": call_params("alpha__work", "from b")})
        for call in await held.wait(2):
            call.answer(f"done {call.arguments['text']}")
        answer_a, answer_b = await a.replies.answer(7), await b.replies.answer(7)
    assert answer_a["result"]["content"][0]["text"] == "done from a"
    assert answer_b["result"]["content"][0]["text"] == "done from b"
    assert len(gateway.supervisor.states) == 1  # one downstream served both


async def test_a_hosts_cancellation_ends_its_own_call_and_not_anothers_under_the_same_id(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as (_, b),
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "a")})
        await b.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "b")})
        by_text = {call.arguments["text"]: call for call in await held.wait(2)}
        await a.send({"method": "notifications/cancelled", "params": {"requestId": 101}})
        cancelled = await server.next_message(lambda m: m.get("method") == "notifications/cancelled")
        by_text["b"].answer("b done")
        answer_b = await b.replies.answer(101)
    assert cancelled["params"]["requestId"] == by_text["a"].id
    assert answer_b["result"]["content"][0]["text"] == "b done"


async def test_progress_under_the_same_token_reaches_only_the_host_whose_call_it_is(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held = Held()
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"work": held})}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as (_, b),
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "a", token="t")})
        await b.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "b", token="t")})
        calls = await held.wait(2)
        by_text = {call.arguments["text"]: call for call in calls}
        assert by_text["a"].progress_token != by_text["b"].progress_token  # the server sees two tokens
        by_text["b"].progress(0.5)
        note = await b.replies.wait_for(lambda m: m.get("method") == "notifications/progress")
        for call in calls:
            call.answer("done")
        await a.replies.answer(101)
        await b.replies.answer(101)
    assert note["params"] == {"progressToken": "t", "progress": 0.5}
    assert not [m for m in a.replies.lines if m.get("method") == "notifications/progress"]


async def test_a_servers_request_goes_to_the_host_whose_call_caused_it(tmp_path: Path, mcpmux_home: Path) -> None:
    held = Held()
    sampling: dict[str, Any] = {"sampling": {}}
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"work": held})}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a", sampling) as (_, a),
        attached(hosts, "host-b", sampling) as (_, b),
    ):
        await b.send({"id": 3, "method": "tools/call", "params": call_params("alpha__work")})
        (call,) = await held.wait(1)
        answers: list[dict[str, Any]] = []
        call.ask("s-1", "sampling/createMessage", {"messages": [], "maxTokens": 1}, answers.append)
        asked = await b.replies.wait_for(lambda m: m.get("method") == "sampling/createMessage")
        await b.send({"id": asked["id"], "result": {"role": "assistant", "content": {"type": "text", "text": "hi"}}})
        answered = await call.server.next_message(lambda m: m.get("id") == "s-1" and "result" in m)
        call.answer("done")
        await b.replies.answer(3)
    assert answered["result"]["content"]["text"] == "hi"
    assert not [m for m in a.replies.lines if m.get("method") == "sampling/createMessage"]


async def test_a_request_outside_any_call_goes_to_a_host_that_declared_the_capability(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b", {"roots": {}}) as (_, b),
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work")})
        (call,) = await held.wait(1)
        call.answer("done")
        await a.replies.answer(101)
        call.ask("r-1", "roots/list", {}, lambda answer: None)  # no call in flight now
        asked = await b.replies.wait_for(lambda m: m.get("method") == "roots/list")
        await b.send({"id": asked["id"], "result": {"roots": []}})
        answered = await server.next_message(lambda m: m.get("id") == "r-1")
    assert answered["result"] == {"roots": []}


async def test_a_request_during_a_call_is_never_asked_of_another_host(tmp_path: Path, mcpmux_home: Path) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b", {"sampling": {}}) as (_, b),
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work")})
        (call,) = await held.wait(1)  # host-a's call is in flight, and host-a cannot sample
        call.ask("s-1", "sampling/createMessage", {"messages": [], "maxTokens": 1}, lambda answer: None)
        refused = await server.next_message(lambda m: m.get("id") == "s-1")
        call.answer("done")
        await a.replies.answer(101)
    assert "did not declare 'sampling'" in refused["error"]["message"]
    assert not [m for m in b.replies.lines if m.get("method") == "sampling/createMessage"]


async def test_a_request_while_two_hosts_call_the_server_is_asked_of_neither(tmp_path: Path, mcpmux_home: Path) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    sampling: dict[str, Any] = {"sampling": {}}
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a", sampling) as (_, a),
        attached(hosts, "host-b", sampling) as (_, b),
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "a")})
        await b.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "b")})
        calls = await held.wait(2)
        calls[1].ask("s-1", "sampling/createMessage", {"messages": [], "maxTokens": 1}, lambda answer: None)
        refused = await server.next_message(lambda m: m.get("id") == "s-1")
        for call in calls:
            call.answer("done")
        await a.replies.answer(101)
        await b.replies.answer(101)
    assert "calls in flight from 2 hosts" in refused["error"]["message"]
    for side in (a, b):
        assert not [m for m in side.replies.lines if m.get("method") == "sampling/createMessage"]


async def test_a_request_no_attached_host_can_take_fails_cleanly_at_once(tmp_path: Path, mcpmux_home: Path) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as _,
    ):
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work")})
        (call,) = await held.wait(1)
        call.answer("done")
        await a.replies.answer(101)
        call.ask("e-1", "elicitation/create", {"message": "?", "requestedSchema": {}}, lambda answer: None)
        refused = await server.next_message(lambda m: m.get("id") == "e-1")
    assert "no host attached to mcpmux declared 'elicitation'" in refused["error"]["message"]


async def test_hosts_rules_and_rate_limits_apply_to_each_host_and_audit_names_it(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    rules = (
        '[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "allow"\nrate = "1/minute"\n'
        '[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "deny"\nhosts = ["host-c"]\n'
    )
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}, rules) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as (_, b),
        attached(hosts, "host-c") as (_, c),
    ):
        first_a = await a.request("tools/call", call_params("alpha__echo", "1"))
        first_b = await b.request("tools/call", call_params("alpha__echo", "1"))
        second_a = await a.request("tools/call", call_params("alpha__echo", "2"))
        denied_c = await c.request("tools/call", call_params("alpha__echo", "1"))
    assert first_a["result"]["isError"] is False
    assert first_b["result"]["isError"] is False  # host-a's call took host-a's slot, not host-b's
    assert "over the rate 1/minute" in second_a["result"]["content"][0]["text"]
    assert "denied by policy.rules[1]" in denied_c["result"]["content"][0]["text"]
    calls = [(e["host"], e["outcome"]) for e in audit_events(mcpmux_home, "tool_call")]
    assert calls == [("host-a", "ok"), ("host-b", "ok"), ("host-a", "denied"), ("host-c", "denied")]
    assert [e["host"] for e in audit_events(mcpmux_home, "host_attached")] == ["host-a", "host-b", "host-c"]
    assert sorted(e["host"] for e in audit_events(mcpmux_home, "host_detached")) == ["host-a", "host-b", "host-c"]


async def test_a_host_detaching_cancels_its_calls_and_leaves_the_others_running(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
    ):
        async with attached(hosts, "host-b") as (_, b):
            await b.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "b")})
            await held.wait(1)
        cancelled = await server.next_message(lambda m: m.get("method") == "notifications/cancelled")
        await a.send({"id": 101, "method": "tools/call", "params": call_params("alpha__work", "a")})
        calls = await held.wait(2)
        calls[1].answer("still here")
        answer = await a.replies.answer(101)
        assert len(hosts.fronts) == 1
    assert cancelled["params"]["requestId"] == calls[0].id
    assert answer["result"]["content"][0]["text"] == "still here"


async def test_each_host_hears_list_changes_and_only_the_log_messages_at_its_own_level(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    held = Held()
    server = ScriptedServer({"work": held})
    async with (
        gateway_of(tmp_path, {"alpha": server}) as gateway,
        shared(gateway) as hosts,
        attached(hosts, "host-a") as (_, a),
        attached(hosts, "host-b") as (_, b),
    ):
        await a.request("logging/setLevel", {"level": "warning"})
        await b.request("logging/setLevel", {"level": "debug"})
        await a.send({"id": 9, "method": "tools/call", "params": call_params("alpha__work")})
        (call,) = await held.wait(1)
        info = {"level": "info", "data": "chatty"}
        call.ds.deliver(b'{"jsonrpc":"2.0","method":"notifications/message","params":' + orjson.dumps(info) + b"}")
        server.tools["more"] = echo
        call.ds.deliver(b'{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}')
        heard_b = await b.replies.wait_for(lambda m: m.get("method") == "notifications/message")
        for side in (a, b):
            await side.replies.wait_for(lambda m: m.get("method") == "notifications/tools/list_changed")
        call.answer("done")
        await a.replies.answer(9)
        assert hosts.downstream_level() == "debug"  # what servers that log are set to: the most verbose host's
    assert heard_b["params"]["data"] == "chatty"
    assert not [m for m in a.replies.lines if m.get("method") == "notifications/message"]
