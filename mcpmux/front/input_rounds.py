"""A downstream's sampling, elicitation and roots requests, asked of a 2026-07-28 host within its call.

A 2026-07-28 host takes no requests from its server; instead the server answers
the host's request with an `InputRequiredResult` naming what it needs, and the
host retries the request with the answers and the opaque `requestState`.
Downstreams speak the 2025-11-25 handshake (downstream.py), so they send plain
JSON-RPC requests. mcpmux bridges the two: a downstream's request made while a
2026-07-28 host's `tools/call` to it is in flight answers that host request with
an `InputRequiredResult`; the downstream call keeps running, parked; the host's
retry is attached to it (relay.readdress) and each input response goes back to
the downstream as the answer to its own request.

`prompts/get` and `resources/read` (served by the SDK handlers) get the same
rounds through `InputBridge.ask`: the downstream request runs in a task of its
own, so it outlives the handler that answers `input_required`.

Stdio carries nothing that ties a downstream's request to one of its calls, so
with several calls in flight to one server the request is asked within the
oldest (tool calls first). A request made outside any (e.g. `roots/list` right
after start) gets a clean error, as the host cannot be asked.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.shared.exceptions import MCPError

from mcpmux import wire
from mcpmux.downstream.connection import Downstream
from mcpmux.front.host_requests import CAPABILITY, not_advertised
from mcpmux.relay.call import Call, Writer
from mcpmux.relay.relay import Relay
from mcpmux.wire import JSON

MAX_OPEN_STATES = 256
"""Retries the bridge waits for at once; beyond this, the oldest is forgotten (its call times out)."""


@dataclass(slots=True, eq=False)
class _Parked:
    call: Call
    asked: dict[str, tuple[Downstream, Any]] = field(default_factory=dict[str, tuple[Downstream, Any]])
    """Input keys sent to the host → the downstream request each answers."""
    queued: dict[str, JSON] = field(default_factory=dict[str, JSON])
    """Requests made while the host had not yet retried: asked on the next round."""
    final: bytes | None = None
    """The call's answer, if it came while parked (the downstream gave up on its request)."""
    attached: bool = True


@dataclass(slots=True, eq=False)
class _Ask:
    """A routed SDK-served request (`prompts/get`, `resources/read`) of a 2026-07-28 host, in flight downstream."""

    ds: Downstream
    caps: JSON
    asked: dict[str, tuple[Downstream, Any]] = field(default_factory=dict[str, tuple[Downstream, Any]])
    queued: dict[str, JSON] = field(default_factory=dict[str, JSON])
    changed: anyio.Event = field(default_factory=anyio.Event)
    """Set when the downstream answered or asked something."""
    result: JSON | None = None
    error: BaseException | None = None
    done: bool = False


class InputBridge:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self._keys = itertools.count(1)
        self._states: OrderedDict[str, _Parked] = OrderedDict()
        self._by_call: dict[object, str] = {}
        """Parked call → its state token (calls hash by identity)."""
        self._asks: list[_Ask] = []
        self._ask_states: OrderedDict[str, _Ask] = OrderedDict()

    def from_downstream(self, ds: Downstream, message: JSON) -> str | None:
        """Ask a downstream's request of the 2026-07-28 host within a call; None when handled, else why not."""
        calls = [c for c in self.relay.calls_to(ds) if c.input_caps is not None]
        method = str(message.get("method"))
        capability = CAPABILITY.get(method)
        if not calls:
            return self._into_ask(ds, message, capability)
        call = calls[0]
        if capability is None or capability not in (call.input_caps or {}):
            return not_advertised(capability, method)
        token = self._by_call.get(call) or f"mxs-{next(self._keys)}"
        parked = self._states.get(token)
        if parked is None:
            parked = _Parked(call)
            self._remember(token, parked)
        key = f"mx-in-{next(self._keys)}"
        request: JSON = {"method": method}
        if "params" in message:
            request["params"] = message["params"]
        parked.asked[key] = (ds, message.get("id"))
        parked.queued[key] = request
        if parked.attached:
            self._ask(token, parked)
        return None

    def can_ask(self, ds: Downstream, capability: str) -> bool:
        """Whether a request of `ds` needing `capability` would be asked of this host now (`from_downstream`)."""
        calls = [c for c in self.relay.calls_to(ds) if c.input_caps is not None]
        if calls:
            return capability in (calls[0].input_caps or {})
        asks = [a for a in self._asks if a.ds is ds]
        return bool(asks) and capability in asks[0].caps

    def resume(self, host_id: Any, params: JSON, respond: Writer) -> bool:
        """Attach a host's retry (its `requestState` names a parked call); False if it names none."""
        token = params.get("requestState")
        if not isinstance(token, str) or (parked := self._states.get(token)) is None:
            return False
        if parked.call.route.exposed != params.get("name"):
            return False  # a state naming another tool's call (a modern downstream may mint any token) is not ours
        _answer(parked.asked, parked.queued, wire.as_object(params.get("inputResponses")) or {})
        if parked.final is not None:
            self._forget(token, parked)
            message = wire.as_object(wire.loads(parked.final)) or {}
            respond(wire.dumps({**message, "id": host_id}))
            return True
        self.relay.readdress(parked.call, host_id, respond, params)
        parked.attached = True
        if parked.queued:
            self._ask(token, parked)
        elif not parked.asked:
            self._forget(token, parked)
        return True

    async def ask(self, ds: Downstream, caps: JSON, run: Callable[[], Awaitable[JSON]], retry: JSON | None) -> JSON:
        """A routed request's raw result, or an `input_required` result while the downstream needs input.

        `retry` is the host's retry (`requestState`, `inputResponses`) or None for a first request.
        """
        if retry is None:
            pending = _Ask(ds, caps)
            self._asks.append(pending)
            self.relay.supervisor.start_soon(self._run_ask, pending, run)
        else:
            token = retry.get("requestState")
            found = self._ask_states.pop(token, None) if isinstance(token, str) else None
            if found is None:
                raise MCPError(wire.INVALID_PARAMS, "unknown or expired requestState: send the request afresh")
            pending = found
            _answer(pending.asked, pending.queued, wire.as_object(retry.get("inputResponses")) or {})
        while not pending.done and not pending.queued:
            await pending.changed.wait()
            pending.changed = anyio.Event()
        if pending.queued:
            token = f"mxs-{next(self._keys)}"
            self._ask_states[token] = pending
            while len(self._ask_states) > MAX_OPEN_STATES:
                self._ask_states.popitem(last=False)
            requests, pending.queued = dict(pending.queued), {}
            return {"resultType": "input_required", "inputRequests": requests, "requestState": token}
        if pending.error is not None:
            raise pending.error
        return pending.result or {}

    async def _run_ask(self, pending: _Ask, run: Callable[[], Awaitable[JSON]]) -> None:
        try:
            pending.result = await run()
        except Exception as exc:  # handed to the handler that waits for it
            pending.error = exc
        finally:
            pending.done = True
            self._asks.remove(pending)
            pending.changed.set()

    def _into_ask(self, ds: Downstream, message: JSON, capability: str | None) -> str | None:
        asks = [a for a in self._asks if a.ds is ds]
        if not asks:
            return f"no request of a 2026-07-28 host to server '{ds.name}' is in flight to ask it in"
        pending = asks[0]
        if capability is None or capability not in pending.caps:
            return not_advertised(capability, str(message.get("method")))
        key = f"mx-in-{next(self._keys)}"
        pending.asked[key] = (ds, message.get("id"))
        pending.queued[key] = {k: v for k, v in message.items() if k in ("method", "params")}
        pending.changed.set()
        return None

    # --- internals --------------------------------------------------------------------
    def _ask(self, token: str, parked: _Parked) -> None:
        """Answer the call's current host request with what the downstream asked; park the call."""
        call = parked.call
        result = {"resultType": "input_required", "inputRequests": dict(parked.queued), "requestState": token}
        parked.queued.clear()
        parked.attached = False
        answer = wire.result_response(call.host_id, result)
        call.respond(call.redactor.redact_bytes(answer) if call.redactor else answer)

        def hold(line: bytes) -> None:  # the call ended before the host retried: kept for the retry
            parked.final = line

        call.respond = hold
        self.relay.park(call)  # the host's request is answered: its id is free for the host to reuse

    def _remember(self, token: str, parked: _Parked) -> None:
        self._states[token] = parked
        self._by_call[parked.call] = token
        while len(self._states) > MAX_OPEN_STATES:
            _, dropped = self._states.popitem(last=False)
            self._by_call.pop(dropped.call, None)

    def _forget(self, token: str, parked: _Parked) -> None:
        self._states.pop(token, None)
        self._by_call.pop(parked.call, None)


def _answer(asked: dict[str, tuple[Downstream, Any]], queued: dict[str, JSON], responses: JSON) -> None:
    """Send each downstream the host's answer to its request (an error where the host gave none)."""
    for key, (ds, request_id) in list(asked.items()):
        if key in queued:
            continue  # not yet asked of the host
        del asked[key]
        answer = wire.as_object(responses.get(key))
        if answer is None:
            ds.write(wire.error_response(request_id, wire.INTERNAL_ERROR, "the host gave no answer to this request"))
        else:
            ds.write(wire.result_response(request_id, answer))
