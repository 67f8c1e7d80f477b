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


@dataclass(frozen=True, slots=True)
class SecretTemplate:
    """A string with secret references inside it, e.g. `"Bearer {secret:remote-token}"`.

    `parts` alternate freely between literal text and `SecretRef`s; resolving joins them.
    """

    parts: tuple[str | SecretRef, ...]

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(sorted({p.name for p in self.parts if isinstance(p, SecretRef)}))


EnvValue = str | SecretRef | SecretTemplate


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
class OAuthSpec:
    """`[servers.NAME.oauth]`: how mcpmux signs in to a remote server (see `mcpmux.oauth`).

    Every field is optional: with none set, the client registers itself (dynamic registration)
    on a callback port picked at login. A server without dynamic registration needs `client_id`
    (and `callback_port`, the port its registered redirect URI names)."""

    client_id: str | None = None
    client_secret: SecretRef | None = None
    scopes: tuple[str, ...] = ()
    callback_port: int | None = None
    client_metadata_url: str | None = None
    """A client ID metadata document (an https URL) used as the client ID where the server supports one."""


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
    oauth: OAuthSpec | None = None
    """Sign in with OAuth when the server asks for it (remote servers only); None never does."""
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
    shared: bool = True
    """`shared = false`: in a shared gateway each attached host gets a copy of its own (downstream/private.py)."""
    search_path: tuple[str, ...] = ()
    """The profile's `path`: absolute folders searched for `command` ahead of PATH, and put ahead of its PATH."""

    @property
    def prefix(self) -> str:
        return self.namespace or self.name

    @property
    def secret_names(self) -> tuple[str, ...]:
        names: set[str] = set()
        for value in (*self.env.values(), *self.headers.values()):
            if isinstance(value, SecretRef):
                names.add(value.name)
            elif isinstance(value, SecretTemplate):
                names.update(value.secret_names)
        if self.oauth is not None and self.oauth.client_secret is not None:
            names.add(self.oauth.client_secret.name)
        return tuple(sorted(names))


@dataclass(frozen=True, slots=True)
class ArgConstraint:
    """`[policy.rules.args] NAME = { ... }`: what one argument of a call must be. None means not set."""

    name: str
    enum: tuple[object, ...] | None = None
    pattern: str | None = None
    """Matched against the whole value (re.fullmatch)."""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    within: tuple[str, ...] | None = None
    """Absolute roots (`~` expanded, relative ones against the profile's folder)."""
    equals: object | None = None
    fixed: object | None = None
    """Forced into every call by the profile and hidden from the host's schema."""
    required: bool = False


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekdays as `days` names them, Monday first (`datetime.weekday()` indexes them)."""


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """`hours = "06:00-18:00"`: minutes after midnight, start inclusive, end exclusive; end < start wraps midnight."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate = "30/minute"`: at most `count` calls in any `seconds`-long window, per tool, per serve process."""

    count: int
    seconds: float
    text: str


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One `[[policy.rules]]` table; `index` is its position, for `policy.rules[N]` in decisions."""

    index: int
    tools: tuple[str, ...]
    effect: Literal["allow", "deny"] = "allow"
    hosts: tuple[str, ...] | None = None
    """Globs over the host's clientInfo.name; None matches any host."""
    hours: TimeWindow | None = None
    days: frozenset[int] | None = None
    """Weekdays, 0 = Monday."""
    timezone: str = "UTC"
    rate: RateLimit | None = None
    args: tuple[ArgConstraint, ...] = ()
    description: str | None = None
    max_output_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """`[policy.resources]`: globs over exposed resource URIs and URI templates (deny wins)."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestPolicy:
    """`[policy.requests]`: globs over server names that may send each request to the host."""

    sampling: tuple[str, ...] = ("*",)
    elicitation: tuple[str, ...] = ("*",)
    roots: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """Allow/deny globs over exposed names (deny wins), annotation modes and rules; see policy.py."""

    default: Literal["allow", "deny"] = "allow"
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    read_only: bool = False
    deny_destructive: bool = False
    rules: tuple[PolicyRule, ...] = ()
    resources: ResourcePolicy = field(default_factory=lambda: ResourcePolicy())
    requests: RequestPolicy = field(default_factory=lambda: RequestPolicy())


IntegrityMode = Literal["block", "warn", "allow"]
AuditArgsMode = Literal["none", "digest", "redacted"]


@dataclass(frozen=True, slots=True)
class AuditSpec:
    """`[audit]`: what `tool_call` events record of the arguments, and whether calls need a writable log."""

    args: AuditArgsMode = "digest"
    """`none`: null; `digest`: sha256 of their canonical JSON; `redacted`: the values, the server's secrets replaced."""
    required: bool = False
    """Refuse calls while the audit log cannot be written (its last append failed)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file a profile was read from, and the sha256 of the exact bytes that were parsed."""

    path: Path
    """Resolved (symlinks followed)."""
    sha256: str


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    path: Path
    servers: tuple[ServerSpec, ...]
    policy: PolicySpec = field(default_factory=PolicySpec)
    description: str = ""
    max_name_length: int = DEFAULT_MAX_NAME_LENGTH
    # Tool integrity and context budget (see `pins.py`, `scan.py`, `discovery.py`).
    on_tool_change: IntegrityMode = "block"
    """A pinned tool whose definition changed: hidden until `mcpmux pin update`, shown with a warning, or accepted."""
    on_new_tool: IntegrityMode = "warn"
    """A tool first seen after its server was pinned (a server's first use pins all its tools)."""
    max_tools: int | None = None
    expose: Literal["all", "search"] = "all"
    hide_flagged: bool = False
    """Hide tools the description scanner flags with medium or high severity."""
    audit: AuditSpec = field(default_factory=AuditSpec)
    registry: str | None = None
    """`registry = "https://…"`: the MCP registry `mcpmux search` and `add` use with this profile."""
    shared: bool = False
    """`serve` attaches to the profile's shared gateway (one set of downstreams for every host; shared/)."""
    sources: tuple[SourceFile, ...] = ()
    """Every file it was read from, in merge order (farthest ancestor first, its own file last); see `inherit.py`.

    Each carries the hash of the bytes parsed: trust, audit and status use these, never a second read
    of the file (which could differ from what was parsed)."""

    @property
    def extends(self) -> tuple[Path, ...]:
        """Every file this profile extends, directly or not, in merge order (farthest ancestor first)."""
        return tuple(source.path for source in self.sources[:-1])

    @property
    def sha256(self) -> str | None:
        """sha256 of the profile's own file as parsed; None for a profile not read from a file."""
        return self.sources[-1].sha256 if self.sources else None

    @property
    def source_hashes(self) -> dict[str, str]:
        """Each file it was read from (its own first) → sha256 of the bytes parsed: what the audit log records."""
        return {str(source.path): source.sha256 for source in reversed(self.sources)}

    def server(self, name: str) -> ServerSpec | None:
        return next((s for s in self.servers if s.name == name), None)

    @property
    def enabled_servers(self) -> tuple[ServerSpec, ...]:
        return tuple(s for s in self.servers if s.enabled)
