"""The `tools/call` path: route, decide, forward, re-address, redact, audit.

Every agent call crosses this module, so it is built from callbacks rather than
tasks: a host's request line is parsed once, checked against the current
catalog snapshot and the policy, and written to the downstream with an id of
mcpmux's own; the downstream's reply is spliced back to the host's id straight
from the pipe callback. A per-call timer bounds the wait; a host's
`notifications/cancelled` and a downstream's exit end the call at once.

`Relay.call` wraps the same machinery in an awaitable for the SDK-served
meta-tools of search mode and the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from mcpmux import wire
from mcpmux.audit.events import (
    AUDIT_REQUIRED_RULE,
    UNREAD_ARGUMENTS,
    ErrorText,
    args_mode_for,
    audit_refusal,
    tool_call_event,
)
from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import INTEGRITY_RULE, Catalog, Route
from mcpmux.catalog.naming import closest
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.servers import Servers
from mcpmux.errors import DownstreamUnavailable, MCPMuxError, Unencodable
from mcpmux.relay.call import Call, Writer, progress_token
from mcpmux.relay.host import Host
from mcpmux.relay.tasks import TaskEntry, TaskTable, created_result, handshake_task, requires_task
from mcpmux.secrets.redact import Redactor
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

STARTUP_WAIT_SECONDS = 30.0
"""How long a call or listing made during start-up waits for the slowest downstream (front_handlers too)."""
MAX_DEPTH_RULE = "mcpmux.max_depth"
"""The `rule` of a call refused because its arguments nest deeper than mcpmux relays (wire.MAX_DEPTH)."""


def too_deep_text(exposed: str) -> str:
    return (
        f"tool '{exposed}' was not run: its arguments nest too deeply to relay (mcpmux relays messages that nest "
        f"arrays and objects at most {wire.MAX_DEPTH} levels deep); send the value flattened or as a string"
    )


class Relay:
    def __init__(
        self, supervisor: Servers, audit: AuditLog, host: Host, *, subscribe: bool = True, token_tag: str = ""
    ) -> None:
        self.supervisor = supervisor
        self.audit = audit
        self.host = host
        """Who is calling: policy `hosts` rules and audit events read it (the front binds it)."""
        self._token_tag = token_tag
        """Prefixed to the progress tokens sent downstream when hosts share downstreams (front/hosts.py): two
        hosts may use the same token for calls to one server, and each must hear only its own progress."""
        self._calls: dict[Hashable, Call] = {}
        """Calls in flight by the host's id; a tuple key is mcpmux's own (a local call, a parked one)."""
        self._deferred: set[Hashable] = set()
        """Host ids of calls waiting for a downstream's start-up before they are relayed."""
        self._progress: dict[Hashable, Call] = {}
        self._ids = 0
        self.tasks = TaskTable()
        """The tasks calls became on this connection, under ids of mcpmux's own (tasks.py)."""
        self.rounds: Callable[[Call, JSON], None] | None = None
        """Given to each call to a modern downstream: carries its input rounds to the host (a handshake host's
        front sets it; a 2026-07-28 host takes a downstream's rounds as they are)."""
        if subscribe:  # else whoever attaches several hosts hands this relay its progress (front/hosts.py)
            supervisor.subscribe(self)

    # --- entry points -----------------------------------------------------------------
    def call_from_host(
        self, host_id: Any, params: JSON, respond: Writer, notify: Writer | None = None, input_caps: JSON | None = None
    ) -> None:
        """Start a host's `tools/call`; `respond` gets exactly one response line for `host_id`.

        `input_caps`: a 2026-07-28 call's client capabilities (what may be asked of it, input_required.py)."""
        name = params.get("name")
        arguments = params.get("arguments")
        exposed = name if isinstance(name, str) else ""
        route = self.supervisor.catalog.routes.get(exposed)
        if route is None and not self.supervisor.ready.is_set():
            # A host may call before the downstreams are up (it knows names from an earlier run).
            self._deferred.add(host_id)
            self.supervisor.start_soon(self._call_when_ready, host_id, params, respond, notify, input_caps)
            return
        if route is None:
            if (failed := self._failed_server(exposed)) is not None:
                self._refuse_unavailable(host_id, exposed, arguments, respond, failed)
                return
            text = ErrorText.same(self._unknown_text(exposed))  # the tool the host asked for, and catalog names
            self._refuse(host_id, exposed, arguments, respond, "unknown", text)
            return
        verdict, policy = route.decision, self.supervisor.policy
        if verdict.rule != INTEGRITY_RULE:  # rules may name hosts: the catalog's verdict was made for no host
            verdict = policy.decide(exposed, tool=route.facts, host=self.host.name)
        state = self.supervisor.live(route.server)
        if verdict.allowed and state is not None and state.status == "idle":  # decided once it is up: one rate slot
            self._deferred.add(host_id)
            self.supervisor.start_soon(self._call_when_up, route.server, host_id, params, respond, notify, input_caps)
            return
        if verdict.rule != INTEGRITY_RULE:  # policy again, with this host and these arguments; fixed values applied
            args = wire.as_object(arguments)
            checked = policy.decide_call(exposed, args, tool=route.facts, host=self.host.name, cwd=route.cwd)
            verdict = checked.decision
            if verdict.allowed and checked.arguments is not args:
                params = {**params, "arguments": checked.arguments}
        if not verdict.allowed:
            # The reason may quote the argument that broke a constraint; the rule (a profile key) never does.
            text = ErrorText(f"tool '{exposed}' is not allowed: {verdict.reason}", f"tool '{exposed}' is not allowed")
            self._refuse(host_id, exposed, arguments, respond, "denied", text, route, verdict.rule)
            return
        if self.audit.failure is not None and self.supervisor.profile.audit.required:  # healthy: one attribute read
            # The log's last append failed. A call whose own append fails has already run and cannot be taken
            # back, so refusals start with the next call. Each refusal's event is tried too (stderr hears once
            # per failure); the first one written ends the refusals.
            text = ErrorText.same(audit_refusal(exposed, self.audit.path, self.audit.failure_reason))
            self._refuse(host_id, exposed, arguments, respond, "denied", text, route, AUDIT_REQUIRED_RULE)
            return
        ds = state.downstream if state is not None else None
        call = Call(self, host_id, route, arguments, respond, notify)
        call.rule = verdict.rule  # what allowed this call, for this host: its audit event names it
        call.input_caps = input_caps
        call.task_form = "task" in params
        call.redactor = self.supervisor.redactor  # every secret of the run, whichever server sends it
        if ds is not None and ds.era == "modern":
            call.rounds = self.rounds
        if ds is None or state is None or state.status != "running":  # never before its handshake is done
            reason = state.last_error if state is not None and state.last_error else "it is not running"
            if state is not None and state.status in ("restarting", "starting"):
                reason = f"it is restarting ({reason}); try again shortly (log: {state.log_path})"
            call.fail(DownstreamUnavailable(route.server, f"server '{route.server}' is unavailable: {reason}"))
            return
        forwarded = dict(params)
        forwarded["name"] = route.tool
        state.last_used = time.monotonic()
        call.uri_prefix = state.spec.prefix if state.spec.namespaced else None
        rule_limit = self.supervisor.policy.max_output_bytes(exposed, host=self.host.name, tool=route.facts)
        call.max_output_bytes = min(state.spec.max_output_bytes, rule_limit or state.spec.max_output_bytes)
        self._calls[host_id] = call
        token = progress_token(params)
        if token is not None and notify is not None:
            call.token = call.host_token = token
            if self._token_tag:
                call.token = f"{self._token_tag}{token}"
                forwarded["_meta"] = {**(wire.as_object(params.get("_meta")) or {}), "progressToken": call.token}
            self._progress[call.token] = call
        try:
            call.start(ds, forwarded, state.spec.timeout_seconds)
        except Unencodable:  # nothing was sent: the call is refused instead
            self.forget(call)
            text = ErrorText.same(too_deep_text(exposed))
            self._refuse(host_id, exposed, arguments, respond, "denied", text, route, MAX_DEPTH_RULE)

    async def _call_when_ready(
        self, host_id: Any, params: JSON, respond: Writer, notify: Writer | None, input_caps: JSON | None
    ) -> None:
        await self.supervisor.wait_ready(STARTUP_WAIT_SECONDS)
        self._deferred.discard(host_id)
        self.call_from_host(host_id, params, respond, notify, input_caps)

    async def _call_when_up(
        self,
        server: str,
        host_id: Any,
        params: JSON,
        respond: Writer,
        notify: Writer | None,
        input_caps: JSON | None,
    ) -> None:
        await self.supervisor.wake(server)
        self._deferred.discard(host_id)
        self.call_from_host(host_id, params, respond, notify, input_caps)

    async def call(self, name: str, arguments: JSON | None = None, meta: JSON | None = None) -> JSON:
        """Call an exposed tool and return its `CallToolResult` as a dict (never raises for tool failures).

        A tool that runs only as a task is called as one and its result waited for (search mode, `mcpmux call`)."""
        params: JSON = {"name": name, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        if (route := self.supervisor.catalog.routes.get(name)) is not None and requires_task(route.definition):
            params["task"] = {}
        result = await self._local(lambda host_id, respond: self.call_from_host(host_id, params, respond))
        if (entry := self.tasks.get((wire.as_object(result.get("task")) or {}).get("taskId"))) is not None:
            result = await self._local(lambda host_id, respond: self.fetch_task_result(host_id, entry, respond))
        return result

    async def _local(self, start: Callable[[Any, Writer], None]) -> JSON:
        """The result of one relayed request of mcpmux's own, started by `start(host_id, respond)`."""
        self._ids += 1
        host_id = ("local", self._ids)  # a tuple: no host's id (a string or an integer) can be the same
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def respond(line: bytes) -> None:
            if not done.done():
                done.set_result(line)

        start(host_id, respond)
        try:
            line = await done
        except BaseException:
            self.cancel_from_host(host_id, "cancelled")
            raise
        reply = wire.as_object(wire.loads(line)) or {}
        return wire.as_object(reply.get("result")) or wire.tool_error_result("the relay produced no result")

    def task_created(self, call: Call, ds: Downstream, task: JSON) -> tuple[TaskEntry, JSON, JSON | None]:
        entry = self.tasks.add(call.route, call.arguments, ds, task)
        modern = call.input_caps is not None  # a 2026-07-28 host polls: it takes no status notifications
        early = self.tasks.take_early(entry)
        shown_early = handshake_task(early, entry) if early is not None and not modern else None
        return entry, created_result(task, entry, modern=modern), shown_early

    def fetch_task_result(self, host_id: Any, entry: TaskEntry, respond: Writer) -> None:
        """Relay `tasks/result` of a task: answered, shaped and audited like a call of its tool, policy again."""
        route = entry.route
        verdict = route.decision
        if verdict.rule != INTEGRITY_RULE:  # the policy may have changed since the task began (a reload)
            verdict = self.supervisor.policy.decide(route.exposed, tool=route.facts, host=self.host.name)
        if not verdict.allowed:
            base = f"the result of task '{entry.id}' of tool '{route.exposed}' is not allowed"
            text = ErrorText(f"{base}: {verdict.reason}", base)
            self._refuse(
                host_id, route.exposed, entry.arguments, respond, "denied", text, route, verdict.rule, entry.id
            )
            return
        state = self.supervisor.live(route.server)
        call = Call(self, host_id, route, entry.arguments, respond, None)
        call.task, call.rule, call.redactor = entry, verdict.rule, self.supervisor.redactor
        if state is None or state.downstream is not entry.ds or state.status != "running":
            text = f"task '{entry.id}' is gone: server '{route.server}' has stopped or restarted since it began"
            call.fail(DownstreamUnavailable(route.server, text))
            return
        call.uri_prefix = state.spec.prefix if state.spec.namespaced else None
        rule_limit = self.supervisor.policy.max_output_bytes(route.exposed, host=self.host.name, tool=route.facts)
        call.max_output_bytes = min(state.spec.max_output_bytes, rule_limit or state.spec.max_output_bytes)
        self._calls[host_id] = call
        # The result comes when the task ends: wait as long as the task is kept, at least a call's timeout.
        timeout = max(state.spec.timeout_seconds, (entry.ttl_ms or 0) / 1000)
        call.start(entry.ds, {"taskId": entry.downstream_id}, timeout, method="tasks/result")

    def refuse_too_deep(self, host_id: Any, exposed: str, respond: Writer) -> None:
        """Refuse a host's `tools/call` whose line nests too deeply even to parse (its arguments are unknown)."""
        route = self.supervisor.catalog.routes.get(exposed)
        text = ErrorText.same(too_deep_text(exposed))
        self._refuse(host_id, exposed, UNREAD_ARGUMENTS, respond, "denied", text, route, MAX_DEPTH_RULE)

    def in_flight(self, host_id: Any) -> bool:
        """Whether a host's call under this id is still owed its answer (a second one may not reuse the id)."""
        return host_id in self._calls or host_id in self._deferred

    def owed(self) -> int:
        """How many host calls are still owed an answer (parked calls wait for a retry, not to answer)."""
        return sum(1 for key in self._calls if not isinstance(key, tuple)) + len(self._deferred)

    def cancel_from_host(self, host_id: Any, reason: str | None) -> bool:
        """Apply a host's `notifications/cancelled`; False when the id is not a relayed call."""
        try:
            call = self._calls[host_id]
        except (KeyError, TypeError):
            return False
        call.cancel(reason or "cancelled by the host")
        return True

    def cancel_all(self, reason: str) -> None:
        """End every call in flight (its host detached): each downstream hears `notifications/cancelled`."""
        for call in list(self._calls.values()):
            call.cancel(reason)

    def calls_to(self, ds: Downstream) -> list[Call]:
        """The calls in flight to `ds`, oldest first."""
        return [call for call in self._calls.values() if call.ds is ds]

    def park(self, call: Call) -> None:
        """A call whose host request was answered with `input_required`: its id is the host's to reuse,
        while the call goes on downstream until the host's retry is attached to it (`readdress`)."""
        self._ids += 1
        self.readdress(call, ("parked", self._ids), call.respond, {})

    def readdress(self, call: Call, host_id: Any, respond: Writer, params: JSON) -> None:
        """Point a call in flight at a new host request (a 2026-07-28 retry carrying input responses)."""
        self._calls.pop(call.host_id, None)
        call.host_id, call.respond = host_id, respond
        self._calls[host_id] = call
        if call.token is not None:  # the retry has a progress token of its own: progress goes on under it
            call.host_token = progress_token(params) or call.host_token

    # --- internals --------------------------------------------------------------------
    def _failed_server(self, exposed: str) -> str | None:
        """The failed server whose namespace `exposed` is in: its tools left the catalog, but the host may know them."""
        for name, state in self.supervisor.states.items():
            if state.status == "failed" and state.spec.namespaced and exposed.startswith(f"{state.spec.prefix}__"):
                return name
        return None

    def _refuse_unavailable(self, host_id: Any, exposed: str, arguments: Any, respond: Writer, server: str) -> None:
        state = self.supervisor.live(server)
        reason = state.last_error if state is not None and state.last_error else "it did not start"
        text = ErrorText.same(
            f"tool '{exposed}' is unavailable: server '{server}' failed to start: {reason} (see `mcpmux logs {server}`)"
        )
        redactor = self.supervisor.redactor
        full = redactor.redact_text(text.full) if redactor else text.full
        respond(wire.result_response(host_id, wire.tool_error_result(full)))
        self.audit_call(exposed, None, arguments, "unknown", "unavailable", 0.0, text, 0, server=server)

    def _unknown_text(self, exposed: str) -> str:
        hint = closest(exposed, self.supervisor.catalog.names())
        starting = "" if self.supervisor.ready.is_set() else " (downstreams are still starting)"
        suggestion = f"; did you mean '{hint}'?" if hint else ""
        return f"unknown tool '{exposed}'{starting}{suggestion}"

    def _refuse(
        self,
        host_id: Any,
        exposed: str,
        arguments: Any,
        respond: Writer,
        decision: str,
        text: ErrorText,
        route: Route | None = None,
        rule: str | None = None,
        task: str | None = None,
    ) -> None:
        redactor = self.supervisor.redactor
        full = redactor.redact_text(text.full) if redactor else text.full
        respond(wire.result_response(host_id, wire.tool_error_result(full)))
        self.audit_call(exposed, route, arguments, decision, decision, 0.0, text, 0, rule=rule, task=task)

    # DownstreamEvents: the relay hears progress; catalogs and requests are the front's
    def catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        pass

    def request(self, ds: Downstream, message: JSON) -> bool:
        return False

    def server_failed(self, name: str, reason: str) -> None:
        pass  # a call to its tools is answered "unavailable" from its state (`_failed_server`)

    def notification(self, ds: Downstream, method: str, message: JSON, line: bytes) -> None:
        if method != "notifications/progress":
            return
        params = wire.as_object(message.get("params")) or {}
        token = params.get("progressToken")
        call = self._progress.get(token) if isinstance(token, str | int) else None
        if call is not None and call.ds is ds and call.notify is not None:
            if call.host_token != token:
                line = wire.notification(method, {**params, "progressToken": call.host_token})
            call.notify(call.redactor.redact_bytes(line) if call.redactor else line)

    def forget(self, call: Call) -> None:
        self._calls.pop(call.host_id, None)
        if call.token is not None:
            self._progress.pop(call.token, None)

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
        server: str | None = None,
        task: str | None = None,
    ) -> None:
        mode = self.supervisor.profile.audit.args  # read per call, so a reloaded profile applies at once
        if mode == "redacted":  # a refused call has no redactor of its own: use its server's; without one, digest
            state = self.supervisor.live(route.server) if route else None
            redactor = redactor or (state.redactor if state else None)
            mode = args_mode_for(mode, redactor, state.spec.secret_names if state else None)
        event = tool_call_event(
            exposed=exposed,
            server=route.server if route else server,
            tool=route.tool if route else None,
            decision=decision,
            rule=rule or (route.decision.rule if route else None),
            outcome=outcome,
            duration_ms=duration_ms,
            arguments=arguments,
            args_mode=mode,
            redactor=redactor,
            key=self.audit.key,
            error=error,
            result_bytes=result_bytes,
            host=self.host.name,
        )
        if truncated:
            event["truncated"] = True
        if task is not None:
            event["task"] = task
        try:
            self.audit.write(event)
        except MCPMuxError as exc:  # an audit failure must not break the relay callback (audit.py logs it)
            logger.error("audit: %s", exc)
