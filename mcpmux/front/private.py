"""One host's view of a shared gateway's downstreams: the shared servers, and its own copies of the others.

A host of a shared gateway whose profile has `shared = false` servers is served from a `HostServers`
instead of the supervisor: its relay and front read the catalog, the states and the policy through it
(downstream/servers.py), so calls, listings, resource reads and subscriptions, completions and policy,
redaction, audit, rate limits and pins take the one path they take for a shared server. What the view adds:

- `live(server)`: this host's copy for a private server, the shared state for any other;
- `catalog`: built from the shared listings and this host's copies' by the shared catalog keeper (the
  same names, decisions and pins as every host's); rebuilt when either changes, never per call;
- the copies' notifications and requests (sampling, elicitation, roots) go to this host's front alone:
  the copy is this host's, so there is no other host its question could be for.

Hosts of a profile with no `shared = false` server use the supervisor itself (front/hosts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from mcpmux.audit import lifecycle
from mcpmux.catalog.build import Catalog
from mcpmux.catalog.keeper import changed_kinds
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.events import DownstreamEvents
from mcpmux.downstream.facts import ServerFacts
from mcpmux.downstream.private import SharedSupervisor, serving_listings
from mcpmux.downstream.state import ServerState
from mcpmux.front.output import Flow
from mcpmux.front.server import Front
from mcpmux.integrity.check import IntegrityReport
from mcpmux.policy.decide import Policy
from mcpmux.profile.model import Profile
from mcpmux.secrets.redact import Redactor
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")


class HostServers:
    def __init__(self, shared: SharedSupervisor, *, log_pid: int | None) -> None:
        self._shared = shared
        self.audit = shared.audit
        self.flow = shared.flow
        self.ready = anyio.Event()
        """Set once the shared servers and this host's copies made their first start attempts."""
        self.catalog: Catalog = shared.catalog
        self.front: Front | None = None
        """The host's front (from `run`): hears this view's catalog changes and its copies' events."""
        self.own = shared.private_copies(log_pid=log_pid, on_listings=self.refresh)
        self.own.subscribe(self)
        self._scope = anyio.CancelScope()
        self._report: IntegrityReport | None = None

    # --- what the relay and the front read (downstream/servers.py) --------------------------
    @property
    def profile(self) -> Profile:
        return self._shared.profile

    @property
    def policy(self) -> Policy:
        return self._shared.policy

    @property
    def redactor(self) -> Redactor:
        return self._shared.redactor  # it learns the copies' secrets too (downstream/private.py)

    @property
    def states(self) -> dict[str, ServerState]:
        return {**self._shared.states, **self.own.states}

    @property
    def facts(self) -> dict[str, ServerFacts | None]:
        return {**self._shared.facts, **self.own.facts}

    def live(self, server: str) -> ServerState | None:
        state = self.own.states.get(server)
        return state if state is not None else self._shared.states.get(server)

    async def wake(self, server: str) -> None:
        await (self.own if server in self.own.states else self._shared).wake(server)

    async def wait_ready(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self.ready.wait()
        self.ready.set()

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        self._shared.start_soon(fn, *args)

    def subscribe(self, events: DownstreamEvents) -> None:
        self._shared.subscribe(events)

    # --- lifetime ---------------------------------------------------------------------------
    async def run(self, front: Front) -> None:
        """Keep this host's copies for `front` until `close` (or the gateway's end), which ends each of them."""
        self.front = front
        with self._scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.own.run)
                await self._shared.ready.wait()
                await self.own.ready.wait()
                self.refresh()
                self.ready.set()

    def close(self) -> None:
        """The host detached: its copies end (each shielded and bounded, as the supervisor ends any server)."""
        self._scope.cancel()

    def held_back(self, shared: Flow) -> Flow:
        """The host's back-pressure: `shared` (the shared servers, while any host is not reading) and its copies."""
        return _Both(shared, self.own.flow)

    def switch(self, profile: Profile) -> None:
        """The profile changed live: changed copies restart, removed ones end, added ones start."""
        self.own.switch(profile)
        self.refresh()

    # --- the host's catalog -----------------------------------------------------------------
    def refresh(self) -> None:
        """Rebuild this host's catalog (the shared listings and its copies'); tell its front what changed."""
        catalog, report = self._shared.overlay(serving_listings(self.own.states))
        own = set(self.own.states)
        if self.audit is not None:  # the shared catalog's events stand for the shared servers' tools
            for event in report.audit_events(self.profile.name, self._report):
                if event.get("server") in own:
                    self.audit.write(event)
        for name, tool in report.tools.items():
            if tool.server in own and tool.visible and tool.reason and self._was_new(name, tool.reason):
                logger.warning("%s: %s", name, tool.reason)
        self._report = report
        old, self.catalog = self.catalog, catalog
        if self.audit is not None and (event := self._copies_changed(old, catalog, own)) is not None:
            self.audit.write(event)
        kinds = changed_kinds(old, catalog)
        if kinds and self.front is not None:
            self.front.catalog_changed(catalog, kinds)

    def _copies_changed(self, old: Catalog, new: Catalog, own: set[str]) -> dict[str, Any] | None:
        """The `catalog_changed` event of this host's copies' tools (the shared catalog's events cover the rest)."""
        before = {n: lifecycle.tool_fingerprint(r.definition) for n, r in old.routes.items() if r.server in own}
        after = {n: lifecycle.tool_fingerprint(r.definition) for n, r in new.routes.items() if r.server in own}
        return lifecycle.catalog_changed(before, after, host=self.front.host.name if self.front else None)

    def _was_new(self, name: str, reason: str) -> bool:
        before = self._report.tools.get(name) if self._report is not None else None
        return before is None or before.reason != reason

    # --- DownstreamEvents of this host's copies -----------------------------------------------
    def catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        pass  # its copies' listings reach `refresh` directly (PrivateSupervisor._rebuild)

    def notification(self, ds: Downstream, method: str, message: JSON, line: bytes) -> None:
        if self.front is None:
            return
        if method == "notifications/progress":
            self.front.relay.notification(ds, method, message, line)
        else:
            self.front.notification(ds, method, message, line)

    def request(self, ds: Downstream, message: JSON) -> bool:
        """The copy is this host's: its request is this host's to answer (policy and capabilities as for any)."""
        return self.front is not None and self.front.request(ds, message)

    def server_failed(self, name: str, reason: str) -> None:
        if self.front is not None:
            self.front.server_failed(name, reason)


class _Both:
    def __init__(self, *flows: Flow) -> None:
        self._flows = flows

    def pause_reading(self) -> None:
        for flow in self._flows:
            flow.pause_reading()

    def resume_reading(self) -> None:
        for flow in self._flows:
            flow.resume_reading()
