"""Who the host is: one record per connection, fixed by the host's first identifying request.

The front decides the protocol era once (front/dispatch.py) and binds the host
here: from `initialize` in the handshake era, from the first request's envelope
in the 2026-07-28 era. Policy (`hosts = [...]`), audit, sampling and list_changed
all read this one record; a later `initialize` or envelope cannot change it, so a
host cannot rename itself out of a `hosts` rule mid-connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from mcpmux.wire import JSON, as_object

Era = Literal["handshake", "envelope"]
"""handshake: `initialize` then a session (2024-11-05 … 2025-11-25); envelope: every request carries its
own `_meta` envelope, no session (2026-07-28)."""


@dataclass(frozen=True, slots=True)
class HostInfo:
    era: Era
    name: str | None
    """`clientInfo.name`, or None when the host sent none (then no `hosts` rule covers it)."""
    version: str | None
    capabilities: JSON = field(default_factory=dict[str, object])
    """What the host declared it can do (sampling, elicitation, roots, …)."""

    @classmethod
    def of(cls, era: Era, client_info: object, capabilities: object) -> HostInfo:
        info = as_object(client_info) or {}
        name, version = info.get("name"), info.get("version")
        return cls(
            era,
            name if isinstance(name, str) and name else None,
            version if isinstance(version, str) else None,
            as_object(capabilities) or {},
        )


class Host:
    """The connection's host; `info` is None until the first identifying request binds it."""

    __slots__ = ("_on_bind", "info")

    def __init__(self, on_bind: Callable[[HostInfo], None] | None = None) -> None:
        self.info: HostInfo | None = None
        self._on_bind = on_bind

    @property
    def name(self) -> str | None:
        return self.info.name if self.info is not None else None

    def can(self, capability: str) -> bool:
        """Whether the host declared `capability` (e.g. "sampling")."""
        return self.info is not None and capability in self.info.capabilities

    def bind(self, info: HostInfo) -> bool:
        """Fix the host's identity; False (and nothing changes) once it is fixed."""
        if self.info is not None:
            return False
        self.info = info
        if self._on_bind is not None:
            self._on_bind(info)
        return True
