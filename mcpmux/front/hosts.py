"""Several hosts on one gateway: one front per attached host over one supervisor, catalog and policy.

Each host keeps what is its own: its identity and era (bound by its own first request), its id space
(a relay of its own, its progress tokens tagged downstream), its log level, its resource subscriptions
and its change notifications. What the downstreams send is handed out here: catalog changes and
notifications to every front (each keeps what is its own), progress to the relay whose call it is, and a
downstream's request (sampling, elicitation, roots) to one host:

1. the host with calls in flight to that server, if it declared the capability (else the request fails);
   when several hosts have calls in flight to it, none is asked and the request fails cleanly: stdio
   carries nothing that ties a request to one call, and asking one host another host's question would
   leak it (and take a stranger's answer);
2. with no call in flight (e.g. `roots/list` at start), the first attached handshake-era host that
   declared the capability;
3. else a clean JSON-RPC error naming the capability, at once.

A profile's `shared = false` servers are not shared: each host is served from a view (front/private.py) that
adds its own copies of them, whose requests and notifications go to that host alone.
"""

from __future__ import annotations

import itertools
from typing import Any

from mcpmux import wire
from mcpmux.audit import lifecycle
from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import Catalog
from mcpmux.catalog.uris import split_uri
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.private import SharedSupervisor, private_servers
from mcpmux.downstream.servers import Servers
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.front.handlers import LOG_LEVELS, Handlers
from mcpmux.front.host_requests import CAPABILITY, pinned_roots
from mcpmux.front.output import Flow
from mcpmux.front.private import HostServers
from mcpmux.front.server import Front
from mcpmux.profile.model import Profile
from mcpmux.relay.host import Host, HostInfo
from mcpmux.relay.relay import Relay
from mcpmux.wire import JSON

DETACHED = "the host detached from the shared gateway"


class Hosts:
    """The fronts of every attached host; the supervisor's one subscriber for them all."""

    def __init__(self, supervisor: Supervisor, audit: AuditLog) -> None:
        self.supervisor = supervisor
        self.audit = audit
        self.fronts: list[Front] = []
        self.views: dict[Front, HostServers] = {}
        """The hosts served with copies of their own of the `shared = false` servers (front/private.py)."""
        self._log_pids: dict[Front, int | None] = {}
        self._numbers = itertools.count(1)
        supervisor.subscribe(self)
        if isinstance(supervisor, SharedSupervisor):
            supervisor.switched.append(self._switched)

    def attach(self, **context: Any) -> Front:
        """A front for a new host: its identity is bound by its own first request (never the audit log's context,
        which every host shares: each call's event names its host). `context` goes into its audit events."""
        number = next(self._numbers)

        def bound(info: HostInfo) -> None:
            self.audit.write(lifecycle.host_attached(info.name, info.version, info.era, **context))

        pipe_pid = context.get("pipe_pid")
        view = self._view(pipe_pid)
        servers: Servers = view if view is not None else self.supervisor  # the common path: the supervisor itself
        relay = Relay(servers, self.audit, Host(on_bind=bound), subscribe=False, token_tag=f"mx{number}:")
        front = Front(servers, relay, peers=self)
        self.fronts.append(front)
        self._log_pids[front] = pipe_pid
        if view is not None:
            self._start(front, view)
        return front

    def _view(self, log_pid: int | None) -> HostServers | None:
        """A view with copies of the host's own, if the profile has `shared = false` servers (else None)."""
        shared = self.supervisor
        if not isinstance(shared, SharedSupervisor) or not private_servers(shared.profile):
            return None
        return HostServers(shared, log_pid=log_pid)

    def _start(self, front: Front, view: HostServers) -> None:
        self.views[front] = view
        self.supervisor.start_soon(view.run, front)

    def flow(self, front: Front, shared: Flow) -> Flow:
        """What a host that stops reading holds back: the shared servers through `shared`, and its own copies."""
        view = self.views.get(front)
        return shared if view is None else view.held_back(shared)

    def _switched(self, profile: Profile) -> None:
        """A live switch: each view moves its copies; a host without any gets them if the profile now has some."""
        for front in list(self.fronts):
            if (view := self.views.get(front)) is not None:
                view.switch(profile)
            elif (view := self._view(self._log_pids.get(front))) is not None:
                # It attached while the profile had none: from now on it is served from its view (the one
                # place a front's servers change; its calls in flight keep the states they started with).
                front.supervisor = front.relay.supervisor = front.handlers.supervisor = view
                view.refresh()
                self._start(front, view)

    def detach(self, front: Front) -> None:
        """The host is gone: its calls still in flight are cancelled downstream; the others go on untouched.
        Once only: a second call for the same front does nothing."""
        if front not in self.fronts:
            return
        self.fronts.remove(front)
        cancelled = front.relay.owed()
        front.relay.cancel_all(DETACHED)
        self._log_pids.pop(front, None)
        if (view := self.views.pop(front, None)) is not None:
            view.close()  # after the cancels: its copies hear them before they end
        if front.host.info is not None:  # a host that never said who it is was never audited as attached
            self.audit.write(lifecycle.host_detached(front.host.name, cancelled))

    # --- Peers ------------------------------------------------------------------------------------
    def downstream_level(self) -> str | None:
        levels = [f.handlers.level for f in self.fronts if f.handlers.level in LOG_LEVELS]
        return min(levels, key=LOG_LEVELS.index) if levels else None

    def subscribed_elsewhere(self, handlers: Handlers, uri: str) -> bool:
        split = split_uri(uri) if self.views else None
        private = private_servers(self.supervisor.profile) if split is not None else ()
        if split is not None and any(s.namespaced and s.prefix == split[0] for s in private):
            return False  # each host's subscription is to its own copy
        return any(f.handlers is not handlers and uri in f.handlers.subscribed for f in self.fronts)

    # --- DownstreamEvents ---------------------------------------------------------------------------
    def catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        for front in self.fronts:
            if (view := self.views.get(front)) is not None:
                view.refresh()  # its catalog is the shared listings and its copies': it tells the front
            else:
                front.catalog_changed(catalog, kinds)

    def notification(self, ds: Downstream, method: str, message: JSON, line: bytes) -> None:
        if method == "notifications/progress":  # its token names one relay's call (tagged per host)
            for front in self.fronts:
                front.relay.notification(ds, method, message, line)
            return
        for front in self.fronts:
            front.notification(ds, method, message, line)

    def server_failed(self, name: str, reason: str) -> None:
        for front in self.fronts:
            front.server_failed(name, reason)

    def request(self, ds: Downstream, message: JSON) -> bool:
        spec = self.supervisor.profile.server(ds.name)
        if (roots := pinned_roots(spec, message)) is not None:  # no host is asked: the profile answers
            ds.write(wire.result_response(message.get("id"), roots))
            return True
        method = str(message.get("method"))
        front, why = self.asked(ds, method)
        if front is not None:
            return front.request(ds, message)
        request_id = message.get("id")
        ds.write(wire.error_response(request_id if wire.valid_id(request_id) else None, wire.METHOD_NOT_FOUND, why))
        return True

    def asked(self, ds: Downstream, method: str) -> tuple[Front | None, str]:
        """Which host a downstream's request goes to (the module's rule), or None and why no host is asked."""
        capability = CAPABILITY.get(method)
        if capability is None:
            return None, f"mcpmux does not relay '{method}'"
        calls = [(call.started, i, front) for i, front in enumerate(self.fronts) for call in front.relay.calls_to(ds)]
        callers = list(dict.fromkeys(front for _, _, front in sorted(calls, key=lambda item: (item[0], item[1]))))
        if len(callers) > 1:  # stdio ties no request to a call: asking one host another's question is a leak
            return None, (
                f"server '{ds.name}' has calls in flight from {len(callers)} hosts and stdio does not say which "
                f"one '{method}' is for, so mcpmux asks neither; retry when the other host's call is done"
            )
        if callers:  # its question is this host's, or nobody's
            if callers[0].channel.can_ask(ds, capability):
                return callers[0], ""
            return None, (
                f"the host with a call in flight to server '{ds.name}' did not declare '{capability}', "
                f"so mcpmux cannot relay '{method}'"
            )
        for front in self.fronts:
            if front.channel.era == "handshake" and front.channel.can_ask(ds, capability):
                return front, ""
        return None, f"no host attached to mcpmux declared '{capability}', so mcpmux cannot relay '{method}'"
