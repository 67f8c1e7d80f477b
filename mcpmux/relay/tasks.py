"""Tasks relayed to the downstream that runs them, under ids of mcpmux's own.

A downstream's task id is its own: two servers may both hand out `1`, and a host that could
name a downstream's id could reach whichever server holds it. So the host never sees one: each
task a call becomes gets a random, unguessable id of mcpmux's own, mapped to (the server's
connection, its id). An id mcpmux did not hand out on this connection is unknown, whatever its
shape; a task of a server that has restarted since is gone with its process; a downstream's
status notification is mapped only for a task of that same connection.

Downstreams speak the 2025-11-25 tasks utility (a `task` in `tools/call`, a `CreateTaskResult`,
`tasks/get`, `tasks/result`, `tasks/cancel`, `tasks/list`, `notifications/tasks/status`). A
handshake-era host gets exactly that; a 2026-07-28 host (the `io.modelcontextprotocol/tasks`
extension) gets the extension's flat shapes (`resultType: "task"`, `ttlMs`, `pollIntervalMs`, a
finished task's `result` or `error` inlined into `tasks/get`). A task's result goes through the
same relay as a call's (relay.py `fetch_task_result`): policy again, redaction, size limit,
resource URIs, and an audit event naming the task.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mcpmux import wire
from mcpmux.catalog.build import Route
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.facts import TASKS_EXTENSION
from mcpmux.wire import JSON

RELATED_TASK = "io.modelcontextprotocol/related-task"
"""The `_meta` key naming the task a message belongs to."""
MAX_TASKS = 4096
"""Tasks remembered per connection; past it the oldest is forgotten (its id becomes unknown)."""
MAX_EARLY = 64
"""Status notifications held for tasks not created yet (a server notifies before its `CreateTaskResult`)."""


@dataclass(slots=True, eq=False)
class TaskEntry:
    id: str
    """The id the host knows (mcpmux's own)."""
    downstream_id: str
    route: Route
    arguments: Any
    ds: Downstream
    """The connection the task lives on: a restarted server has lost it."""
    ttl_ms: int | None
    final: JSON | None = None
    """A 2026-07-28 host's view of the finished task's result, once fetched (fetched and audited once)."""
    asks: dict[str, tuple[Any, JSON]] = field(default_factory=dict[str, tuple[Any, JSON]])
    """A 2026-07-28 host's outstanding `inputRequests`: key → (the server's request id, the request)."""

    def related(self, result: JSON) -> JSON:
        meta = wire.as_object(result.get("_meta"))
        if meta is None or RELATED_TASK not in meta:
            return result
        return {**result, "_meta": {**meta, RELATED_TASK: {"taskId": self.id}}}


class TaskTable:
    """The tasks of one host connection, by the host's id and by (connection, downstream id)."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, TaskEntry] = OrderedDict()
        self._by_downstream: dict[tuple[int, str], TaskEntry] = {}
        self._early: OrderedDict[tuple[int, str], tuple[Downstream, JSON]] = OrderedDict()
        """The latest status a server notified for a task id it has not answered a call with yet."""

    def hold_early(self, ds: Downstream, params: JSON) -> None:
        """Keep a status notification for a task not yet created: it may be one a call in flight becomes."""
        task_id = params.get("taskId")
        if isinstance(task_id, str):
            self._early[(id(ds), task_id)] = (ds, params)
            while len(self._early) > MAX_EARLY:
                self._early.popitem(last=False)

    def take_early(self, entry: TaskEntry) -> JSON | None:
        """The status notification held for `entry` before it was created, if any (handed out once)."""
        held = self._early.pop((id(entry.ds), entry.downstream_id), None)
        return held[1] if held is not None and held[0] is entry.ds else None

    def add(self, route: Route, arguments: Any, ds: Downstream, task: JSON) -> TaskEntry:
        downstream_id = str(task.get("taskId"))
        ttl = task.get("ttl")
        entry = TaskEntry(
            f"{route.server}-{secrets.token_urlsafe(18)}",
            downstream_id,
            route,
            arguments,
            ds,
            ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None,
        )
        self._by_id[entry.id] = entry
        self._by_downstream[(id(ds), downstream_id)] = entry
        while len(self._by_id) > MAX_TASKS:
            _, old = self._by_id.popitem(last=False)
            self._by_downstream.pop((id(old.ds), old.downstream_id), None)
        return entry

    def get(self, task_id: object) -> TaskEntry | None:
        return self._by_id.get(task_id) if isinstance(task_id, str) else None

    def of_downstream(self, ds: Downstream, downstream_id: object) -> TaskEntry | None:
        if not isinstance(downstream_id, str):
            return None
        entry = self._by_downstream.get((id(ds), downstream_id))
        return entry if entry is not None and entry.ds is ds else None

    def entries(self) -> list[TaskEntry]:
        return list(self._by_id.values())

    def request_for_host(self, ds: Downstream, message: JSON) -> JSON:
        """A downstream's request to the host, its related task (a task asking for input) named by the host's id;
        a task id the host was not given is taken off, never shown."""
        params = wire.as_object(message.get("params")) or {}
        meta = wire.as_object(params.get("_meta"))
        if meta is None or RELATED_TASK not in meta:
            return message
        entry = self.of_downstream(ds, (wire.as_object(meta[RELATED_TASK]) or {}).get("taskId"))
        kept = {k: v for k, v in meta.items() if k != RELATED_TASK}
        if entry is not None:
            kept[RELATED_TASK] = {"taskId": entry.id}
        return {**message, "params": {**params, "_meta": kept}}


def handshake_task(task: JSON, entry: TaskEntry) -> JSON:
    """A downstream's 2025-11-25 `Task`, under the host's id."""
    return {**task, "taskId": entry.id}


def modern_task(task: JSON, entry: TaskEntry) -> JSON:
    """A downstream's 2025-11-25 `Task` in the 2026-07-28 extension's shape, under the host's id."""
    shown: JSON = {"taskId": entry.id}
    for key in ("status", "statusMessage", "createdAt", "lastUpdatedAt"):
        if key in task:
            shown[key] = task[key]
    shown["ttlMs"] = task.get("ttl")
    if isinstance(poll := task.get("pollInterval"), int):
        shown["pollIntervalMs"] = poll
    return shown


def created_result(task: JSON, entry: TaskEntry, modern: bool) -> JSON:
    """The answer to the `tools/call` that became `task`: a `CreateTaskResult` of the host's era."""
    if modern:
        return {"resultType": "task", **modern_task(task, entry)}
    return {"task": handshake_task(task, entry)}


def requires_task(definition: object) -> bool:
    """Whether a tool runs only as a task (`execution.taskSupport = "required"`)."""
    return getattr(getattr(definition, "execution", None), "task_support", None) == "required"


def wants_task(definition: object, client_capabilities: JSON) -> bool | None:
    """For a 2026-07-28 call: True to run it as a task (the tool requires one and the host declared the
    extension), None to refuse it (required, not declared), False for a plain call."""
    if not requires_task(definition):
        return False
    extensions = wire.as_object(client_capabilities.get("extensions")) or {}
    return True if TASKS_EXTENSION in extensions else None


def missing_extension(request_id: Any, what: str) -> bytes:
    """The 2026-07-28 error for a host that did not declare the tasks extension on its request."""
    text = f"{what} needs the {TASKS_EXTENSION} extension in the request's client capabilities"
    error: JSON = {
        "code": MISSING_CAPABILITY,
        "message": text,
        "data": {"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
    }
    return wire.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


MISSING_CAPABILITY = -32021
"""JSON-RPC code: Missing Required Client Capability (2026-07-28)."""
