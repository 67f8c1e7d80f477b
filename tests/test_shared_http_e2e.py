"""End to end, the shared gateway served by URL: `mcpmux gateway --http 127.0.0.1:0`, SDK hosts over streamable HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import mcp_types as types
import pytest
import watchfiles
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION

from mcpmux.paths import state_paths
from mcpmux.shared.token import load_or_create
from tests.conftest import REPO, fixture_server_toml, processes_marked_by
from tests.e2e_helpers import audit_events, wait_for_exit
from tests.test_shared_e2e import shared_host, text_of

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
ACCEPT = "application/json, text/event-stream"


@dataclass
class Gateway:
    url: str
    pid: int
    token: str
    stderr: list[str] = field(default_factory=list[str])

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def http_gateway(profile: Path) -> AsyncGenerator[Gateway]:
    """`mcpmux gateway --http 127.0.0.1:0` on `profile`, its URL read from stderr; at the end SIGTERM-ed, waited for,
    and checked to have exited cleanly."""
    command = [sys.executable, "-m", "mcpmux", "gateway", "--http", "127.0.0.1:0", "-p", str(profile)]
    process = await anyio.open_process(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    assert process.stderr is not None
    gateway: Gateway | None = None
    announced = anyio.Event()
    lines: list[str] = []

    async def read_stderr(stream: anyio.abc.ByteReceiveStream) -> None:
        buffer = b""
        async for chunk in stream:  # read to the end: a full pipe would block the gateway's logging
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            for line in done:
                lines.append(line.decode(errors="replace"))
                if "by URL: " in lines[-1]:
                    announced.set()
        announced.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_stderr, process.stderr)
            with anyio.fail_after(30):
                await announced.wait()
            urls = [line.split("by URL: ", 1)[1].strip() for line in lines if "by URL: " in line]
            assert urls, f"the gateway printed no URL: {lines}"
            gateway = Gateway(urls[0], process.pid, load_or_create(state_paths()), lines)
            try:
                yield gateway
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                with anyio.fail_after(20):
                    await process.wait()
        assert process.returncode == 0, "\n".join(lines)
        assert not [line for line in lines if "unexpected error" in line]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def http_host(gateway: Gateway, name: str, **options: Any) -> AsyncGenerator[ClientSession]:
    async with (
        create_mcp_http_client(headers=gateway.auth) as client,
        streamable_http_client(gateway.url, http_client=client) as (read, write),
        ClientSession(read, write, client_info=types.Implementation(name=name, version="1.0"), **options) as session,
    ):
        await session.initialize()
        yield session


async def until_audited(home: Path, found: Callable[[list[dict[str, Any]]], bool], seconds: float = 20.0) -> None:
    """Wait until the audit log holds what `found` looks for: woken by each change of the log, no polling."""
    folder = home / "state"
    with anyio.fail_after(seconds):
        if found(audit_events(home)):
            return
        async for _ in watchfiles.awatch(folder, debounce=50, step=20):  # pyright: ignore[reportUnknownMemberType]
            if found(audit_events(home)):
                return


def status_serves() -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", "status", "--json"], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(done.stdout)["serves"]


async def test_an_http_host_lists_and_calls_a_tool_and_its_calls_are_audited_under_its_name(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with http_gateway(profile) as gateway, http_host(gateway, "url-host") as host:
        tools = await host.list_tools()
        answer = text_of(await host.call_tool("alpha__echo", {"text": "by URL"}))
    assert "alpha__echo" in {tool.name for tool in tools.tools}
    assert answer == "by URL"
    (call,) = audit_events(mcpmux_home, "tool_call")
    assert (call["tool"], call["host"], call["outcome"]) == ("echo", "url-host", "ok")
    (attached,) = audit_events(mcpmux_home, "host_attached")
    assert (attached["host"], attached["era"], attached["transport"]) == ("url-host", "handshake", "http")
    log = "\n".join(gateway.stderr)
    assert gateway.token not in log and gateway.token not in (mcpmux_home / "state" / "audit.jsonl").read_text()


async def test_requests_without_the_token_or_with_a_wrong_one_are_refused_401(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    initialize: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with http_gateway(profile) as gateway, httpx2.AsyncClient() as client:
        missing = await client.post(gateway.url, json=initialize, headers={"Accept": ACCEPT})
        wrong = await client.post(
            gateway.url, json=initialize, headers={"Accept": ACCEPT, "Authorization": f"Bearer {gateway.token[:-1]}x"}
        )
        basic = await client.post(
            gateway.url, json=initialize, headers={"Accept": ACCEPT, "Authorization": f"Basic {gateway.token}"}
        )
    assert [r.status_code for r in (missing, wrong, basic)] == [401, 401, 401]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert audit_events(mcpmux_home, "host_attached") == []


async def test_a_request_that_opens_no_session_attaches_no_host_and_audits_none(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    listing: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with http_gateway(profile) as gateway, httpx2.AsyncClient() as client:
        answer = await client.post(gateway.url, json=listing, headers={"Accept": ACCEPT, **gateway.auth})
    assert answer.status_code == 400  # only an initialize opens a session
    events = {e.get("event") for e in audit_events(mcpmux_home)}
    assert not events & {"host_attached", "host_detached"}


async def test_a_request_from_a_web_page_origin_is_refused_403_and_a_loopback_page_is_served(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "page", "version": "1"}},
    }
    async with http_gateway(profile) as gateway, httpx2.AsyncClient(headers=gateway.auth) as client:
        evil = await client.post(
            gateway.url, json=initialize, headers={"Accept": ACCEPT, "Origin": "http://evil.example"}
        )
        local = await client.post(
            gateway.url, json=initialize, headers={"Accept": ACCEPT, "Origin": "http://localhost:3000"}
        )
    assert evil.status_code == 403
    assert local.status_code == 200


async def test_a_request_naming_another_host_is_refused_as_dns_rebinding(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with http_gateway(profile) as gateway, httpx2.AsyncClient(headers=gateway.auth) as client:
        port = gateway.url.split(":")[2].split("/")[0]
        rebound = await client.post(gateway.url, json={}, headers={"Accept": ACCEPT, "Host": f"evil.example:{port}"})
        other_port = await client.post(gateway.url, json={}, headers={"Accept": ACCEPT, "Host": "127.0.0.1:1"})
    assert rebound.status_code == 421
    assert other_port.status_code == 421


async def test_two_http_hosts_and_a_shared_stdio_host_share_one_downstream_process(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with (
        http_gateway(profile) as gateway,
        http_host(gateway, "first") as first,
        http_host(gateway, "second") as second,
        shared_host(profile) as stdio,
    ):
        answers = [text_of(await h.call_tool("alpha__echo", {"text": n})) for n, h in (("1", first), ("2", second))]
        answers.append(text_of(await stdio.call_tool("alpha__echo", {"text": "3"})))
        downstreams = processes_marked_by(gateway.pid)
        (shown,) = [s for s in await anyio.to_thread.run_sync(status_serves) if s.get("shared")]
    assert answers == ["1", "2", "3"]
    assert len(downstreams) == 1
    assert shown["pid"] == gateway.pid and shown["url"] == gateway.url
    hosts = sorted((h["name"], h["transport"]) for h in shown["hosts"])
    assert hosts == [("first", "http"), ("mcp", "socket"), ("second", "http")]
    starts = [e for e in audit_events(mcpmux_home, "serve_start") if e.get("shared")]
    assert [e["pid"] for e in starts] == [gateway.pid]  # the stdio host attached to it, no second gateway


async def test_a_deleted_session_cancels_its_call_in_flight_while_the_other_hosts_call_completes(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    asked, go_on = anyio.Event(), anyio.Event()
    result: list[str] = []
    deleted: httpx2.Response | None = None
    rest: list[str] = []

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.set()
        await go_on.wait()  # the staying host's call stays in flight until the other session is gone
        return types.ElicitResult(action="accept", content={"answer": "completed"})

    def cancelled(events: list[dict[str, Any]]) -> bool:
        calls = [e for e in events if e.get("event") == "tool_call" and e.get("tool") == "slow"]
        detached = [e for e in events if e.get("event") == "host_detached" and e.get("host") == "leaving"]
        return bool(calls and detached)

    async with http_gateway(profile) as gateway, http_host(gateway, "staying", elicitation_callback=elicit) as staying:

        async def stay() -> None:
            result.append(text_of(await staying.call_tool("alpha__ask_then_work", {"steps": 1})))

        async with anyio.create_task_group() as tg, httpx2.AsyncClient(headers=gateway.auth, timeout=30) as raw:
            tg.start_soon(stay)
            with anyio.fail_after(30):
                await asked.wait()
                session = await open_raw_session(raw, gateway.url, "leaving")
                headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
                call = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "alpha__slow", "arguments": {"steps": 1}, "_meta": {"progressToken": "p"}},
                }
                async with raw.stream("POST", gateway.url, json=call, headers=headers) as stream:
                    lines = stream.aiter_lines()
                    async for line in lines:
                        if "notifications/progress" in line:
                            break
                    deleted = await raw.delete(gateway.url, headers=headers)
                    rest = [line async for line in lines]  # the call's stream ends with the session
                await until_audited(mcpmux_home, cancelled)
                go_on.set()
    assert deleted is not None and deleted.status_code == 200
    assert not any('"result"' in line for line in rest)
    assert result == ["completed"]
    (slow,) = [e for e in audit_events(mcpmux_home, "tool_call") if e["tool"] == "slow"]
    assert (slow["host"], slow["outcome"]) == ("leaving", "cancelled")
    (gone,) = [e for e in audit_events(mcpmux_home, "host_detached") if e["host"] == "leaving"]
    assert gone["cancelled"] == 1
    (done,) = [e for e in audit_events(mcpmux_home, "tool_call") if e["tool"] == "ask_then_work"]
    assert (done["host"], done["outcome"]) == ("staying", "ok")


async def open_raw_session(client: httpx2.AsyncClient, url: str, name: str) -> str:
    """An initialized session opened by hand (what an SDK host does), so a test can DELETE it mid-call."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": name, "version": "1"}},
    }
    opened = await client.post(url, json=initialize, headers={"Accept": ACCEPT})
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    initialized = await client.post(url, json=note, headers=headers)
    assert initialized.status_code == 202
    return session


async def test_a_host_in_auto_mode_falls_back_from_2026_discovery_to_initialize(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with (
        http_gateway(profile) as gateway,
        create_mcp_http_client(headers=gateway.auth) as client,
        Client(streamable_http_client(gateway.url, http_client=client), mode="auto") as host,
    ):
        answer = text_of(await host.call_tool("alpha__echo", {"text": "auto"}))
    assert answer == "auto"
    (attached,) = audit_events(mcpmux_home, "host_attached")
    assert attached["era"] == "handshake"


async def test_sigterm_ends_the_gateway_and_its_downstreams_failing_the_call_in_flight_and_leaving_no_process(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    progressed = anyio.Event()
    failed: list[BaseException] = []
    downstreams: list[int] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    async with http_gateway(profile) as gateway, http_host(gateway, "host") as host:

        async def call() -> None:
            try:
                await host.call_tool("alpha__slow", {"steps": 1}, progress_callback=on_progress)
            except MCPError as exc:
                failed.append(exc)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await progressed.wait()
                downstreams += processes_marked_by(gateway.pid)
                os.kill(gateway.pid, signal.SIGTERM)
                await wait_for_exit(gateway.pid, 20)
    assert failed, "the call in flight got no error"
    assert len(downstreams) == 2
    for pid in downstreams:
        await wait_for_exit(pid, 10)
    assert processes_marked_by(gateway.pid) == []
    stops = [e for e in audit_events(mcpmux_home, "serve_stop") if e.get("shared")]
    assert [e["reason"] for e in stops] == ["received SIGTERM"]


async def test_an_http_host_that_cancels_its_call_keeps_its_session(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    progressed = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progressed.set()

    async with http_gateway(profile) as gateway, http_host(gateway, "host") as host:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: host.call_tool("alpha__slow", {"steps": 1}, progress_callback=on_progress))
                await progressed.wait()
                tg.cancel_scope.cancel()
            await until_audited(mcpmux_home, lambda events: any(e.get("tool") == "slow" for e in events))
            after = text_of(await host.call_tool("alpha__echo", {"text": "still here"}))
    assert after == "still here"
    (slow,) = [e for e in audit_events(mcpmux_home, "tool_call") if e["tool"] == "slow"]
    assert slow["outcome"] == "cancelled"


def test_an_address_off_loopback_is_a_usage_error_naming_the_flag(write_profile: WriteProfile) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", "gateway", "--http", "0.0.0.0:8080", "-p", str(profile)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--http" in done.stderr and "127.0.0.1:PORT" in done.stderr


async def test_a_second_gateway_of_a_running_profile_is_refused_and_the_first_keeps_serving(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with http_gateway(profile) as gateway:
        second = await anyio.run_process(
            [sys.executable, "-m", "mcpmux", "gateway", "--http", "127.0.0.1:0", "-p", str(profile)],
            cwd=REPO,
            check=False,
        )
        async with http_host(gateway, "host") as host:
            answer = text_of(await host.call_tool("alpha__echo", {"text": "first"}))
    assert second.returncode == 1
    assert b"already running" in second.stderr
    assert answer == "first"


async def test_a_call_the_host_cancels_has_its_stream_ended_rather_than_left_open(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    rest: list[str] = []
    async with http_gateway(profile) as gateway, httpx2.AsyncClient(headers=gateway.auth, timeout=30) as raw:
        session = await open_raw_session(raw, gateway.url, "raw")
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "alpha__slow", "arguments": {"steps": 1}, "_meta": {"progressToken": "p"}},
        }
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
        with anyio.fail_after(20):
            async with raw.stream("POST", gateway.url, json=call, headers=headers) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if "notifications/progress" in line:
                        break
                assert (await raw.post(gateway.url, json=cancel, headers=headers)).status_code == 202
                rest = [line async for line in lines]
            after = await raw.post(
                gateway.url,
                json={
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "tools/call",
                    "params": {"name": "alpha__echo", "arguments": {"text": "on"}},
                },
                headers=headers,
            )
    assert any('"code":-32800' in line.replace(" ", "") for line in rest)
    assert '"on"' in after.text


async def test_an_idle_session_is_ended_and_its_host_detached(
    write_profile: WriteProfile, mcpmux_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCPMUX_HTTP_SESSION_IDLE_SECONDS", "0.5")
    profile = write_profile(fixture_server_toml("alpha"))

    def detached(events: list[dict[str, Any]]) -> bool:
        return any(e.get("event") == "host_detached" and e.get("host") == "idle" for e in events)

    async with http_gateway(profile) as gateway, httpx2.AsyncClient(headers=gateway.auth, timeout=30) as raw:
        session = await open_raw_session(raw, gateway.url, "idle")
        await until_audited(mcpmux_home, detached)
        headers = {"Accept": ACCEPT, "Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-06-18"}
        late = await raw.post(gateway.url, json={"jsonrpc": "2.0", "id": 9, "method": "ping"}, headers=headers)
    assert late.status_code == 404


async def test_a_host_that_speaks_only_2026_is_told_which_versions_are_served_by_url(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    refused: list[MCPError] = []
    async with (
        http_gateway(profile) as gateway,
        create_mcp_http_client(headers=gateway.auth) as client,
        Client(streamable_http_client(gateway.url, http_client=client), mode="2026-07-28") as host,
    ):
        try:
            await host.call_tool("alpha__echo", {"text": "modern"})
        except MCPError as exc:
            refused.append(exc)
    assert [exc.error.code for exc in refused] == [UNSUPPORTED_PROTOCOL_VERSION]
    assert "2025-06-18" in refused[0].error.data["supported"]
    assert audit_events(mcpmux_home, "tool_call") == []


async def test_policy_is_decided_for_each_http_host_by_its_own_name(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    rule = '[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "deny"\nhosts = ["untrusted*"]\n'
    profile = write_profile(fixture_server_toml("alpha") + rule)
    async with (
        http_gateway(profile) as gateway,
        http_host(gateway, "trusted-host") as trusted,
        http_host(gateway, "untrusted-host") as untrusted,
    ):
        allowed = await trusted.call_tool("alpha__echo", {"text": "ok"})
        denied = await untrusted.call_tool("alpha__echo", {"text": "no"})
    assert not allowed.is_error and denied.is_error
    calls = [(e["host"], e["decision"]) for e in audit_events(mcpmux_home, "tool_call")]
    assert calls == [("trusted-host", "allowed"), ("untrusted-host", "denied")]
