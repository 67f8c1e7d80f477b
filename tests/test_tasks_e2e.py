"""Tasks through `mcpmux serve`: a tool that runs only as a task works as it does directly, for hosts of both eras.

Downstreams speak the 2025-11-25 tasks utility: a raw fixture whose ids two servers share
(fixtures/task_server.py), and server-everything's `simulate-research-query`. The SDK's hosts
send no `tasks/*` requests, so the hosts here speak raw JSON-RPC lines.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpmux.secrets.store import KeyringStore
from tests.conftest import FIXTURES, REPO, host_session
from tests.e2e_helpers import RawHost, audit_events, npm_bin

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
RELATED = "io.modelcontextprotocol/related-task"
TASKS_EXT = "io.modelcontextprotocol/tasks"


def task_server(name: str, *settings: str) -> str:
    lines = [f"[servers.{name}]", f'command = "{sys.executable}"', f'args = ["{FIXTURES / "task_server.py"}"]']
    return "\n".join([*lines, *settings]) + "\n"


class Host:
    """A raw host of one era; `request` sends one request and returns its answer."""

    def __init__(self, raw: RawHost, modern: bool, extension: bool) -> None:
        self.raw, self.modern, self.extension = raw, modern, extension
        self.capabilities: dict[str, Any] = {}
        """What mcpmux advertised (initialize, or server/discover for a 2026-07-28 host)."""
        self._ids = 100

    def envelope(self) -> dict[str, Any]:
        caps: dict[str, Any] = {"extensions": {TASKS_EXT: {}}} if self.extension else {}
        return {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw-modern-host", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": caps,
        }

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._ids += 1
        params = dict(params or {})
        if self.modern:
            params["_meta"] = {**params.get("_meta", {}), **self.envelope()}
        await self.raw.send({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})
        return await self.raw.reply_to(self._ids)

    async def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.request(method, params)
        assert "result" in answer, answer
        return answer["result"]


@asynccontextmanager
async def serve(
    profile: Path, *, modern: bool = False, extension: bool = True, capabilities: dict[str, Any] | None = None
) -> AsyncGenerator[Host]:
    command = [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)]
    async with await anyio.open_process(command, cwd=REPO) as proc:
        host = Host(RawHost(proc), modern, extension)
        if not modern:
            params = {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities or {},
                "clientInfo": {"name": "raw", "version": "1"},
            }
            host.capabilities = (await host.result("initialize", params))["capabilities"]
            await host.raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        else:
            host.capabilities = (await host.result("server/discover"))["capabilities"]
        try:
            yield host
        finally:
            await host.raw.close()
            with anyio.fail_after(20):
                await proc.wait()


@pytest.fixture
async def stored_secret() -> AsyncIterator[tuple[str, str]]:
    """A secret in this run's keyring backend (a file keyring, or the Secret Service in CI)."""
    name, value = "task-token", "tok/+?=&task-secret-value"
    with anyio.fail_after(30):
        await KeyringStore().set(name, value)
    yield name, value
    with anyio.fail_after(30):
        await KeyringStore().delete(name)


def text_of(result: dict[str, Any]) -> str:
    return "".join(block.get("text", "") for block in result.get("content", []))


# --- handshake era (2025-11-25 tasks utility) ------------------------------------------------------
async def test_a_task_required_tool_runs_as_a_task_through_mcpmux(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(task_server("t"))
    async with serve(profile) as host:
        tools = {t["name"]: t for t in (await host.result("tools/list"))["tools"]}
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "done"}, "task": {}})
        task_id = created["task"]["taskId"]
        status = await host.result("tasks/get", {"taskId": task_id})
        result = await host.result("tasks/result", {"taskId": task_id})
        capabilities = host.capabilities
    assert capabilities["tasks"]["requests"] == {"tools": {"call": {}}}
    assert tools["t__report"]["execution"] == {"taskSupport": "required"}
    assert task_id != "task-1" and task_id.startswith("t-")
    assert (status["taskId"], status["status"]) == (task_id, "completed")
    assert text_of(result) == "done"
    assert result["_meta"][RELATED] == {"taskId": task_id}
    calls = audit_events(mcpmux_home, "tool_call")
    assert [(e["exposed"], e["outcome"], e.get("task")) for e in calls] == [
        ("t__report", "task", task_id),
        ("t__report", "ok", task_id),
    ]


async def test_two_servers_handing_out_the_same_task_id_never_collide_and_ids_cannot_be_forged(
    write_profile: WriteProfile,
):
    profile = write_profile(task_server("a") + task_server("b"))
    async with serve(profile) as host:
        one = await host.result("tools/call", {"name": "a__report", "arguments": {"text": "from a"}, "task": {}})
        two = await host.result("tools/call", {"name": "b__report", "arguments": {"text": "from b"}, "task": {}})
        a_id, b_id = one["task"]["taskId"], two["task"]["taskId"]
        result_b = await host.result("tasks/result", {"taskId": b_id})
        result_a = await host.result("tasks/result", {"taskId": a_id})
        forged = [
            await host.request("tasks/get", {"taskId": "task-1"}),
            await host.request("tasks/result", {"taskId": "b-" + a_id.removeprefix("a-")}),
            await host.request("tasks/cancel", {"taskId": a_id + "x"}),
            await host.request("tasks/get", {"taskId": {"nested": [1]}}),
        ]
    assert a_id != b_id
    assert (text_of(result_a), text_of(result_b)) == ("from a", "from b")
    assert [answer["error"]["code"] for answer in forged] == [-32602] * 4
    assert "mcpmux handed out no such task id" in forged[0]["error"]["message"]


async def test_status_notifications_list_and_cancel_carry_the_hosts_task_ids(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile) as host:
        held = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": "x", "hold": True}, "task": {}}
        )
        other = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": "y", "hold": True}, "task": {}}
        )
        held_id, other_id = held["task"]["taskId"], other["task"]["taskId"]
        listed = await host.result("tasks/list")
        cancelled = await host.result("tasks/cancel", {"taskId": other_id})
        await host.result("tools/call", {"name": "t__finish", "arguments": {}})  # notified before it answers
    statuses = [m["params"] for m in host.raw.seen if m.get("method") == "notifications/tasks/status"]
    assert sorted(t["taskId"] for t in listed["tasks"]) == sorted([held_id, other_id])
    assert (cancelled["taskId"], cancelled["status"]) == (other_id, "cancelled")
    assert [(p["taskId"], p["status"]) for p in statuses] == [
        (held_id, "working"),  # notified by the server before its answer: relayed right after it
        (other_id, "working"),
        (other_id, "cancelled"),
        (held_id, "completed"),
    ]


async def test_a_tasks_result_waits_for_the_task_and_is_redacted_and_cut_like_a_call_result(
    write_profile: WriteProfile, mcpmux_home: Path, stored_secret: tuple[str, str]
):
    name, value = stored_secret
    profile = write_profile(
        task_server("t", f'env = {{ T_TOKEN = {{ secret = "{name}" }} }}', "max_output_bytes = 2048")
    )
    async with serve(profile) as host:
        secret = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": f"leak {value}", "hold": True}, "task": {}}
        )
        big = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "z" * 10000}, "task": {}})
        await host.raw.send(
            {"jsonrpc": "2.0", "id": 1, "method": "tasks/result", "params": {"taskId": secret["task"]["taskId"]}}
        )
        finish: dict[str, Any] = {"name": "t__finish", "arguments": {}}
        await host.raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": finish})
        redacted = (await host.raw.reply_to(1))["result"]  # the waiting result comes once the task ends
        await host.raw.reply_to(2)
        cut = await host.result("tasks/result", {"taskId": big["task"]["taskId"]})
    assert value not in text_of(redacted)
    assert text_of(redacted).startswith("leak ")
    assert "over its max_output_bytes of 2048" in text_of(cut)
    assert len(text_of(cut)) < 2048
    fetched = [e for e in audit_events(mcpmux_home, "tool_call") if e["outcome"] != "task" and e.get("task")]
    assert [e.get("truncated", False) for e in fetched] == [False, True]


async def test_a_waiting_tasks_result_keeps_its_id_from_a_second_request(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile) as host:
        held = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": "x", "hold": True}, "task": {}}
        )
        wait: dict[str, Any] = {"taskId": held["task"]["taskId"]}
        await host.raw.send({"jsonrpc": "2.0", "id": 7, "method": "tasks/result", "params": wait})
        await host.raw.send({"jsonrpc": "2.0", "id": 7, "method": "tasks/result", "params": wait})
        again = await host.raw.reply_to(7)
        await host.raw.send(
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "t__finish", "arguments": {}}}
        )
        clash = await host.raw.reply_to(7)
        await host.result("tools/call", {"name": "t__finish", "arguments": {}})
        answers = [m for m in host.raw.seen if m.get("id") == 7 and "result" in m]
    assert again["error"]["code"] == clash["error"]["code"] == -32600
    assert [text_of(m["result"]) for m in answers] == ["x"]


async def test_a_task_that_needs_input_asks_the_host_under_the_hosts_task_id(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile, capabilities={"elicitation": {}}) as host:
        created = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": "x", "ask": True}, "task": {}}
        )
        task_id = created["task"]["taskId"]
        status = await host.result("tasks/get", {"taskId": task_id})
        await host.raw.send({"jsonrpc": "2.0", "id": 1, "method": "tasks/result", "params": {"taskId": task_id}})
        asked = await host.raw.receive(lambda m: m.get("method") == "elicitation/create")
        answer = {"action": "accept", "content": {"name": "Ada"}}
        await host.raw.send({"jsonrpc": "2.0", "id": asked["id"], "result": answer})
        result = (await host.raw.reply_to(1))["result"]
    assert status["status"] == "input_required"
    assert asked["params"]["_meta"][RELATED] == {"taskId": task_id}
    assert text_of(result) == "hello Ada"


async def test_a_task_nested_deeper_than_mcpmux_writes_costs_its_answers_and_nothing_else(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile) as host:
        deep = await host.result(
            "tools/call", {"name": "t__report", "arguments": {"text": "x", "deep": True}, "task": {}}
        )
        listed = await host.request("tasks/list")  # the deep task is listed by the server
        after = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "fine"}, "task": {}})
        result = await host.result("tasks/result", {"taskId": after["task"]["taskId"]})
    assert deep["isError"] is True and "nests more than" in text_of(deep)
    assert listed["error"]["code"] == -32603
    assert text_of(result) == "fine"


async def test_a_denied_tool_becomes_no_task(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(task_server("t") + '[policy]\ndeny = ["t__report"]\n')
    async with serve(profile) as host:
        refused = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "x"}, "task": {}})
        listed = await host.result("tasks/list")
    assert refused["isError"] is True
    assert "task" not in refused
    assert listed["tasks"] == []
    assert [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")] == ["denied"]


async def test_a_tasks_result_is_refused_once_a_reload_has_denied_its_tool(
    write_profile: WriteProfile, mcpmux_home: Path
):
    from mcpmux.profile.trust import trust_profile

    profile = write_profile(task_server("t"))
    async with serve(profile) as host:
        await host.result("tools/list")  # from now on the host hears of catalog changes
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "x"}, "task": {}})
        profile.write_text(task_server("t") + '[policy]\ndeny = ["t__report"]\n')
        trust_profile(profile)
        await host.raw.receive(lambda m: m.get("method") == "notifications/tools/list_changed")
        refused = await host.result("tasks/result", {"taskId": created["task"]["taskId"]})
    assert refused["isError"] is True
    assert 'is not allowed: denied by policy.deny[0] "t__report"' in text_of(refused)
    calls = audit_events(mcpmux_home, "tool_call")
    assert [(e["outcome"], e["rule"], e.get("task")) for e in calls][-1] == (
        "denied",
        'policy.deny[0] "t__report"',
        created["task"]["taskId"],
    )


async def test_search_modes_call_tool_and_mcpmux_call_wait_for_a_task_tools_result(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile('expose = "search"\n' + task_server("t"))
    async with host_session(profile) as host:
        with anyio.fail_after(30):
            via_search = await host.call_tool(
                "mcpmux__call_tool", {"name": "t__report", "arguments": {"text": "found"}}
            )
    command = [sys.executable, "-m", "mcpmux", "call", "t__report", "text=from the cli", "--profile", str(profile)]
    with anyio.fail_after(60):
        cli = await anyio.run_process(command, cwd=REPO, check=False)
    assert not via_search.is_error
    assert [getattr(block, "text", None) for block in via_search.content] == ["found"]
    assert cli.returncode == 0, cli.stderr
    assert b"from the cli" in cli.stdout
    outcomes = [(e["outcome"], bool(e.get("task"))) for e in audit_events(mcpmux_home, "tool_call")]
    assert outcomes == [("task", True), ("ok", True)] * 2


# --- 2026-07-28 era (io.modelcontextprotocol/tasks extension) ----------------------------------------
async def test_a_2026_host_gets_a_task_handle_and_the_result_inlined_when_it_polls(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(task_server("t"))
    async with serve(profile, modern=True) as host:
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "modern"}})
        polled = await host.result("tasks/get", {"taskId": created["taskId"]})
        again = await host.result("tasks/get", {"taskId": created["taskId"]})
        capabilities = host.capabilities
    assert capabilities["extensions"][TASKS_EXT] == {}
    assert created["resultType"] == "task"
    assert created["taskId"].startswith("t-") and created["ttlMs"] == 60000
    assert (polled["resultType"], polled["status"]) == ("complete", "completed")
    assert text_of(polled["result"]) == "modern" and polled["pollIntervalMs"] == 100
    assert again["result"] == polled["result"]
    outcomes = [e["outcome"] for e in audit_events(mcpmux_home, "tool_call")]
    assert outcomes == ["task", "ok"]  # the result is fetched (and audited) once, however often the host polls


async def test_a_2026_host_calling_a_task_tool_before_its_server_has_started_still_gets_a_task(
    write_profile: WriteProfile,
):
    # A server that takes 2 s to start: the host's first call arrives before mcpmux knows its tools.
    command = f"sleep 2 && exec {shlex.quote(sys.executable)} {shlex.quote(str(FIXTURES / 'task_server.py'))}"
    profile = write_profile(f'[servers.t]\ncommand = "sh"\nargs = ["-c", {json.dumps(command)}]\n')
    async with serve(profile, modern=True) as host:
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "early"}})
        polled = await host.result("tasks/get", {"taskId": created["taskId"]})
    assert created["resultType"] == "task"
    assert text_of(polled["result"]) == "early"


async def test_a_2026_host_cancels_a_task_and_a_forged_id_is_unknown(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile, modern=True) as host:
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "x", "hold": True}})
        ack = await host.result("tasks/cancel", {"taskId": created["taskId"]})
        polled = await host.result("tasks/get", {"taskId": created["taskId"]})
        forged = await host.request("tasks/get", {"taskId": "task-1"})
    assert ack["resultType"] == "complete"
    assert polled["status"] == "cancelled"
    assert forged["error"]["code"] == -32602


async def test_a_2026_host_answers_a_tasks_input_request_with_tasks_update(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile, modern=True) as host:
        created = await host.result("tools/call", {"name": "t__report", "arguments": {"text": "x", "ask": True}})
        task_id = created["taskId"]
        asking = await host.result("tasks/get", {"taskId": task_id})
        [(key, request)] = asking["inputRequests"].items()
        responses = {key: {"action": "accept", "content": {"name": "Ada"}}, "forged": {"action": "accept"}}
        ack = await host.result("tasks/update", {"taskId": task_id, "inputResponses": responses})
        with anyio.fail_after(20):
            done = await host.result("tasks/get", {"taskId": task_id})
            while done["status"] != "completed":  # the extension's acknowledgement is eventually consistent
                await anyio.sleep(done.get("pollIntervalMs", 100) / 1000)
                done = await host.result("tasks/get", {"taskId": task_id})
    assert asking["status"] == "input_required"
    assert request["method"] == "elicitation/create"
    assert request["params"]["_meta"][RELATED] == {"taskId": task_id}
    assert ack["resultType"] == "complete"
    assert text_of(done["result"]) == "hello Ada"


async def test_a_2026_host_without_the_tasks_extension_is_told_what_it_lacks(write_profile: WriteProfile):
    profile = write_profile(task_server("t"))
    async with serve(profile, modern=True, extension=False) as host:
        call = await host.request("tools/call", {"name": "t__report", "arguments": {"text": "x"}})
        get = await host.request("tasks/get", {"taskId": "anything"})
    for answer in (call, get):
        assert answer["error"]["code"] == -32021
        assert answer["error"]["data"] == {"requiredCapabilities": {"extensions": {TASKS_EXT: {}}}}


# --- server-everything's simulate-research-query: through mcpmux as directly --------------------------
def everything_bin() -> str:
    return npm_bin("@modelcontextprotocol/server-everything", "mcp-server-everything", "MCPMUX_EVERYTHING_BIN")


async def research_directly(topic: str) -> dict[str, Any]:
    """The research report server-everything gives a host that speaks to it directly."""
    async with await anyio.open_process([everything_bin(), "stdio"], stderr=subprocess.DEVNULL) as proc:
        raw = RawHost(proc)
        params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
        await raw.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
        await raw.reply_to(1)
        await raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {"name": "simulate-research-query", "arguments": {"topic": topic}, "task": {}}
        await raw.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        task_id = (await raw.reply_to(2))["result"]["task"]["taskId"]
        await raw.send({"jsonrpc": "2.0", "id": 3, "method": "tasks/result", "params": {"taskId": task_id}})
        result = (await raw.reply_to(3))["result"]
        proc.terminate()  # it keeps its tasks' timers running after its input ends
        with anyio.fail_after(10):
            await proc.wait()
    return result


def everything_profile() -> str:
    return f'[servers.every]\ncommand = "{everything_bin()}"\nargs = ["stdio"]\n'


async def test_server_everythings_research_task_gives_the_same_report_through_mcpmux_as_directly(
    write_profile: WriteProfile,
):
    direct = await research_directly("tides")
    profile = write_profile(everything_profile())
    async with serve(profile) as host:
        tools = {t["name"]: t for t in (await host.result("tools/list"))["tools"]}
        plain = await host.result("tools/call", {"name": "every__simulate-research-query", "arguments": {"topic": "x"}})
        call = {"name": "every__simulate-research-query", "arguments": {"topic": "tides"}, "task": {}}
        task_id = (await host.result("tools/call", call))["task"]["taskId"]
        result = await host.result("tasks/result", {"taskId": task_id})
    assert tools["every__simulate-research-query"]["execution"] == {"taskSupport": "required"}
    assert plain["isError"] is True  # as directly: the tool runs only as a task
    assert result["content"] == direct["content"]
    assert result["_meta"][RELATED] == {"taskId": task_id}


async def test_a_2026_host_polls_server_everythings_research_task_to_its_report(write_profile: WriteProfile):
    direct = await research_directly("tides")
    profile = write_profile(everything_profile())
    async with serve(profile, modern=True) as host:
        call = {"name": "every__simulate-research-query", "arguments": {"topic": "tides"}}
        task = await host.result("tools/call", call)
        assert task["resultType"] == "task"
        with anyio.fail_after(30):
            while task["status"] == "working":  # the extension's client polls, at the interval the server asks for
                await anyio.sleep(task["pollIntervalMs"] / 1000)
                task = await host.result("tasks/get", {"taskId": task["taskId"]})
    assert task["status"] == "completed"
    assert task["result"]["content"] == direct["content"]
