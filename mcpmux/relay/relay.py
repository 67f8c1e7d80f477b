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

import anyio

from mcpmux import wire
from mcpmux.audit.events import AUDIT_REQUIRED_RULE, args_mode_for, audit_refusal, tool_call_event
from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import INTEGRITY_RULE, Route
from mcpmux.catalog.naming import closest
from mcpmux.catalog.uris import expose_result_uris
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.errors import DownstreamError, DownstreamUnavailable, MCPMuxError
from mcpmux.profile.model import DEFAULT_MAX_OUTPUT
from mcpmux.relay.shape import truncate_response
from mcpmux.secrets.redact import Redactor
from mcpmux.wire import JSON

Writer = Callable[[bytes], None]
logger = logging.getLogger("mcpmux")

STARTUP_WAIT_SECONDS = 30.0
"""How long a call or listing made during start-up waits for the slowest downstream (front_handlers too)."""


class Relay:
    def __init__(self, supervisor: Supervisor, audit: AuditLog) -> None:
        self.supervisor = supervisor
        self.audit = audit
        self.host_name: str | None = None
        self._calls: dict[Hashable, _Call] = {}
        self._progress: dict[Hashable, _Call] = {}
        self._ids = 0
        supervisor.listeners.append(self._on_notification)

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
            self.supervisor.start_soon(self._call_when_ready, host_id, params, respond, notify, input_caps)
            return
        if route is None:
            self._refuse(host_id, exposed, arguments, respond, "unknown", self._unknown_text(exposed))
            return
        verdict = route.decision
        if verdict.rule != INTEGRITY_RULE:  # policy again, with this host and these arguments; fixed values applied
            args = wire.as_object(arguments)
            checked = self.supervisor.policy.decide_call(exposed, args, tool=route.facts, host=self.host_name)
            verdict = checked.decision
            if verdict.allowed and checked.arguments is not args:
                params = {**params, "arguments": checked.arguments}
        if not verdict.allowed:
            text = f"tool '{exposed}' is not allowed: {verdict.reason}"
            self._refuse(host_id, exposed, arguments, respond, "denied", text, route, verdict.rule)
            return
        if self.audit.failure is not None and self.supervisor.profile.audit.required:  # healthy: one attribute read
            # The log's last append failed. A call whose own append fails has already run and cannot be taken
            # back, so refusals start with the next call. Each refusal's event is tried too (stderr hears once
            # per failure); the first one written ends the refusals.
            text = audit_refusal(exposed, self.audit.path, self.audit.failure_reason)
            self._refuse(host_id, exposed, arguments, respond, "denied", text, route, AUDIT_REQUIRED_RULE)
            return
        state = self.supervisor.live(route.server)
        if state is not None and state.status == "idle":
            self.supervisor.start_soon(self._call_when_up, route.server, host_id, params, respond, notify, input_caps)
            return
        ds = state.downstream if state is not None else None
        call = _Call(self, host_id, route, arguments, respond, notify)
        call.input_caps = input_caps
        if ds is None or state is None or state.status != "running":  # never before its handshake is done
            reason = state.last_error if state is not None and state.last_error else "it is not running"
            if state is not None and state.status in ("restarting", "starting"):
                log = self.supervisor.paths.server_log(route.server)
                reason = f"it is restarting ({reason}); try again shortly (log: {log})"
            call.fail(DownstreamUnavailable(route.server, f"server '{route.server}' is unavailable: {reason}"))
            return
        forwarded = dict(params)
        forwarded["name"] = route.tool
        state.last_used = time.monotonic()
        call.redactor = state.redactor
        call.uri_prefix = state.spec.prefix if state.spec.namespaced else None
        rule_limit = self.supervisor.policy.max_output_bytes(exposed, host=self.host_name)
        call.max_output_bytes = min(state.spec.max_output_bytes, rule_limit or state.spec.max_output_bytes)
        self._calls[host_id] = call
        token = _progress_token(params)
        if token is not None and notify is not None:
            call.token = call.host_token = token
            self._progress[token] = call
        call.start(ds, forwarded, state.spec.timeout_seconds)

    async def _call_when_ready(
        self, host_id: Any, params: JSON, respond: Writer, notify: Writer | None, input_caps: JSON | None
    ) -> None:
        with anyio.move_on_after(STARTUP_WAIT_SECONDS):
            await self.supervisor.ready.wait()
        self.supervisor.ready.set()  # past the bound, answer with what is up rather than wait again
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
        state = self.supervisor.live(server)
        if state is not None and state.status == "idle":  # did not come up: answer rather than wake it again
            state.status = "failed"
        self.call_from_host(host_id, params, respond, notify, input_caps)

    async def call(self, name: str, arguments: JSON | None = None, meta: JSON | None = None) -> JSON:
        """Call an exposed tool and return its `CallToolResult` as a dict (never raises for tool failures)."""
        self._ids += 1
        host_id = f"local-{self._ids}"
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def respond(line: bytes) -> None:
            if not done.done():
                done.set_result(line)

        params: JSON = {"name": name, "arguments": arguments or {}}
        if meta:
            params["_meta"] = meta
        self.call_from_host(host_id, params, respond)
        try:
            line = await done
        except BaseException:
            self.cancel_from_host(host_id, "cancelled")
            raise
        reply = wire.as_object(wire.loads(line)) or {}
        return wire.as_object(reply.get("result")) or wire.tool_error_result("the relay produced no result")

    def cancel_from_host(self, host_id: Any, reason: str | None) -> bool:
        """Apply a host's `notifications/cancelled`; False when the id is not a relayed call."""
        try:
            call = self._calls[host_id]
        except (KeyError, TypeError):
            return False
        call.cancel(reason or "cancelled by the host")
        return True

    def calls_to(self, ds: Downstream) -> list[_Call]:
        """The calls in flight to `ds`, oldest first."""
        return [call for call in self._calls.values() if call.ds is ds]

    def readdress(self, call: _Call, host_id: Any, respond: Writer, params: JSON) -> None:
        """Point a call in flight at a new host request (a 2026-07-28 retry carrying input responses)."""
        self._calls.pop(call.host_id, None)
        call.host_id, call.respond = host_id, respond
        self._calls[host_id] = call
        if call.token is not None:  # the retry has a progress token of its own: progress goes on under it
            call.host_token = _progress_token(params) or call.token

    # --- internals --------------------------------------------------------------------
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
        text: str,
        route: Route | None = None,
        rule: str | None = None,
    ) -> None:
        respond(wire.result_response(host_id, wire.tool_error_result(text)))
        self.audit_call(exposed, route, arguments, decision, decision, 0.0, text, 0, rule=rule)

    def _on_notification(self, ds: Downstream, method: str, msg: JSON, line: bytes) -> None:
        if method != "notifications/progress":
            return
        params = wire.as_object(msg.get("params")) or {}
        token = params.get("progressToken")
        call = self._progress.get(token) if isinstance(token, str | int) else None
        if call is not None and call.ds is ds and call.notify is not None:
            if call.host_token != token:
                line = wire.notification(method, {**params, "progressToken": call.host_token})
            call.notify(call.redactor.redact_bytes(line) if call.redactor else line)

    def _forget(self, call: _Call) -> None:
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
        error: str | None,
        result_bytes: int,
        truncated: bool = False,
        *,
        rule: str | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        mode = self.supervisor.profile.audit.args  # read per call, so a reloaded profile applies at once
        if mode == "redacted":  # a refused call has no redactor of its own: use its server's; without one, digest
            state = self.supervisor.live(route.server) if route else None
            redactor = redactor or (state.redactor if state else None)
            mode = args_mode_for(mode, redactor, state.spec.secret_names if state else None)
        event = tool_call_event(
            exposed=exposed,
            server=route.server if route else None,
            tool=route.tool if route else None,
            decision=decision,
            rule=rule or (route.decision.rule if route else None),
            outcome=outcome,
            duration_ms=duration_ms,
            arguments=arguments,
            args_mode=mode,
            redactor=redactor,
            error=error,
            result_bytes=result_bytes,
            host=self.host_name,
        )
        if truncated:
            event["truncated"] = True
        try:
            self.audit.write(event)
        except MCPMuxError as exc:  # an audit failure must not break the relay callback (audit.py logs it)
            logger.error("audit: %s", exc)


def _progress_token(params: JSON) -> Hashable | None:
    meta = wire.as_object(params.get("_meta")) or {}
    token = meta.get("progressToken")
    return token if isinstance(token, str | int) else None


class _Call:
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
        "redactor",
        "relay",
        "respond",
        "rid",
        "route",
        "started",
        "timer",
        "token",
        "truncated",
        "uri_prefix",
    )

    def __init__(
        self, relay: Relay, host_id: Any, route: Route, arguments: Any, respond: Writer, notify: Writer | None
    ):
        self.relay = relay
        self.host_id = host_id
        self.route = route
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

    def start(self, ds: Downstream, params: JSON, timeout: float) -> None:
        self.ds = ds
        self.timer = asyncio.get_running_loop().call_later(timeout, self.on_timeout, timeout)
        self.rid = ds.send_request("tools/call", params, self)

    # ReplySink
    def reply(self, line: bytes, message: JSON) -> None:
        if not self._finish():
            return
        error = message.get("error")
        if error is not None:
            text = f"server '{self.route.server}' failed tool '{self.route.tool}': {_error_text(error)}"
            self._answer_error(text, "error")
            return
        result = wire.as_object(message.get("result")) or {}
        outcome = "tool_error" if result.get("isError") else "ok"
        if len(line) > self.max_output_bytes:
            result = truncate_response(line, message, self.redactor, self.max_output_bytes, server=self.route.server)
            out = wire.result_response(self.host_id, result)
            self.truncated = True
        elif (
            self.uri_prefix is not None and b'"uri"' in line and (linked := expose_result_uris(result, self.uri_prefix))
        ):
            # Resource links and embedded resources name URIs the host must be able to read back through mcpmux.
            out = wire.result_response(self.host_id, linked)
        else:
            out = wire.with_id(line, message, self.rid, self.host_id)
        if self.redactor:
            out = self.redactor.redact_bytes(out)
        self.respond(out)
        self._audit(outcome, None, len(line))

    def fail(self, error: DownstreamError) -> None:
        if self._finish():
            self._answer_error(str(error), "unavailable" if isinstance(error, DownstreamUnavailable) else "error")

    def on_timeout(self, timeout: float) -> None:
        if self._finish():
            if self.ds is not None:
                self.ds.abandon(self.rid, "timed out")
            text = f"server '{self.route.server}' did not answer tool '{self.route.tool}' within {timeout:g} s"
            self._answer_error(text, "timeout")

    def cancel(self, reason: str) -> None:
        if self._finish():
            if self.ds is not None:
                self.ds.abandon(self.rid, reason)
            self._audit("cancelled", reason, 0)

    def _finish(self) -> bool:
        if self.finished:
            return False
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        self.relay._forget(self)  # pyright: ignore[reportPrivateUsage]
        return True

    def _answer_error(self, text: str, outcome: str) -> None:
        if self.redactor:
            text = self.redactor.redact_text(text)
        self.respond(wire.result_response(self.host_id, wire.tool_error_result(text)))
        self._audit(outcome, text, 0)

    def _audit(self, outcome: str, error: str | None, size: int) -> None:
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
            redactor=self.redactor,
        )


def _error_text(error: Any) -> str:
    obj = wire.as_object(error)
    return f"{obj.get('message')} (code {obj.get('code')})" if obj is not None else str(error)
