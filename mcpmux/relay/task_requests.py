"""A host's `tasks/*` requests, answered from the downstream that runs the task (ids mapped, tasks.py).

`tasks/result` (and a finished task's result inlined into a 2026-07-28 `tasks/get`) goes through
the relay like a call (`Relay.fetch_task_result`); `tasks/get`, `tasks/cancel` and `tasks/list`
are forwarded with the downstream's id and answered with the host's. An id mcpmux did not hand
out on this connection is refused with "Invalid params", as a server refuses an unknown task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from mcpmux import wire
from mcpmux.downstream.connection import Downstream, Refused
from mcpmux.errors import DownstreamError
from mcpmux.relay.call import Writer
from mcpmux.relay.relay import Relay
from mcpmux.relay.tasks import RELATED_TASK, TaskEntry, handshake_task, modern_task
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

TASK_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/cancel", "tasks/list", "tasks/update"})
MAX_LIST_PAGES = 100
ASK_WAIT_SECONDS = 5.0
"""How long a poll of a task needing input waits for the server to say what it needs (then answers without)."""


class TaskRequests:
    """Serves one connection's `tasks/*` requests; `modern` answers in the 2026-07-28 extension's shapes."""

    def __init__(self, relay: Relay) -> None:
        self._relay = relay
        self._ids = itertools.count()
        self._fetches: dict[str, asyncio.Future[JSON]] = {}
        """Per task (2026-07-28): its `tasks/result` in flight, started by a poll that found it needing input."""
        self._asked: dict[str, asyncio.Event] = {}
        """Per task: set when the server has asked for input (`asked`)."""

    def request(self, host_id: Any, method: str, params: JSON, respond: Writer, *, modern: bool) -> None:
        if method == "tasks/list" and not modern:
            self._relay.supervisor.start_soon(self._safely, host_id, respond, self._list, host_id, params, respond)
            return
        task_id = params.get("taskId")
        entry = self._relay.tasks.get(task_id)
        if entry is None:
            shown = f"'{task_id[:100]}'" if isinstance(task_id, str) else "without a string taskId"
            why = f"unknown task {shown}: mcpmux handed out no such task id on this connection"
            respond(wire.error_response(host_id, wire.INVALID_PARAMS, why))
        elif method == "tasks/result":
            self._relay.fetch_task_result(host_id, entry, respond)
        elif method == "tasks/update":  # answers to the task's input requests, each to the server's own request
            responses = wire.as_object(params.get("inputResponses")) or {}
            for key, response in responses.items():
                if (answer := wire.as_object(response)) is not None and (held := entry.asks.pop(key, None)):
                    entry.ds.write(wire.result_response(held[0], answer))
            respond(wire.result_response(host_id, {}))
        else:
            forward = (host_id, method, entry, respond, modern)
            self._relay.supervisor.start_soon(self._safely, host_id, respond, self._forward, *forward)

    async def _safely(
        self, host_id: Any, respond: Writer, work: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> None:
        """Run `work(*args)` in the supervisor's task group: an odd answer (one nested too deeply to write, say)
        costs this request an error, never the task group that runs every server."""
        try:
            await work(*args)
        except Exception:
            logger.exception("mcpmux failed to relay a tasks request")
            respond(wire.error_response(host_id, wire.INTERNAL_ERROR, "mcpmux failed to relay this; see its stderr"))

    async def _ask(self, ds: Downstream, method: str, params: JSON) -> JSON:
        """The downstream's answer as `{"result": …}` or `{"error": …}` (its own JSON-RPC error passed on whole),
        bounded by its server's `timeout_seconds` (a timeout, or a server gone, answers an error of mcpmux's)."""
        spec = self._relay.supervisor.profile.server(ds.name)
        seconds = spec.timeout_seconds if spec is not None else 60.0
        try:
            return {"result": await ds.request(method, params, seconds)}
        except Refused as exc:
            return {"error": exc.error or {"code": wire.INTERNAL_ERROR, "message": str(exc)}}
        except DownstreamError as exc:
            return {"error": {"code": wire.INTERNAL_ERROR, "message": str(exc)}}

    async def _forward(self, host_id: Any, method: str, entry: TaskEntry, respond: Writer, modern: bool) -> None:
        answer = await self._ask(entry.ds, method, {"taskId": entry.downstream_id})
        if (error := wire.as_object(answer.get("error"))) is not None:
            respond(wire.dumps({"jsonrpc": "2.0", "id": host_id, "error": error}))
            return
        task = wire.as_object(answer.get("result")) or {}
        if not modern:
            respond(wire.result_response(host_id, handshake_task(task, entry)))
        elif method == "tasks/cancel":
            respond(wire.result_response(host_id, {}))  # the extension's cancel is an empty acknowledgement
        else:
            shown = modern_task(task, entry)
            if task.get("status") == "completed":
                shown["result"] = await self._final(entry)
            elif task.get("status") == "failed":
                shown["error"] = await self._failure(entry)
            elif task.get("status") == "input_required":
                shown["inputRequests"] = await self._input_requests(entry)
            respond(wire.result_response(host_id, shown))

    def asked(self, ds: Downstream, message: JSON) -> bool:
        """Hold a server's request made for one of this host's tasks (its related-task id already the host's):
        a 2026-07-28 host finds it in `tasks/get`'s `inputRequests` and answers with `tasks/update`."""
        params = wire.as_object(message.get("params")) or {}
        related = wire.as_object((wire.as_object(params.get("_meta")) or {}).get(RELATED_TASK)) or {}
        entry = self._relay.tasks.get(related.get("taskId"))
        if entry is None or entry.ds is not ds or not wire.valid_id(message.get("id")):
            return False
        entry.asks[f"mcpmux-{next(self._ids)}"] = (message["id"], {"method": message.get("method"), "params": params})
        self._asked.setdefault(entry.id, asyncio.Event()).set()
        return True

    async def _input_requests(self, entry: TaskEntry) -> JSON:
        """What the task asks for. A 2025-11-25 server asks on the `tasks/result` that waits for the task, so
        that wait is started (once; its result is kept for the poll that finds the task done), and the ask
        waited for, boundedly."""
        self._start_fetch(entry)
        asked = self._asked.setdefault(entry.id, asyncio.Event())
        if not entry.asks:
            asked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asked.wait(), ASK_WAIT_SECONDS)
        return {key: request for key, (_, request) in entry.asks.items()}

    def _start_fetch(self, entry: TaskEntry) -> asyncio.Future[JSON]:
        """The task's `tasks/result` through the relay (shaped, audited), started once per task."""
        pending = self._fetches.get(entry.id)
        if pending is None:
            future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
            pending = self._fetches[entry.id] = future

            def respond(line: bytes) -> None:
                if not future.done():
                    reply = wire.as_object(wire.loads(line)) or {}
                    result = wire.as_object(reply.get("result"))
                    future.set_result(result or wire.tool_error_result("the relay produced no result"))

            self._relay.fetch_task_result(("task", next(self._ids)), entry, respond)
        return pending

    async def _final(self, entry: TaskEntry) -> JSON:
        """The finished task's result as the host may see it: fetched, shaped and audited once."""
        if entry.final is not None:
            return entry.final
        final: JSON = await asyncio.shield(self._start_fetch(entry))
        entry.final = final
        self._fetches.pop(entry.id, None)
        self._asked.pop(entry.id, None)
        return final

    async def _failure(self, entry: TaskEntry) -> JSON:
        """The JSON-RPC error the failed task ended with (its `tasks/result` answer)."""
        answer = await self._ask(entry.ds, "tasks/result", {"taskId": entry.downstream_id})
        error = wire.as_object(answer.get("error"))
        return error or {"code": wire.INTERNAL_ERROR, "message": f"task '{entry.id}' failed"}

    async def _list(self, host_id: Any, params: JSON, respond: Writer) -> None:
        """The host's tasks, as each downstream holding some lists them (tasks it no longer has are left out)."""
        entries = self._relay.tasks.entries()
        tasks: list[JSON] = []
        for ds in list({id(e.ds): e.ds for e in entries}.values()):
            cursor: object = None
            for _ in range(MAX_LIST_PAGES):
                answer = await self._ask(ds, "tasks/list", {"cursor": cursor} if cursor else {})
                page = wire.as_object(answer.get("result")) or {}
                listed = page.get("tasks")
                items: list[object] = listed if isinstance(listed, list) else []  # pyright: ignore[reportUnknownVariableType]
                for item in items:
                    task = wire.as_object(item)
                    entry = self._relay.tasks.of_downstream(ds, task.get("taskId")) if task else None
                    if task is not None and entry is not None:
                        tasks.append(handshake_task(task, entry))
                if not (cursor := page.get("nextCursor")):
                    break
        respond(wire.result_response(host_id, {"tasks": tasks}))
