"""The front in-process, bytes in and bytes out, in both protocol eras: era choice, calls, changes, redaction."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from anyio.streams.memory import MemoryObjectSendStream

from mcpmux.front.server import Front
from mcpmux.gateway import Gateway
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import Replies, ScriptedServer, ToolCall, gateway_of

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
ERAS = ["handshake", "envelope"]
OLD_HOST = {"name": "old-host", "version": "1"}
CAPABILITIES: dict[str, Any] = {"sampling": {}, "elicitation": {}}


def envelope(client: str = "modern-host", **capabilities: Any) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "3.1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }


class HostSide:
    """The host's end of an in-process front: send messages, read what the front wrote."""

    def __init__(self, send: MemoryObjectSendStream[bytes], replies: Replies, era: str) -> None:
        self._send = send
        self.replies = replies
        self.era = era
        self._ids = 0

    async def send(self, message: dict[str, Any]) -> None:
        await self._send.send(orjson.dumps({"jsonrpc": "2.0", **message}))

    async def send_line(self, line: bytes) -> None:
        """One raw line, for what orjson would not write (messages nested deeper than it goes)."""
        await self._send.send(line)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request in this host's era (an envelope on each one in the 2026-07-28 era); its answer."""
        self._ids += 1
        params = dict(params or {})
        if self.era == "envelope":
            params["_meta"] = {**envelope(), **params.get("_meta", {})}
        await self.send({"id": self._ids, "method": method, "params": params})
        return await self.replies.answer(self._ids)

    async def open(self) -> None:
        if self.era == "handshake":
            await self.request(
                "initialize",
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": CAPABILITIES,
                    "clientInfo": {"name": "old-host", "version": "1"},
                },
            )
            await self.send({"method": "notifications/initialized"})


@asynccontextmanager
async def front_of(gateway: Gateway, era: str) -> AsyncGenerator[tuple[Front, HostSide]]:
    front = Front(gateway.supervisor, gateway.relay)
    send, receive = anyio.create_memory_object_stream[bytes](math.inf)
    replies = Replies()

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        async with receive:
            async for line in receive:
                on_line(line)

    async with send, anyio.create_task_group() as tg:
        tg.start_soon(front.serve, read_lines, replies)
        host = HostSide(send, replies, era)
        await host.open()
        yield front, host
        await send.aclose()


def echo(call: ToolCall) -> None:
    call.answer(f"echo {call.arguments.get('text')}")


@pytest.mark.parametrize("era", ERAS)
async def test_the_first_request_opens_the_era_and_binds_the_host_once(
    era: str, tmp_path: Path, mcpmux_home: Path
) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, era) as (front, host),
    ):
        await host.request("tools/list")
        assert front.channel.era == era
        assert front.host.info is not None
        first = front.host.info
        await host.request("tools/list", {"_meta": envelope("another-name")} if era == "envelope" else {})
    assert front.host.info is first
    assert first.name == ("old-host" if era == "handshake" else "modern-host")


async def test_an_initialize_with_an_envelope_opens_the_handshake_era(tmp_path: Path, mcpmux_home: Path) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, "none") as (front, host),
    ):
        params: dict[str, Any] = {
            "protocolVersion": "2025-11-25",
            "capabilities": {"sampling": {}},
            "clientInfo": {"name": "stamped", "version": "1"},
            "_meta": envelope(),
        }
        answer = await host.request("initialize", params)
    assert answer["result"]["protocolVersion"] == "2025-11-25"
    assert front.channel.era == "handshake"
    assert front.host.info is not None and (front.host.name, front.host.can("sampling")) == ("stamped", True)


@pytest.mark.parametrize("era", ERAS)
async def test_a_call_is_answered_under_the_hosts_id_in_either_era(era: str, tmp_path: Path, mcpmux_home: Path) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, era) as (_, host),
    ):
        answer = await host.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "yo"}})
    result = answer["result"]
    assert result["content"][0]["text"] == "echo yo"
    if era == "envelope":
        assert result["resultType"] == "complete"
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "mcpmux"
    else:
        assert "resultType" not in result
    [event] = audit_events(mcpmux_home, "tool_call")
    assert event["host"] == ("old-host" if era == "handshake" else "modern-host")


@pytest.mark.parametrize("era", ERAS)
async def test_a_catalog_change_is_a_line_to_a_handshake_host_and_never_to_an_envelope_host(
    era: str, tmp_path: Path, mcpmux_home: Path
) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, era) as (front, host),
    ):
        await host.request("tools/list")
        front.catalog_changed(gateway.supervisor.catalog, frozenset({"tools", "prompts"}))
        await host.request("tools/list")  # everything written before this answer has arrived
    notes = [m["method"] for m in host.replies.lines if "method" in m]
    expected = ["notifications/prompts/list_changed", "notifications/tools/list_changed"]
    assert notes == (expected if era == "handshake" else [])


@pytest.mark.parametrize("era", ERAS)
async def test_a_secret_of_one_server_returned_by_another_is_redacted_on_the_way_to_the_host(
    era: str, tmp_path: Path, mcpmux_home: Path
) -> None:
    value = "tok-4f9c2a7e51"
    leaked = ScriptedServer({"read": lambda call: call.answer(f"found {value} in /proc/1/environ")})
    secrets = {"alpha": {"ALPHA_TOKEN": value}}
    servers = {"alpha": ScriptedServer({"echo": echo}), "beta": leaked}
    async with gateway_of(tmp_path, servers, secrets=secrets) as gateway, front_of(gateway, era) as (_, host):
        answer = await host.request("tools/call", {"name": "beta__read", "arguments": {}})
    text = answer["result"]["content"][0]["text"]
    assert value not in orjson.dumps(host.replies.lines).decode()
    assert text == "found [redacted:ALPHA_TOKEN] in /proc/1/environ"


async def test_a_line_that_is_not_json_gets_a_parse_error_and_the_connection_lives_on(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    async with (
        gateway_of(tmp_path, {"alpha": ScriptedServer({"echo": echo})}) as gateway,
        front_of(gateway, "handshake") as (_, host),
    ):
        await host.send_line(b"{not json")
        error = await host.replies.wait_for(lambda m: "error" in m and m.get("id") is None)
        answer = await host.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "still"}})
    assert error["error"]["code"] == -32700
    assert answer["result"]["content"][0]["text"] == "echo still"


async def test_a_servers_elicitation_is_an_input_round_for_an_envelope_host_and_its_answer_goes_back(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    def ask(call: ToolCall) -> None:
        question: dict[str, Any] = {"message": "Which?", "requestedSchema": {"type": "object", "properties": {}}}
        call.ask("srv-q", "elicitation/create", question, lambda answer: call.answer(answer["result"]["action"]))

    server = ScriptedServer({"ask": ask})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, "envelope") as (_, host):
        meta = envelope(elicitation={})
        first = await host.request("tools/call", {"name": "alpha__ask", "arguments": {}, "_meta": meta})
        rounds = first["result"]
        [(key, asked)] = rounds["inputRequests"].items()
        retry: dict[str, Any] = {
            "name": "alpha__ask",
            "arguments": {},
            "_meta": meta,
            "requestState": rounds["requestState"],
            "inputResponses": {key: {"action": "accept", "content": {}}},
        }
        final = await host.request("tools/call", retry)
        answered = await server.next_message(lambda m: m.get("id") == "srv-q" and "result" in m)
    assert (rounds["resultType"], asked["method"]) == ("input_required", "elicitation/create")
    assert answered["result"] == {"action": "accept", "content": {}}
    assert final["result"]["content"][0]["text"] == "accept"


async def test_a_host_that_gives_no_name_is_covered_by_deny_rules_naming_hosts(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    rules = '[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "deny"\nhosts = ["agent-a"]\n'
    servers = {"alpha": ScriptedServer({"echo": echo})}
    async with gateway_of(tmp_path, servers, rules) as gateway, front_of(gateway, "none") as (front, host):
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "", "version": "1"}}
        await host.request("initialize", hello)
        listed = await host.request("tools/list")
        answer = await host.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "hi"}})
    assert front.host.info is not None and front.host.name is None
    assert listed["result"]["tools"] == []
    assert answer["result"]["isError"] is True
    assert "denied by policy.rules[0]" in answer["result"]["content"][0]["text"]


async def test_a_retry_naming_another_tool_is_never_attached_to_a_parked_call_whatever_its_request_state(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    """A 2026-07-28 downstream's `requestState` reaches the host as it is, so it may mint one of mcpmux's own
    tokens: a retry is attached to a parked call only when it names that call's tool."""

    def ask(call: ToolCall) -> None:
        question: dict[str, Any] = {"message": "Which?", "requestedSchema": {"type": "object", "properties": {}}}
        call.ask("srv-q", "elicitation/create", question, lambda answer: call.answer(answer["result"]["action"]))

    server = ScriptedServer({"ask": ask, "echo": echo})
    async with gateway_of(tmp_path, {"alpha": server}) as gateway, front_of(gateway, "envelope") as (_, host):
        meta = envelope(elicitation={})
        rounds = (await host.request("tools/call", {"name": "alpha__ask", "arguments": {}, "_meta": meta}))["result"]
        [key] = rounds["inputRequests"]
        answers: dict[str, Any] = {key: {"action": "accept", "content": {}}}
        stolen: dict[str, Any] = {"requestState": rounds["requestState"], "inputResponses": answers, "_meta": meta}
        other = await host.request("tools/call", {"name": "alpha__echo", "arguments": {"text": "mine"}, **stolen})
        final = await host.request("tools/call", {"name": "alpha__ask", "arguments": {}, **stolen})
    assert other["result"]["content"][0]["text"] == "echo mine"
    assert final["result"]["content"][0]["text"] == "accept"
    answered = [m for m in server.received if m.get("id") == "srv-q" and "result" in m]
    assert len(answered) == 1  # the answer went down once: with the retry that named the parked call's tool
    echoed = [m for m in server.received if m.get("method") == "tools/call" and m["params"]["name"] == "echo"]
    assert [sorted(m["params"]) for m in echoed] == [["arguments", "name"]]  # no retry fields, no envelope
