"""One relayed `tools/call` in flight: it ends with exactly one of reply, fail, timeout or cancel.

The reply is spliced back to the host's id straight from the downstream's pipe
callback (no task, no model per message); results over the output limit are cut,
resource URIs are rewritten to ones the host can read back, and the outcome is
recorded by the owner (the relay) once, whichever way the call ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from mcpmux import wire
from mcpmux.audit import events as audit_events
from mcpmux.audit.events import ErrorText
from mcpmux.catalog.build import Route
from mcpmux.catalog.uris import expose_result_uris
from mcpmux.downstream.connection import Downstream
from mcpmux.errors import DownstreamError, DownstreamUnavailable, Unencodable
from mcpmux.profile.model import DEFAULT_MAX_OUTPUT
from mcpmux.relay.shape import truncate_response
from mcpmux.secrets.redact import Redactor
from mcpmux.wire import JSON

Writer = Callable[[bytes], None]
"""Writes one line toward the host."""


_SCAN_BYTES = 64 * 1024
"""Lines up to this size are searched for a URI before their result's blocks are walked."""


class CallOwner(Protocol):
    """What a call reports to when it ends (the relay)."""

    def forget(self, call: Call) -> None: ...

    def audit_call(
        self,
        exposed: str,
        route: Route | None,
        arguments: Any,
        decision: str,
        outcome: str,
        duration_ms: float,
        error: ErrorText | None,
        result_bytes: int,
        truncated: bool = False,
        *,
        rule: str | None = None,
        redactor: Redactor | None = None,
        task: str | None = None,
    ) -> None: ...

    def task_created(self, call: Call, ds: Downstream, task: JSON) -> tuple[TaskRef, JSON, JSON | None]:
        """Record the task a call became: the task, the result the host gets for it (with mcpmux's id), and a
        status notification the server sent before it, if the host's era takes them."""
        ...


class TaskRef(Protocol):
    """The task a `tasks/result` fetch belongs to (tasks.py's `TaskEntry`)."""

    @property
    def id(self) -> str: ...

    def related(self, result: JSON) -> JSON:
        """`result` with its related-task `_meta` naming the host's task id."""
        ...


def progress_token(params: JSON) -> Hashable | None:
    meta = wire.as_object(params.get("_meta")) or {}
    token = meta.get("progressToken")
    return token if isinstance(token, str | int) else None


class Call:
    """One relayed call in flight; gets exactly one of reply, fail, timeout or cancel."""

    __slots__ = (
        "arguments",
        "ds",
        "finished",
        "host_id",
        "host_token",
        "input_caps",
        "max_output_bytes",
        "notify",
        "params",
        "redactor",
        "relay",
        "respond",
        "rid",
        "rounds",
        "route",
        "rule",
        "started",
        "task",
        "task_form",
        "timer",
        "token",
        "truncated",
        "uri_prefix",
    )

    def __init__(
        self, relay: CallOwner, host_id: Any, route: Route, arguments: Any, respond: Writer, notify: Writer | None
    ):
        self.relay = relay
        self.host_id = host_id
        self.route = route
        self.rule: str | None = None
        self.arguments = arguments
        self.respond = respond
        self.notify = notify
        self.started = time.perf_counter()
        self.redactor: Redactor | None = None
        self.ds: Downstream | None = None
        self.rid = ""
        self.timer: asyncio.TimerHandle | None = None
        self.token: Hashable | None = None
        self.host_token: Hashable | None = None
        self.finished = False
        self.max_output_bytes = DEFAULT_MAX_OUTPUT
        self.truncated = False
        self.uri_prefix: str | None = None
        self.input_caps: JSON | None = None
        self.task_form = False
        """Whether the call asked to become a task: a `CreateTaskResult` answer is then recorded (tasks.py)."""
        self.task: TaskRef | None = None
        """The task whose result this fetches (`tasks/result`): its id is the host's, not the downstream's."""
        self.params: JSON = {}
        self.rounds: Callable[[Call, JSON], None] | None = None
        """Takes a modern downstream's `input_required` answer (a handshake host is asked; the call is resumed)."""

    def start(self, ds: Downstream, params: JSON, timeout: float, method: str = "tools/call") -> None:
        """Send the call; raises `wire.Unencodable` (nothing sent, no timer left) if its params cannot be written."""
        self.ds = ds
        self.params = params
        self.rid = ds.send_request(method, params, self)
        if not self.finished:  # a downstream that is gone fails the call at once
            self.timer = asyncio.get_running_loop().call_later(timeout, self.on_timeout, timeout)

    def resume(self, retry: JSON) -> None:
        """Send the call's next round downstream (`retry`: the input responses and request state), same timer."""
        if self.finished or self.ds is None:
            return
        try:
            self.rid = self.ds.send_request("tools/call", {**self.params, **retry}, self)
        except Unencodable:
            text = f"the answers to server '{self.route.server}''s input round nest too deeply for mcpmux to relay"
            self.fail(DownstreamError(self.route.server, text))

    # ReplySink
    def reply(self, line: bytes, message: JSON) -> None:
        if self.rounds is not None and b'"input_required"' in line and not self.finished:
            result = wire.as_object(message.get("result"))
            if result is not None and result.get("resultType") == "input_required":
                self.rounds(self, result)
                return
        if not self._finish():
            return
        error = message.get("error")
        if error is not None:
            self._answer_error(audit_events.call_error(self.route.server, self.route.tool, error), "error")
            return
        result = wire.as_object(message.get("result")) or {}
        if self.task_form and (task := wire.as_object(result.get("task"))) and isinstance(task.get("taskId"), str):
            try:
                self._became_task(line, task)
            except Unencodable:
                self._answer_error(ErrorText.same(self._too_deep_text()), "error")
            return
        outcome = "tool_error" if result.get("isError") else "ok"
        try:
            out = self._shaped(line, message, result)
        except Unencodable:  # only a result that was re-serialised: a spliced one is never re-encoded
            self._answer_error(ErrorText.same(self._too_deep_text()), "error")
            return
        if self.redactor:
            out = self.redactor.redact_bytes(out)
        self.respond(out)
        self._audit(outcome, None, len(line))

    def _too_deep_text(self) -> str:
        return (
            f"server '{self.route.server}' answered tool '{self.route.tool}' with a result that nests more "
            f"than {wire.MAX_DEPTH} levels deep, which mcpmux cannot relay"
        )

    def _became_task(self, line: bytes, task: JSON) -> None:
        assert self.ds is not None
        self.task, shown, early = self.relay.task_created(self, self.ds, task)
        out = wire.result_response(self.host_id, shown)
        self.respond(self.redactor.redact_bytes(out) if self.redactor else out)
        if early is not None and self.notify is not None:  # the status the server notified before this answer
            note = wire.notification("notifications/tasks/status", early)
            self.notify(self.redactor.redact_bytes(note) if self.redactor else note)
        self._audit("task", None, len(line))

    def _shaped(self, line: bytes, message: JSON, result: JSON) -> bytes:
        """The answer line for the host: cut to the output limit, resource URIs exposed, under the host's id."""
        if self.task is not None:  # a task's result names its task: by the id the host knows
            if len(line) > self.max_output_bytes:
                result = truncate_response(
                    line, message, self.redactor, self.max_output_bytes, server=self.route.server
                )
                self.truncated = True
            result = self.task.related(result)
            if self.uri_prefix is not None:
                result = expose_result_uris(result, self.uri_prefix) or result
            return wire.result_response(self.host_id, result)
        if len(line) > self.max_output_bytes:
            result = truncate_response(line, message, self.redactor, self.max_output_bytes, server=self.route.server)
            self.truncated = True
            if self.uri_prefix is not None:
                result = expose_result_uris(result, self.uri_prefix) or result
            return wire.result_response(self.host_id, result)
        # One scan of a small line finds both keys that name URIs: `"uri"` and MCP Apps' `resourceUri"` (a key or
        # value ending in `ri` costs a walk of the content blocks, nothing more; a quote inside a string is escaped).
        # A large line's blocks are few and its bytes many: its blocks are walked without a scan.
        named = len(line) > _SCAN_BYTES or b'ri"' in line
        if self.uri_prefix is not None and named and (linked := expose_result_uris(result, self.uri_prefix)):
            # Resource links, embedded resources and MCP Apps' `_meta` name URIs the host must be able to read
            # back through mcpmux.
            return wire.result_response(self.host_id, linked)
        return wire.with_id(line, message, self.rid, self.host_id)

    def fail(self, error: DownstreamError) -> None:
        if self._finish():
            # mcpmux's words about the server's process or connection, never about this call's arguments.
            outcome = "unavailable" if isinstance(error, DownstreamUnavailable) else "error"
            self._answer_error(ErrorText.same(str(error)), outcome)

    def on_timeout(self, timeout: float) -> None:
        if self._finish():
            if self.ds is not None:
                self.ds.abandon(self.rid, "timed out")
            text = f"server '{self.route.server}' did not answer tool '{self.route.tool}' within {timeout:g} s"
            self._answer_error(ErrorText.same(text), "timeout")

    def cancel(self, reason: str) -> None:
        if self._finish():
            if self.ds is not None:
                self.ds.abandon(self.rid, reason)
            self._audit("cancelled", ErrorText(reason, None), 0)  # the host's words: recorded with values only

    def _finish(self) -> bool:
        if self.finished:
            return False
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.relay.forget(self)
        return True

    def _answer_error(self, text: ErrorText, outcome: str) -> None:
        full = self.redactor.redact_text(text.full) if self.redactor else text.full
        self.respond(wire.result_response(self.host_id, wire.tool_error_result(full)))
        self._audit(outcome, text, 0)

    def _audit(self, outcome: str, error: ErrorText | None, size: int) -> None:
        duration = (time.perf_counter() - self.started) * 1000
        relay, route = self.relay, self.route
        relay.audit_call(
            route.exposed,
            route,
            self.arguments,
            "allowed",
            outcome,
            duration,
            error,
            size,
            self.truncated,
            rule=self.rule,
            redactor=self.redactor,
            task=self.task.id if self.task is not None else None,
        )
