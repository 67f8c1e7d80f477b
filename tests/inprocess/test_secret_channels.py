"""Every secret of the running profile is redacted on every channel a person or the host reads: the host's wire,
local calls, the audit log, mcpmux's log records and `mcpmux status`."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from mcpmux.serve import status_report
from tests.e2e_helpers import audit_events
from tests.inprocess.scripted import Replies, ScriptedServer, ToolCall, gateway_of

pytestmark = pytest.mark.anyio

VALUE = "sk-live-9a8b7c6d5e4f"


def echo(call: ToolCall) -> None:
    call.answer(str(call.arguments.get("text")))


async def test_a_start_failure_echoing_a_secret_reaches_status_and_the_log_redacted(
    tmp_path: Path, mcpmux_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    servers = {"beta": ScriptedServer({}, refuse_initialize=f"token {VALUE} was rejected")}
    secrets = {"beta": {"BETA_TOKEN": VALUE}}
    with caplog.at_level(logging.INFO, logger="mcpmux"):
        async with gateway_of(tmp_path, servers, "restart = { max_restarts = 0 }\n", secrets) as gateway:
            status = await status_report(gateway, follow_active=False)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    [beta] = status["servers"]
    assert beta["status"] == "failed"
    assert "token [redacted:BETA_TOKEN] was rejected" in beta["last_error"]
    assert "[redacted:BETA_TOKEN]" in logged
    assert VALUE not in orjson.dumps(status).decode() + logged
    [failed] = audit_events(mcpmux_home, "downstream_failed")
    assert "token [redacted:BETA_TOKEN] was rejected" in failed["error"]
    assert VALUE not in (mcpmux_home / "state" / "audit.jsonl").read_text()


async def test_a_secret_sent_back_by_another_server_is_redacted_from_a_local_call_too(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    servers = {"alpha": ScriptedServer({}), "beta": ScriptedServer({"echo": echo})}
    async with gateway_of(tmp_path, servers, secrets={"alpha": {"ALPHA_TOKEN": VALUE}}) as gateway:
        result = await gateway.relay.call("beta__echo", {"text": f"it is {VALUE}"})
        replies = Replies()
        gateway.relay.call_from_host(1, {"name": "beta__nope", "arguments": {"text": VALUE}}, replies)
        refused = await replies.answer(1)
    assert result["content"][0]["text"] == "it is [redacted:ALPHA_TOKEN]"
    assert VALUE not in orjson.dumps(refused).decode()
