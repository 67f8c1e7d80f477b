"""The protocol era and the host's identity are decided once per connection, by the SDK's rule."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpmux.profile.trust import trust_profile
from tests.conftest import fixture_server_toml
from tests.e2e_helpers import REPO, RawHost, audit_events, serve_pid, wait_for_exit

pytestmark = pytest.mark.anyio

ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


def initialize(client: str, capabilities: dict[str, Any], request_id: int = 1, **extra: Any) -> dict[str, Any]:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": {"name": client, "version": "1.0"},
        **extra,
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


def call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_an_initialize_stamped_with_a_2026_envelope_is_a_handshake_host_audited_asked_and_told_of_changes(
    write_profile: Any, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        host = RawHost(proc)
        await host.send(initialize("stamped-host", {"elicitation": {}}, _meta=ENVELOPE))
        answer = await host.reply_to(1)
        assert answer["result"]["protocolVersion"] == "2025-11-25"
        await host.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

        # The downstream's elicitation reaches this host as a request (handshake era), not an input round.
        await host.send(call(2, "alpha__ask_then_work", {"steps": 0}))
        asked = await host.receive(lambda m: m.get("method") == "elicitation/create")
        await host.send(
            {"jsonrpc": "2.0", "id": asked["id"], "result": {"action": "accept", "content": {"answer": "go"}}}
        )
        result = (await host.reply_to(2))["result"]
        assert (bool(result.get("isError")), result["content"][0]["text"]) == (False, "go")

        # A catalog change after the handshake is announced on this host's session.
        profile.write_text(fixture_server_toml("alpha") + fixture_server_toml("beta"))
        trust_profile(profile)
        await host.receive(lambda m: m.get("method") == "notifications/tools/list_changed")
        pid = serve_pid(mcpmux_home)
        await host.close()
        await wait_for_exit(pid)
    calls = audit_events(mcpmux_home, "tool_call")
    assert [(e["exposed"], e["host"], e.get("host_version")) for e in calls] == [
        ("alpha__ask_then_work", "stamped-host", "1.0")
    ]


async def test_a_second_initialize_cannot_rename_the_host_out_of_a_hosts_rule(
    write_profile: Any, mcpmux_home: Path
) -> None:
    policy = '[[policy.rules]]\neffect = "deny"\ntools = ["alpha__echo"]\nhosts = ["agent-a"]\n'
    profile = write_profile(fixture_server_toml("alpha") + policy)
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        host = RawHost(proc)
        await host.send(initialize("agent-a", {}))
        await host.reply_to(1)
        await host.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await host.send(initialize("innocent", {}, request_id=2))
        await host.reply_to(2)
        await host.send(call(3, "alpha__echo", {"text": "hi"}))
        result = (await host.reply_to(3))["result"]
        pid = serve_pid(mcpmux_home)
        await host.close()
        await wait_for_exit(pid)
    assert result["isError"] is True
    assert "not allowed" in result["content"][0]["text"]
    assert {e["host"] for e in audit_events(mcpmux_home, "tool_call")} == {"agent-a"}
