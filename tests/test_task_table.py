"""The task table (relay/tasks.py): host ids are mcpmux's own, per connection, and never reach another server's task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types

from mcpmux.catalog.build import Route
from mcpmux.downstream.connection import Downstream
from mcpmux.policy.verdict import Decision
from mcpmux.relay import tasks
from mcpmux.relay.tasks import TaskTable, created_result, modern_task, wants_task

TASK = {"taskId": "1", "status": "working", "createdAt": "t", "lastUpdatedAt": "t", "ttl": 5000, "pollInterval": 50}


def route(server: str) -> Route:
    tool = types.Tool(name=f"{server}__t", input_schema={"type": "object"})
    return Route(f"{server}__t", server, "t", tool, Decision(True, "policy.default", "allowed"))


def downstream(name: str, tmp_path: Path) -> Downstream:
    return Downstream(name, tmp_path / f"{name}.log")


def test_two_servers_task_ids_map_to_different_host_ids_and_back_to_their_own_server(tmp_path: Path):
    table = TaskTable()
    a, b = downstream("a", tmp_path), downstream("b", tmp_path)
    one, two = table.add(route("a"), {}, a, TASK), table.add(route("b"), {}, b, TASK)
    assert one.id != two.id and "1" not in (one.id, two.id)
    assert table.get(one.id) is one and table.get(two.id) is two
    assert table.of_downstream(a, "1") is one and table.of_downstream(b, "1") is two


def test_an_id_mcpmux_did_not_hand_out_is_unknown(tmp_path: Path):
    table = TaskTable()
    entry = table.add(route("a"), {}, downstream("a", tmp_path), TASK)
    for forged in ("1", entry.id.upper(), entry.id + "x", "b" + entry.id[1:], None, 1, ["1"]):
        assert table.get(forged) is None


def test_a_restarted_servers_connection_holds_none_of_the_old_tasks(tmp_path: Path):
    table = TaskTable()
    table.add(route("a"), {}, downstream("a", tmp_path), TASK)
    assert table.of_downstream(downstream("a", tmp_path), "1") is None


def test_the_oldest_task_is_forgotten_past_the_bound(tmp_path: Path):
    table = TaskTable()
    ds = downstream("a", tmp_path)
    first = table.add(route("a"), {}, ds, {**TASK, "taskId": "first"})
    for n in range(tasks.MAX_TASKS):
        table.add(route("a"), {}, ds, {**TASK, "taskId": str(n)})
    assert table.get(first.id) is None and table.of_downstream(ds, "first") is None
    assert len(table.entries()) == tasks.MAX_TASKS


def test_a_2026_host_sees_the_extensions_flat_task_and_a_handshake_host_the_utilitys(tmp_path: Path):
    entry = TaskTable().add(route("a"), {}, downstream("a", tmp_path), TASK)
    assert modern_task(TASK, entry) == {
        "taskId": entry.id,
        "status": "working",
        "createdAt": "t",
        "lastUpdatedAt": "t",
        "ttlMs": 5000,
        "pollIntervalMs": 50,
    }
    assert created_result(TASK, entry, modern=True)["resultType"] == "task"
    assert created_result(TASK, entry, modern=False) == {"task": {**TASK, "taskId": entry.id}}


def test_a_related_task_meta_names_the_hosts_id(tmp_path: Path):
    entry = TaskTable().add(route("a"), {}, downstream("a", tmp_path), TASK)
    result: dict[str, Any] = {"content": [], "_meta": {tasks.RELATED_TASK: {"taskId": "1"}, "other": 2}}
    assert entry.related(result)["_meta"] == {tasks.RELATED_TASK: {"taskId": entry.id}, "other": 2}


def test_only_a_required_task_tool_from_a_host_with_the_extension_runs_as_a_task():
    required = types.Tool(
        name="r", input_schema={"type": "object"}, execution=types.ToolExecution(task_support="required")
    )
    optional = types.Tool(
        name="o", input_schema={"type": "object"}, execution=types.ToolExecution(task_support="optional")
    )
    declared: dict[str, Any] = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
    assert wants_task(required, declared) is True
    assert wants_task(required, {}) is None
    assert wants_task(optional, declared) is False


def test_a_status_notified_before_the_task_exists_is_handed_out_once_and_only_for_its_own_server(tmp_path: Path):
    table = TaskTable()
    a, b = downstream("a", tmp_path), downstream("b", tmp_path)
    table.hold_early(a, TASK)
    from_b = table.add(route("b"), {}, b, TASK)
    from_a = table.add(route("a"), {}, a, TASK)
    assert table.take_early(from_b) is None
    assert table.take_early(from_a) == TASK
    assert table.take_early(from_a) is None


def test_a_downstream_request_names_the_hosts_task_id_and_never_one_the_host_was_not_given(tmp_path: Path):
    table = TaskTable()
    a = downstream("a", tmp_path)
    entry = table.add(route("a"), {}, a, TASK)

    def asking(task_id: str) -> dict[str, Any]:
        meta = {tasks.RELATED_TASK: {"taskId": task_id}, "keep": 1}
        return {"id": "e", "method": "elicitation/create", "params": {"message": "?", "_meta": meta}}

    mine = table.request_for_host(a, asking("1"))
    unknown = table.request_for_host(a, asking("2"))
    other = table.request_for_host(downstream("b", tmp_path), asking("1"))
    assert mine["params"]["_meta"] == {tasks.RELATED_TASK: {"taskId": entry.id}, "keep": 1}
    assert unknown["params"]["_meta"] == other["params"]["_meta"] == {"keep": 1}
