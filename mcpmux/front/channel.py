"""The host channel: everything that differs between the two protocol eras, decided once per connection.

The front opens one channel at the host's first request, by the SDK's rule
(`mcp/server/runner.py`): `initialize` always opens the handshake era, even with
a 2026-07-28 envelope stamped on it; any other request carrying an envelope
opens the envelope era; any other request opens the handshake era. The channel
binds the host's identity (relay/host.py) and answers, for the rest of the
connection: how a `tools/call` is relayed, how catalog changes and downstream
notifications reach the host, and how a downstream's request to its client
(sampling, elicitation, roots) is carried. Nothing else asks which era it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import anyio
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from mcpmux import wire
from mcpmux.catalog.build import Route
from mcpmux.downstream.connection import Downstream
from mcpmux.front import envelope
from mcpmux.front.envelope import ModernCalls
from mcpmux.front.host_requests import ServerRequests
from mcpmux.front.input_rounds import InputBridge
from mcpmux.relay.call import Writer
from mcpmux.relay.host import Era, HostInfo
from mcpmux.relay.relay import STARTUP_WAIT_SECONDS, Relay
from mcpmux.relay.task_requests import TaskRequests
from mcpmux.relay.tasks import TASKS_EXTENSION, missing_extension, wants_task
from mcpmux.wire import JSON

Run = Callable[[], Awaitable[JSON]]
"""A routed request to a downstream, ready to send (prompts/get, resources/read)."""

_LIST_CHANGED = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}
_LISTEN_EVENTS: dict[str, Callable[[], ServerEvent]] = {
    "tools": ToolsListChanged,
    "prompts": PromptsListChanged,
    "resources": ResourcesListChanged,
}


class HostChannel(Protocol):
    era: Era | None

    def call(self, host_id: Any, params: JSON) -> bool:
        """Relay a host's `tools/call`; False when this era cannot take it here (the SDK answers it)."""
        ...

    def answer_writer(self, host_id: Any) -> Writer | None:
        """Where the one answer to a host's `tools/call` is written in this era; None before the era is known."""
        ...

    def announce(self, kinds: frozenset[str]) -> None:
        """The visible catalog changed for these kinds ("tools", "prompts", "resources")."""
        ...

    def log_message(self, server: str, params: JSON) -> None:
        """A downstream's `notifications/message` (its logger already tagged with the server)."""
        ...

    def resource_updated(self, params: JSON) -> None:
        """A downstream's `notifications/resources/updated`, its URI already the one the host knows."""
        ...

    def task_status(self, params: JSON) -> None:
        """A downstream's `notifications/tasks/status` for one of this host's tasks, its id the host's."""
        ...

    def task_request(self, host_id: Any, method: str, params: JSON) -> bool:
        """Serve a host's `tasks/*` request; False when this era has no such method (the SDK answers it)."""
        ...

    def downstream_request(self, ds: Downstream, message: JSON) -> str | None:
        """Carry a downstream's request to the host; None when carried, else why it cannot be."""
        ...

    def host_answer(self, message: JSON) -> bool:
        """Route the host's answer to a carried request; False when it answers nothing of ours."""
        ...

    def can_ask(self, ds: Downstream, capability: str) -> bool:
        """Whether a request of `ds` needing `capability` would be carried to this host now."""
        ...

    def opened(self) -> None:
        """The host's first answer is written: what waited for it may go now."""
        ...

    async def routed(self, ds: Downstream, run: Run, request: JSON) -> JSON:
        """Run a routed request (`request` is the host's params and `_meta`), asking the host for input if needed."""
        ...


class Undecided:
    """Before the host's first request: nothing to announce, no one to ask."""

    era: Era | None = None

    def call(self, host_id: Any, params: JSON) -> bool:
        return False

    def answer_writer(self, host_id: Any) -> Writer | None:
        return None

    def announce(self, kinds: frozenset[str]) -> None:
        pass  # the host has listed nothing yet

    def log_message(self, server: str, params: JSON) -> None:
        pass

    def resource_updated(self, params: JSON) -> None:
        pass

    def task_status(self, params: JSON) -> None:
        pass

    def task_request(self, host_id: Any, method: str, params: JSON) -> bool:
        return False

    def downstream_request(self, ds: Downstream, message: JSON) -> str | None:
        return "no host has connected yet to answer this"

    def can_ask(self, ds: Downstream, capability: str) -> bool:
        return False

    def host_answer(self, message: JSON) -> bool:
        return False

    def opened(self) -> None:
        pass

    async def routed(self, ds: Downstream, run: Run, request: JSON) -> JSON:
        return await run()


MAX_HELD_REQUESTS = 64
"""Downstream requests held for a handshake host that has not had its `initialize` answer yet; more are refused."""


class HandshakeChannel:
    """2024-11-05 … 2025-11-25: a session; mcpmux may notify the host and send it requests."""

    era: Era | None = "handshake"

    def __init__(self, write: Writer, relay: Relay, requests: ServerRequests, answered: anyio.Event) -> None:
        self._write = write
        self._relay = relay
        self._requests = requests
        self._answered = answered
        self._tasks = TaskRequests(relay)
        self._held: list[tuple[Downstream, JSON]] = []
        """Downstream requests made before the host's `initialize` answer: carried once it is written."""

    def call(self, host_id: Any, params: JSON) -> bool:
        self._relay.call_from_host(host_id, params, self._write, self._write)
        return True

    def answer_writer(self, host_id: Any) -> Writer | None:
        return self._write

    # Nothing goes to the host before its `initialize` answer: it lists after that anyway, a message from a
    # server then is dropped, and a request is held until the answer is out (server-filesystem asks for the
    # host's roots right after its own handshake, which on a first run can precede the host's).
    def announce(self, kinds: frozenset[str]) -> None:
        if self._answered.is_set():
            for kind in sorted(kinds):
                self._write(wire.notification(_LIST_CHANGED[kind]))

    def log_message(self, server: str, params: JSON) -> None:
        if self._answered.is_set():
            self._write(wire.notification("notifications/message", params))

    def resource_updated(self, params: JSON) -> None:
        if self._answered.is_set():
            self._write(wire.notification("notifications/resources/updated", params))

    def task_status(self, params: JSON) -> None:
        if self._answered.is_set():
            self._write(wire.notification("notifications/tasks/status", params))

    def task_request(self, host_id: Any, method: str, params: JSON) -> bool:
        if method == "tasks/update":  # the 2026-07-28 extension's: not a method of this era
            return False
        self._tasks.request(host_id, method, params, self._write, modern=False)
        return True

    def downstream_request(self, ds: Downstream, message: JSON) -> str | None:
        if not self._answered.is_set():
            if len(self._held) >= MAX_HELD_REQUESTS:
                return "the host has not finished its initialize handshake; ask again once it has"
            self._held.append((ds, message))
            return None
        return self._requests.to_host(ds, message)

    def can_ask(self, ds: Downstream, capability: str) -> bool:
        return self._requests.can(capability)

    def opened(self) -> None:
        held, self._held = self._held, []
        for ds, message in held:
            if (why := self._requests.to_host(ds, message)) is not None:
                ds.write(wire.error_response(message.get("id"), wire.METHOD_NOT_FOUND, why))

    def host_answer(self, message: JSON) -> bool:
        return self._requests.from_host(message)

    async def routed(self, ds: Downstream, run: Run, request: JSON) -> JSON:
        return await run()


class EnvelopeChannel:
    """2026-07-28: every request carries its envelope; changes go to `subscriptions/listen` streams, and a
    downstream's request is asked within the host's own request (input rounds, front/input_rounds.py)."""

    era: Era | None = "envelope"

    def __init__(
        self,
        write: Writer,
        relay: Relay,
        bridge: InputBridge,
        calls: ModernCalls,
        bus: SubscriptionBus,
        start_soon: Callable[[Callable[[ServerEvent], Coroutine[Any, Any, None]], ServerEvent], None],
    ) -> None:
        self._write = write
        self._relay = relay
        self._bridge = bridge
        self._calls = calls
        self._bus = bus
        self._start_soon = start_soon
        self._tasks = TaskRequests(relay)

    def call(self, host_id: Any, params: JSON) -> bool:
        meta = envelope.envelope(params)
        if meta is None:  # an envelope-less request in this era: the SDK refuses it
            return False
        servers = self._relay.supervisor
        route = servers.catalog.routes.get(str(params.get("name")))
        if route is None and not servers.ready.is_set():
            # Its server is still starting: whether the tool runs only as a task is known once it has listed.
            servers.start_soon(self._call_when_ready, host_id, params)
            return True
        caps = envelope.client_capabilities(meta)
        as_task = wants_task(route.definition, caps) if route is not None else False
        if as_task is not False and route is not None and not self._allowed(route):
            as_task = False  # a denied tool is refused by the relay, as a denial; the policy is asked only here
        if as_task is None and route is not None:  # the tool runs only as a task; this host did not say it takes one
            self._write(missing_extension(host_id, f"tool '{route.exposed}' runs only as a task: it"))
            return True
        self._calls.opt_in(host_id, str(params.get("name")), meta)
        answer = self._calls.answer_writer(host_id, self._write)
        if self._bridge.resume(host_id, params, answer):  # a retry carrying answers for a parked call
            return True
        # A modern downstream's own input rounds pass through as they are: its retry fields go back to it.
        state = self._relay.supervisor.live(route.server) if route is not None else None
        forwarded = envelope.for_downstream(params, modern=state is not None and state.era == "modern")
        if as_task:
            forwarded["task"] = {}  # the downstream's 2025-11-25 form; its CreateTaskResult is shown as this era's
        self._relay.call_from_host(host_id, forwarded, answer, self._write, caps)
        return True

    async def _call_when_ready(self, host_id: Any, params: JSON) -> None:
        await self._relay.supervisor.wait_ready(STARTUP_WAIT_SECONDS)  # ready from here on, even past the bound
        self.call(host_id, params)

    def answer_writer(self, host_id: Any) -> Writer | None:
        return self._calls.answer_writer(host_id, self._write)

    def _server_of(self, exposed: str) -> str | None:
        route = self._relay.supervisor.catalog.routes.get(exposed)
        return route.server if route is not None else None

    def _allowed(self, route: Route) -> bool:
        """Whether this host may see the tool at all (a denied one is refused by the relay, as a denial)."""
        return self._relay.supervisor.policy.decide(route.exposed, tool=route.facts, host=self._relay.host.name).allowed

    def announce(self, kinds: frozenset[str]) -> None:
        for kind in sorted(kinds):
            self._publish(_LISTEN_EVENTS[kind]())

    def log_message(self, server: str, params: JSON) -> None:
        if self._calls.wants_log(server, params.get("level"), self._server_of):
            self._write(wire.notification("notifications/message", params))

    def resource_updated(self, params: JSON) -> None:
        self._publish(ResourceUpdated(uri=str(params.get("uri"))))

    def task_status(self, params: JSON) -> None:
        pass  # this era's hosts poll `tasks/get` (task notifications on `subscriptions/listen` are not relayed)

    def task_request(self, host_id: Any, method: str, params: JSON) -> bool:
        meta = envelope.envelope(params)
        if meta is None or method in ("tasks/list", "tasks/result"):  # not this era's: the SDK refuses them
            return False
        extensions = wire.as_object(envelope.client_capabilities(meta).get("extensions")) or {}
        if TASKS_EXTENSION not in extensions:
            self._write(missing_extension(host_id, f"'{method}'"))
            return True
        answer = self._calls.answer_writer(host_id, self._write)
        plain = {k: v for k, v in params.items() if k != "_meta"}  # `inputResponses` is `tasks/update`'s own
        self._tasks.request(host_id, method, plain, answer, modern=True)
        return True

    def downstream_request(self, ds: Downstream, message: JSON) -> str | None:
        if self._tasks.asked(ds, message):  # a task's input request: the host polls it with tasks/get
            return None
        return self._bridge.from_downstream(ds, message)

    def can_ask(self, ds: Downstream, capability: str) -> bool:
        return self._bridge.can_ask(ds, capability)

    def host_answer(self, message: JSON) -> bool:
        return False  # this era's host sends no answers: it retries its request instead

    def opened(self) -> None:
        pass  # requests are asked within the host's own requests (input rounds), never held

    async def routed(self, ds: Downstream, run: Run, request: JSON) -> JSON:
        caps = envelope.client_capabilities(wire.as_object(request.get("_meta")) or {})
        return await self._bridge.ask(ds, caps, run, envelope.retry_fields(request))

    def _publish(self, event: ServerEvent) -> None:
        self._start_soon(self._bus.publish, event)


def host_of(era: Era, method: object, params: JSON | None) -> HostInfo | None:
    """The host's identity from the request that opened (handshake: its `initialize`) or made the channel."""
    if params is None:
        return None
    if era == "handshake":
        if method != "initialize":
            return None
        return HostInfo.of(era, params.get("clientInfo"), params.get("capabilities"))
    meta = envelope.envelope(params)
    if meta is None:
        return None
    return HostInfo.of(era, envelope.client_info(meta), envelope.client_capabilities(meta))


def opening_era(method: object, params: JSON | None) -> Era:
    """The era a connection's first request opens (the SDK's rule, mcp/server/runner.py)."""
    if method != "initialize" and params is not None and envelope.has_envelope(params):
        return "envelope"
    return "handshake"
