"""The frozen data a profile parses into. Pure data: no I/O here (see `profile.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
"""Per call: generous for real results (a 10 MB file read passes), bounded so a runaway server cannot choke the host."""

DEFAULT_MAX_NAME_LENGTH = 51
"""`mcp__mcpmux__` (13 characters, Claude Code's prefix) + 51 = 64, Claude's API limit."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """A pointer to a keyring entry (service `mcpmux`, username `name`); never the value."""

    name: str


EnvValue = str | SecretRef


def _empty_env() -> Mapping[str, EnvValue]:
    return MappingProxyType({})


def _empty_aliases() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restarts of a crashed downstream: exponential backoff with jitter, at most `max_restarts` per window."""

    max_restarts: int = 5
    window_seconds: float = 300.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One downstream as the profile describes it."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    cwd: Path | None = None
    env: Mapping[str, EnvValue] = field(default_factory=_empty_env)
    url: str | None = None
    headers: Mapping[str, EnvValue] = field(default_factory=_empty_env)
    timeout_seconds: float = 60.0
    startup_timeout_seconds: float = 30.0
    enabled: bool = True
    # exposed-name overrides: original tool name -> exposed name
    aliases: Mapping[str, str] = field(default_factory=_empty_aliases)
    namespace: str | None = None
    """The prefix of exposed names (default: the server's name)."""
    namespaced: bool = True
    """`namespace = false`: tools, prompts and resource URIs are exposed unchanged."""
    roots: tuple[str, ...] | None = None
    """Pinned roots (absolute paths); None relays the host's roots."""
    max_output_bytes: int = DEFAULT_MAX_OUTPUT
    start: Literal["eager", "lazy"] = "eager"
    idle_timeout_seconds: float = 600.0
    """A lazy server that served no call for this long is stopped (it starts again on the next call)."""
    health_interval_seconds: float = 30.0
    """Seconds between pings of a running server; one that does not answer in time is restarted. 0: never."""
    restart: RestartPolicy = field(default_factory=lambda: RestartPolicy())

    @property
    def prefix(self) -> str:
        return self.namespace or self.name

    @property
    def secret_names(self) -> tuple[str, ...]:
        refs = [*self.env.values(), *self.headers.values()]
        return tuple(sorted({v.name for v in refs if isinstance(v, SecretRef)}))


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """Allow/deny globs over exposed names; deny wins over allow."""

    default: Literal["allow", "deny"] = "allow"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    path: Path
    servers: tuple[ServerSpec, ...]
    policy: PolicySpec = field(default_factory=PolicySpec)
    description: str = ""
    max_name_length: int = DEFAULT_MAX_NAME_LENGTH

    def server(self, name: str) -> ServerSpec | None:
        return next((s for s in self.servers if s.name == name), None)

    @property
    def enabled_servers(self) -> tuple[ServerSpec, ...]:
        return tuple(s for s in self.servers if s.enabled)
