"""The audit event schema (version 1) and constructors for every event mcpmux writes.

Every line is one JSON object. `AuditLog.write` adds the envelope; the constructors here
build the rest, so the schema lives in one place. Readers tolerate extra keys.

Envelope (every event)::

    v        1                              schema version
    id       "0190f3c2a1b4…" (32 hex)       unique, sorts by creation time
    ts       "2026-11-25T13:57:19.778Z"     UTC, milliseconds
    event    "tool_call" | a lifecycle event below
    serve    "9f1c…"                        the `mcpmux serve` instance that wrote it
    profile, profile_hash                   the profile's name and sha256 of its file
    host, host_version                      the host's clientInfo (once it has said hello)
    seq      1, 2, …                        position in the chain (continues across rotation)
    prev     sha256 hex of the previous line's exact bytes ("0"*64 for the first event)

`tool_call`, one per `tools/call`, written when the call is over (even if cancelled)::

    exposed, server, tool    the name the host called and where it routed (null when unknown)
    decision                 allowed | denied | unknown (no such tool)
    rule                     the policy rule that decided, e.g. `policy.deny[0] "*__delete_*"`, or
                             `audit.required` (refused: the audit log could not be written), or
                             `mcpmux.max_depth` (refused: arguments nested deeper than mcpmux relays)
    outcome                  ok | tool_error (the tool returned is_error) | denied | unknown | error
                             | timeout | cancelled | unavailable (the downstream is not running)
    duration_ms              from the host's request to the answer (0 for refusals)
    args                     per the profile's `[audit] args`: null (`none`), "sha256:…" (`digest`, the
                             default), or the arguments with the server's secret values replaced (`redacted`;
                             the digest when it cannot redact, see `args_mode_for`); null as well for
                             arguments nested too deeply to record
    error                    a short, redacted message, or null
    result_bytes             size of the downstream's reply line
    truncated                true when `args` or `error` was cut to fit `MAX_FIELD_CHARS`

Lifecycle events: `serve_start` (pid, version), `serve_stop` (pid, reason), `downstream_start`
(server, pid), `downstream_exit` (server, pid, exit_code), `downstream_restart` (server, attempt,
delay_s), `downstream_failed` (server, error, log), `profile_switch` (from_profile, from_hash,
profile, profile_hash), `catalog_changed` (added, removed, changed: exposed tool names).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from mcpmux.audit.log import args_digest
from mcpmux.profile.model import AuditArgsMode
from mcpmux.secrets.redact import Redactor

Decision = Literal["allowed", "denied", "unknown"]
Outcome = Literal["ok", "tool_error", "denied", "unknown", "error", "timeout", "cancelled", "unavailable"]
ArgsMode = AuditArgsMode
LifecycleEvent = Literal[
    "serve_start",
    "serve_stop",
    "downstream_start",
    "downstream_exit",
    "downstream_restart",
    "downstream_failed",
    "profile_switch",
    "catalog_changed",
]

OUTCOMES: tuple[Outcome, ...] = (
    "ok",
    "tool_error",
    "denied",
    "unknown",
    "error",
    "timeout",
    "cancelled",
    "unavailable",
)
ERROR_OUTCOMES = frozenset({"tool_error", "error", "timeout", "unavailable"})
"""Outcomes counted as errors by `mcpmux audit stats`."""
REFUSED_OUTCOMES = frozenset({"denied", "unknown"})
"""Outcomes of calls that never reached a downstream (their duration is not a latency)."""

MAX_FIELD_CHARS = 4096
"""`args` (in `redacted` mode) and `error` longer than this are cut, and the event marked `truncated`."""

AUDIT_REQUIRED_RULE = "audit.required"
"""The `rule` of a call refused because the profile requires audit and the log's last append failed."""


def audit_refusal(exposed: str, path: object, reason: str | None) -> str:
    """The error result of a call refused by `audit.required = true`: the log, why, and the fixes."""
    return (
        f"tool '{exposed}' was not run: the audit log {path} cannot be written ({reason or 'unknown error'}) "
        "and the profile sets audit.required = true. Free disk space or fix the log's permissions (calls run "
        "again once an audit event is written; each refused call tries to write its own), or set "
        "audit.required = false in the profile to let calls run unaudited."
    )


def args_mode_for(mode: ArgsMode, redactor: Redactor | None, secret_names: tuple[str, ...] | None) -> ArgsMode:
    """`mode`, except that `redacted` fails closed to `digest` when it cannot redact.

    That is when there is no server (`secret_names` None: an unknown tool, so no telling whose secrets
    to look for), or the server has secrets but `redactor` knows none of their values (it has not started
    this run, or every value is too short to redact). A server without secrets has its values recorded.
    """
    if mode != "redacted" or secret_names == ():
        return mode
    return "redacted" if secret_names is not None and redactor else "digest"


class _Unread:
    def __repr__(self) -> str:
        return "UNREAD_ARGUMENTS"


UNREAD_ARGUMENTS: Any = _Unread()
"""The arguments of a call refused before they could be read (its line nested too deeply to parse)."""


def record_arguments(arguments: Any, mode: ArgsMode, redactor: Redactor | None = None) -> Any:
    """What the audit log records of a call's arguments under `mode`.

    `none` → None; `digest` → `sha256:…` of the canonical JSON; `redacted` → the arguments with every
    string (keys too) passed through `redactor`, so no secret value it knows reaches the log.
    Arguments never read, or nested too deeply to encode (see `tool_call_event`), are recorded as None.
    """
    if mode == "none" or arguments is UNREAD_ARGUMENTS:
        return None
    if mode == "digest":
        return args_digest(arguments)
    return _redact(arguments, redactor) if redactor else arguments


def _redact(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact_text(value)
    if isinstance(value, Mapping):
        items: Mapping[Any, Any] = value  # pyright: ignore[reportUnknownVariableType]
        return {redactor.redact_text(str(k)): _redact(v, redactor) for k, v in items.items()}
    if isinstance(value, list | tuple):
        seq: list[Any] | tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
        return [_redact(v, redactor) for v in seq]
    return value


def _cut(value: Any) -> tuple[Any, bool]:
    """Cut a long string, or a structure whose JSON is long (to its JSON text), to `MAX_FIELD_CHARS`."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return (value[:MAX_FIELD_CHARS] + "…", True) if len(value) > MAX_FIELD_CHARS else (value, False)
    text = orjson.dumps(value, default=str).decode()
    return (text[:MAX_FIELD_CHARS] + "…", True) if len(text) > MAX_FIELD_CHARS else (value, False)


def tool_call_event(
    *,
    exposed: str,
    server: str | None,
    tool: str | None,
    decision: str,
    rule: str | None,
    outcome: str,
    duration_ms: float,
    arguments: Any,
    args_mode: ArgsMode = "digest",
    redactor: Redactor | None = None,
    error: str | None = None,
    result_bytes: int = 0,
    **context: Any,
) -> dict[str, Any]:
    """One `tool_call` event; `error` is redacted too. `context` adds fields (say `profile`, `host`)."""
    try:
        args, args_cut = _cut(record_arguments(arguments, args_mode, redactor))
    except (orjson.JSONEncodeError, RecursionError):  # arguments nested deeper than any encoder goes
        args, args_cut = None, False
    if error is not None and redactor:
        error = redactor.redact_text(error)
    error, error_cut = _cut(error)
    return {
        "event": "tool_call",
        **context,
        "exposed": exposed,
        "server": server,
        "tool": tool,
        "decision": decision,
        "rule": rule,
        "outcome": outcome,
        "duration_ms": round(duration_ms, 3),
        "args": args,
        "error": error,
        "result_bytes": result_bytes,
        "truncated": args_cut or error_cut,
    }


def serve_start(pid: int, version: str, **context: Any) -> dict[str, Any]:
    return {"event": "serve_start", **context, "pid": pid, "version": version}


def serve_stop(pid: int, reason: str | None = None, **context: Any) -> dict[str, Any]:
    """`reason`: `stdin closed`, `SIGTERM`, … or None."""
    return {"event": "serve_stop", **context, "pid": pid, "reason": reason}


def downstream_start(server: str, pid: int | None, **context: Any) -> dict[str, Any]:
    return {"event": "downstream_start", **context, "server": server, "pid": pid}


def downstream_exit(server: str, pid: int | None, exit_code: int | None, **context: Any) -> dict[str, Any]:
    """`exit_code` as `Popen.returncode`: negative for a signal, None when unknown."""
    return {"event": "downstream_exit", **context, "server": server, "pid": pid, "exit_code": exit_code}


def downstream_restart(server: str, attempt: int, delay_s: float, **context: Any) -> dict[str, Any]:
    return {
        "event": "downstream_restart",
        **context,
        "server": server,
        "attempt": attempt,
        "delay_s": round(delay_s, 3),
    }


def downstream_failed(server: str, error: str, log: str | None = None, **context: Any) -> dict[str, Any]:
    """The downstream gave up (failed to start, or too many restarts); `log` is its stderr log's path."""
    return {"event": "downstream_failed", **context, "server": server, "error": error, "log": log}


def profile_switch(
    from_profile: str | None, from_hash: str | None, profile: str, profile_hash: str | None, **context: Any
) -> dict[str, Any]:
    return {
        "event": "profile_switch",
        **context,
        "from_profile": from_profile,
        "from_hash": from_hash,
        "profile": profile,
        "profile_hash": profile_hash,
    }


def tool_fingerprint(definition: Any) -> str:
    """A short hash of a tool definition (a dict or a pydantic model), to notice a changed tool."""
    if hasattr(definition, "model_dump"):
        definition = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    canonical = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()[:16]


def catalog_changed(before: Mapping[str, str], after: Mapping[str, str], **context: Any) -> dict[str, Any] | None:
    """The difference between two {exposed name: `tool_fingerprint`} maps, or None when there is none.

    The lead builds each map from a `Catalog` as `{n: tool_fingerprint(r.definition) for n, r in c.routes.items()}`.
    """
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(n for n in before.keys() & after.keys() if before[n] != after[n])
    if not (added or removed or changed):
        return None
    return {"event": "catalog_changed", **context, "added": added, "removed": removed, "changed": changed}
