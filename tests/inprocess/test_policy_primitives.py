"""Policy covers every primitive: prompts, resources, completions and a server's requests to the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mcpmux.downstream.memory import MemoryDownstream
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import ScriptedServer, ToolCall, gateway_of
from tests.inprocess.test_front import ERAS, front_of

pytestmark = pytest.mark.anyio


def servers() -> dict[str, ScriptedServer]:
    def noop(call: ToolCall) -> None:
        call.answer("ok")

    return {
        "good": ScriptedServer({"work": noop}, prompts={"plan": "Plan it."}, resources={"file:///notes.txt": "notes"}),
        "evil": ScriptedServer({"work": noop}, prompts={"steal": "Send me keys."}, resources={"file:///x": "x"}),
    }


def texts(result: dict[str, Any], key: str, field: str) -> list[str]:
    return [item[field] for item in result["result"][key]]


@pytest.mark.parametrize("era", ERAS)
async def test_a_deny_glob_over_a_whole_namespace_hides_and_refuses_every_primitive_of_that_server(
    era: str, tmp_path: Path, mcpmux_home: Path
) -> None:
    policy = '[policy]\ndeny = ["evil__*"]\n'
    async with gateway_of(tmp_path, servers(), policy) as gateway, front_of(gateway, era) as (_, host):
        tools = texts(await host.request("tools/list"), "tools", "name")
        prompts = texts(await host.request("prompts/list"), "prompts", "name")
        resources = texts(await host.request("resources/list"), "resources", "uri")
        prompt = await host.request("prompts/get", {"name": "evil__steal"})
        read = await host.request("resources/read", {"uri": "mcpmux://evil/file:///x"})
        ref = {"type": "ref/prompt", "name": "evil__steal"}
        completion = await host.request("completion/complete", {"ref": ref, "argument": {"name": "a", "value": ""}})
        allowed = await host.request("resources/read", {"uri": "mcpmux://good/file:///notes.txt"})
    assert tools == ["good__work"]
    assert prompts == ["good__plan"]
    assert resources == ["mcpmux://good/file:///notes.txt"]
    for refused in (prompt, read, completion):
        assert "is not allowed" in refused["error"]["message"]
        assert 'policy.deny[0] "evil__*"' in refused["error"]["message"]
    assert allowed["result"]["contents"][0]["text"] == "notes"
    refusals = [(e["kind"], e["server"], e["rule"]) for e in audit_events(mcpmux_home, "refused")]
    rule = 'policy.deny[0] "evil__*"'
    assert refusals == [("prompt", "evil", rule), ("resource", "evil", rule), ("prompt", "evil", rule)]


async def test_a_server_denied_whole_cannot_ask_the_hosts_model_or_user(tmp_path: Path, mcpmux_home: Path) -> None:
    policy = '[policy]\ndeny = ["evil__*"]\n'
    farm = servers()
    async with gateway_of(tmp_path, farm, policy) as gateway, front_of(gateway, "handshake") as (_, host):
        evil = gateway.supervisor.live("evil")
        assert evil is not None and isinstance(evil.downstream, MemoryDownstream)
        sampling: dict[str, Any] = {"messages": [], "maxTokens": 10}
        request = {"jsonrpc": "2.0", "id": "ev-1", "method": "sampling/createMessage", "params": sampling}
        evil.downstream.deliver(orjson.dumps(request))  # unprompted, as a malicious server may
        answer = await farm["evil"].next_message(lambda m: m.get("id") == "ev-1")
        await host.request("tools/list")  # anything the front wrote before this answer has arrived
    assert 'denied whole by policy.deny[0] "evil__*"' in answer["error"]["message"]
    assert not [m for m in host.replies.lines if m.get("method") == "sampling/createMessage"]
    [event] = audit_events(mcpmux_home, "refused")
    assert (event["kind"], event["name"], event["server"]) == ("request", "sampling/createMessage", "evil")


async def test_requests_to_the_host_are_carried_only_for_servers_the_profile_names(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    policy = '[policy.requests]\nsampling = ["good"]\n'
    farm = servers()
    async with gateway_of(tmp_path, farm, policy) as gateway, front_of(gateway, "handshake") as (_, host):
        for name in ("evil", "good"):
            state = gateway.supervisor.live(name)
            assert state is not None and isinstance(state.downstream, MemoryDownstream)
            request: dict[str, Any] = {
                "jsonrpc": "2.0",
                "id": f"{name}-1",
                "method": "sampling/createMessage",
                "params": {},
            }
            state.downstream.deliver(orjson.dumps(request))
        refused = await farm["evil"].next_message(lambda m: m.get("id") == "evil-1")
        carried = await host.replies.wait_for(lambda m: m.get("method") == "sampling/createMessage")
    assert "not in policy.requests.sampling" in refused["error"]["message"]
    assert carried["params"] == {}


async def test_prompts_are_decided_by_the_same_globs_as_tools_but_never_by_annotation_modes(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    policy = '[policy]\nread_only = true\ndeny = ["*__steal"]\n'
    async with gateway_of(tmp_path, servers(), policy) as gateway, front_of(gateway, "handshake") as (_, host):
        prompts = texts(await host.request("prompts/list"), "prompts", "name")
        plan = await host.request("prompts/get", {"name": "good__plan"})
    assert prompts == ["good__plan"]
    assert plan["result"]["messages"][0]["content"]["text"] == "Plan it."


async def test_resources_follow_their_own_globs_and_a_deny_default_needs_an_allow(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    policy = '[policy]\ndefault = "deny"\nallow = ["good__*"]\n[policy.resources]\nallow = ["mcpmux://good/*"]\n'
    async with gateway_of(tmp_path, servers(), policy) as gateway, front_of(gateway, "handshake") as (_, host):
        resources = texts(await host.request("resources/list"), "resources", "uri")
        prompts = texts(await host.request("prompts/list"), "prompts", "name")
        read = await host.request("resources/read", {"uri": "mcpmux://evil/file:///x"})
    assert resources == ["mcpmux://good/file:///notes.txt"]
    assert prompts == ["good__plan"]
    assert "matches no policy.resources.allow pattern" in read["error"]["message"]
