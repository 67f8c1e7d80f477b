"""What the relay and the front need of the downstreams they serve a host from: one supervisor's, or a view of them.

A plain `serve` and a shared gateway's hosts use the `Supervisor` itself. A host of a shared gateway whose
profile has `shared = false` servers is served from a view (front/private.py) that adds that host's own
copies of those servers to the shared ones; the relay and the front read either through this protocol, so
both keep one path toward the host and one toward the downstreams.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

import anyio

from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import Catalog
from mcpmux.downstream.events import DownstreamEvents
from mcpmux.downstream.facts import ServerFacts
from mcpmux.downstream.flow import ReadGate
from mcpmux.downstream.state import ServerState
from mcpmux.policy.decide import Policy
from mcpmux.profile.model import Profile
from mcpmux.secrets.redact import Redactor


class Servers(Protocol):
    @property
    def profile(self) -> Profile: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def redactor(self) -> Redactor:
        """Every secret any downstream this host hears from was given."""
        ...

    @property
    def audit(self) -> AuditLog | None: ...
    @property
    def ready(self) -> anyio.Event: ...
    @property
    def flow(self) -> ReadGate: ...
    @property
    def states(self) -> Mapping[str, ServerState]: ...
    @property
    def facts(self) -> dict[str, ServerFacts | None]: ...

    def live(self, server: str) -> ServerState | None: ...
    async def wake(self, server: str) -> None: ...
    async def wait_ready(self, seconds: float) -> None: ...
    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None: ...
    def subscribe(self, events: DownstreamEvents) -> None: ...
