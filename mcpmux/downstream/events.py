"""What the layers above hear from the downstreams: one typed subscription, handed down, never assigned.

The supervisor calls every subscriber from the event loop, in subscription order.
A downstream's request (sampling, elicitation, roots) is answered by the first
subscriber that takes it; when none does, the downstream gets a JSON-RPC error.
"""

from __future__ import annotations

from typing import Protocol

from mcpmux.catalog.build import Catalog
from mcpmux.downstream.connection import Downstream
from mcpmux.wire import JSON


class DownstreamEvents(Protocol):
    def catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        """A new catalog whose visible `kinds` ("tools", "prompts", "resources") changed."""
        ...

    def notification(self, ds: Downstream, method: str, message: JSON, line: bytes) -> None:
        """A notification from `ds` (`line` is its raw bytes, `message` the parsed object)."""
        ...

    def request(self, ds: Downstream, message: JSON) -> bool:
        """A request from `ds` to its client; True when this subscriber takes it (and answers it)."""
        ...

    def server_failed(self, name: str, reason: str) -> None:
        """Server `name` failed and will not be restarted (it could not start, or ran out of restarts)."""
        ...
