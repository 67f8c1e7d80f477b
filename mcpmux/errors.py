"""The exceptions mcpmux raises, as one small tree.

    MCPMuxError                  anything mcpmux reports to a person
    ├── ProfileError             a profile is missing, unreadable or invalid (carries every Problem)
    ├── TrustError               a profile's content has not been trusted
    ├── SecretError              a secret reference cannot be resolved (names the secret and the fix)
    │   └── ReadOnlyStore          the secret store cannot be written (mcpmux's own environment)
    ├── ControlError             a running serve's control endpoint is missing, silent or answered an error
    ├── DownstreamError          one downstream failed: spawn, handshake, transport, or a call
    │   ├── DownstreamUnavailable  the downstream is not running (failed to start, exited, restarting)
    │   └── StartFailed            a start that a restart cannot fix (bad command, missing secret, 401)
    ├── AuditError               the audit log cannot be written (full disk, unwritable file)
    └── RegistryError            an MCP registry is unreachable, refused a request, or answered what cannot be used

Internal signals, caught where they arise and turned into one of the above (or a log line):

    TemplateError (ValueError)   a `{secret:…}` template is malformed; the profile loader makes it a Problem
    LineTooLong                  a peer sent a line over the wire's limit; that connection is closed
    TooDeep (ValueError)         a line nests deeper than orjson parses; the request is refused
    Unencodable (ValueError)     a value nests deeper than orjson writes; the call is refused, or answered an error
    KeyringLoadError             keyring could not load the backend its settings name; a SecretError says so
    NoKeyring                    no keyring can hold the audit key here; the key goes to a 0600 file instead

Errors carry their context as fields (`path`, `server`, `secret`), so callers can
render them; `str(err)` is always one complete sentence with the fix. The CLI is
the one place that turns them into exit codes, the front the one place that turns
them into `is_error` results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class MCPMuxError(Exception):
    """Base of every error a user can cause or fix."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a profile: where, what, and how to fix it."""

    path: Path
    line: int | None
    key: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        fix = f" ({self.fix})" if self.fix else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}: {key}{self.message}{fix}"


class ProfileError(MCPMuxError):
    """A profile could not be found, read or validated; `problems` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TrustError(MCPMuxError):
    """A profile's exact content has not been trusted by the user."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


class SecretError(MCPMuxError):
    """A secret reference could not be resolved: missing entry, keyring unavailable or timed out."""

    def __init__(self, secret: str, message: str) -> None:
        self.secret = secret
        super().__init__(message)


class DownstreamError(MCPMuxError):
    """One downstream failed; `server` names it and `log_path` points at its stderr log."""

    def __init__(self, server: str, message: str, log_path: Path | None = None) -> None:
        self.server = server
        self.log_path = log_path
        super().__init__(message)


class DownstreamUnavailable(DownstreamError):
    """The downstream is not running: it failed to start, exited, or is being restarted."""


class StartFailed(DownstreamError):
    """A downstream could not start for a reason a restart cannot fix (the profile or the machine must change)."""


class AuditError(MCPMuxError):
    """The audit log at `path` could not be written; raised only when audit is required."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


class RegistryError(MCPMuxError):
    """An MCP registry could not answer, or its answer cannot become a profile entry; names the server and the fix."""


class ReadOnlyStore(SecretError):
    """A store that cannot be written (the environment of mcpmux's own process)."""


class ControlError(MCPMuxError):
    """A control request failed: no endpoint, no answer in time, or an error reply; `path` names the socket."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


class TemplateError(ValueError):
    """A string with `{secret:` in it is not a valid template; `fix` says what to write."""

    def __init__(self, message: str, fix: str) -> None:
        self.fix = fix
        super().__init__(message)


class LineTooLong(Exception):
    """Raised by `LineBuffer.feed` when a peer sends more than the wire's limit without a newline."""


class KeyringLoadError(Exception):
    """keyring could not load the backend its settings name."""


class NoKeyring(Exception):
    """The keyring cannot hold the audit key here; the message says why."""


class TooDeep(ValueError):
    """A line nests deeper than orjson parses (1024 levels): valid JSON, perhaps, but not a message mcpmux takes."""


class Unencodable(ValueError):
    """A value orjson cannot write: nested deeper than `wire.MAX_DEPTH` (the one cause for parsed JSON)."""
