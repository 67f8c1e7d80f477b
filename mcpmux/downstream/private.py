"""`shared = false` servers in a shared gateway: the gateway runs the shared ones, each host its own copies.

A shared gateway's `SharedSupervisor` keeps the servers every host shares; each attached host's
`PrivateSupervisor` keeps that host's copies of the others, with the same restart policy, lazy starts and
health checks as any downstream (it is a `Supervisor`). Both work from the same profile: a private copy's
tools are named, decided and pinned by the shared supervisor's catalog keeper (`overlay`), together with the
shared servers' tools, so a tool has one name and one pin whatever host calls it. Outside a shared gateway
nothing here runs and `shared = false` changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mcpmux.catalog.build import Catalog, Listing
from mcpmux.downstream.state import ServerState
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.integrity.check import IntegrityReport
from mcpmux.profile.model import Profile, ServerSpec

SERVING = ("running", "idle", "restarting")
"""The states whose listing is in the catalog (as Supervisor._rebuild has it): a restarting server keeps its routes."""


def private_servers(profile: Profile) -> tuple[ServerSpec, ...]:
    """The enabled servers each host of a shared gateway gets a copy of its own of."""
    return tuple(spec for spec in profile.enabled_servers if not spec.shared)


def part(profile: Profile, *, shared: bool) -> Profile:
    """`profile` with the servers of the other kind disabled (still there: catalogs name, and policy warns, by them)."""
    servers = tuple(s if s.shared == shared or not s.enabled else replace(s, enabled=False) for s in profile.servers)
    return replace(profile, servers=servers)


def serving_listings(states: Mapping[str, ServerState]) -> dict[str, Listing]:
    return {name: s.listing for name, s in states.items() if s.status in SERVING}


class SharedSupervisor(Supervisor):
    """The shared gateway's supervisor: keeps the shared servers; `profile` stays the whole profile."""

    def __init__(self, profile: Profile, **options: Any) -> None:
        super().__init__(part(profile, shared=True), **options)
        self.profile = profile
        self.switched: list[Callable[[Profile], None]] = []
        """Told of each live switch, after the shared servers moved (each host's copies move then)."""

    def switch(self, profile: Profile) -> dict[str, list[str]]:
        result = super().switch(part(profile, shared=True))
        self.profile = profile
        for listener in list(self.switched):
            listener(profile)
        return result

    def overlay(self, own: Mapping[str, Listing]) -> tuple[Catalog, IntegrityReport]:
        """The catalog of a host whose own copies list `own`, with every shared server's listing."""
        return self._keeper.overlay({**serving_listings(self.states), **own})

    def private_copies(self, *, log_pid: int | None, on_listings: Callable[[], None]) -> PrivateSupervisor:
        """A supervisor of one host's copies of the `shared = false` servers (started by running it)."""
        return PrivateSupervisor(
            self.profile,
            log_pid=log_pid,
            on_listings=on_listings,
            on_secrets=self._learn,
            store=self._store,
            paths=self.paths,
            audit=self.audit,
            clock=self._clock,
            connect=self._connect,
        )


class PrivateSupervisor(Supervisor):
    """One host's copies of the `shared = false` servers.

    Its own catalog keeper is never used: each change of a listing calls `on_listings`, and the host's
    catalog is built by the shared one (`SharedSupervisor.overlay`). The secrets its copies are given are
    the shared supervisor's to redact too (`on_secrets`), so the gateway's log and every host's output
    redact them as they redact every other server's. Each copy logs to `<server>.<serve pid>.log`, the
    serve being the host's (`log_pid`), so two hosts' copies never write into one file.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        log_pid: int | None,
        on_listings: Callable[[], None],
        on_secrets: Callable[[str, dict[str, str]], None],
        **options: Any,
    ) -> None:
        self._log_pid = log_pid  # before Supervisor.__init__, which makes the states
        self._on_listings = on_listings
        self._on_secrets = on_secrets
        super().__init__(part(profile, shared=False), record_pins=False, **options)

    def switch(self, profile: Profile) -> dict[str, list[str]]:
        return super().switch(part(profile, shared=False))

    def _new_state(self, spec: ServerSpec) -> ServerState:
        state = super()._new_state(spec)
        if self._log_pid is not None:
            state.log_path = self.paths.server_log(self.profile.path, spec.name, pid=self._log_pid)
        return state

    def _rebuild(self) -> None:
        self._on_listings()

    def _learn(self, server: str, secrets: dict[str, str]) -> None:
        super()._learn(server, secrets)
        self._on_secrets(server, secrets)
