"""The audit event schema (versions 1 and 2) and the `tool_call` event, with what it may record of a call.

Every line is one JSON object. `AuditLog.write` adds the envelope; the constructors here
build the rest, so the schema lives in one place. Readers tolerate extra keys.

Envelope (every event)::

    v        2 (keyed) or 1 (unkeyed)       schema version
    id       "0190f3c2a1b4…" (32 hex)       unique, sorts by creation time
    ts       "2026-11-25T13:57:19.778Z"     UTC, milliseconds
    event    "tool_call" | a lifecycle event below
    serve    "9f1c…"                        the `mcpmux serve` instance that wrote it
    profile, profile_hash                   the profile's name and sha256 of its file (the bytes parsed)
    host, host_version                      the host's clientInfo (once it has said hello)
    seq      1, 2, …                        position in the chain (continues across rotation)
    prev     the previous line's `mac` (or sha256 of its bytes if it has none); "0"*64 for the first
    mac      (v2) HMAC-SHA256 of this line without `mac`, under the audit key (`chain.py`)

`tool_call`, one per `tools/call`, written when the call is over (even if cancelled)::

    exposed, server, tool    the name the host called and where it routed (null when unknown)
    decision                 allowed | denied | unknown (no such tool)
    rule                     the policy rule that decided, e.g. `policy.deny[0] "*__delete_*"`, or
                             `audit.required` (refused: the audit log could not be written), or
                             `mcpmux.max_depth` (refused: arguments nested deeper than mcpmux relays)
    outcome                  ok | tool_error (the tool returned is_error) | denied | unknown | error
                             | timeout | cancelled | unavailable (the downstream is not running)
                             | task (the call became a task; fetching its result is audited again)
    task                     the task id the host knows, on the events of a task's creation and result
    duration_ms              from the host's request to the answer (0 for refusals)
    args                     per the profile's `[audit] args`: null (`none`), "hmac-sha256:…" keyed with the
                             audit key (`digest`, the default; null when there is no key), or the arguments
                             with the server's secret values replaced (`redacted`; the digest when it cannot
                             redact, see `args_mode_for`)
                             null as well for arguments nested too deeply to record
    error                    a short, redacted message, or null. Under `none` and `digest` only mcpmux's own
                             words without any value from the call (`ErrorText.bare`): no argument a refusal
                             quotes, no message a downstream or the host wrote
    result_bytes             size of the downstream's reply line
    truncated                true when `args` or `error` was cut to fit `MAX_FIELD_CHARS`

`audit_head`, written by the log itself at the start of each keyed segment (`chain.py`): reason
(new | rotated | key), key (keyring | file), key_id, nonce, oldest_seq (rotated).

Lifecycle events and refusals of other primitives are built in lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from mcpmux.audit.key import AuditKey
from mcpmux.profile.model import AuditArgsMode
from mcpmux.secrets.redact import Redactor

Decision = Literal["allowed", "denied", "unknown"]
Outcome = Literal["ok", "tool_error", "denied", "unknown", "error", "timeout", "cancelled", "unavailable", "task"]
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
    "host_attached",
    "host_detached",
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
    "task",
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


def record_arguments(
    arguments: Any, mode: ArgsMode, redactor: Redactor | None = None, key: AuditKey | None = None
) -> Any:
    """What the audit log records of a call's arguments under `mode`.

    `none` → None; `digest` → `hmac-sha256:…` of the canonical JSON under `key` (None without a key: a
    plain hash would let anyone confirm a guessed value); `redacted` → the arguments with every string
    (keys too) passed through `redactor`, so no secret value it knows reaches the log.
    Arguments never read, or nested too deeply to encode (see `tool_call_event`), are recorded as None.
    """
    if mode == "none" or arguments is UNREAD_ARGUMENTS:
        return None
    if mode == "digest":
        return key.args_digest(arguments) if key is not None else None
    return _redact(arguments, redactor) if redactor else arguments


@dataclass(frozen=True, slots=True)
class ErrorText:
    """A call's error as the host was told it (`full`), and in mcpmux's own words alone (`bare`).

    `bare` holds no value from the call's arguments, nor text a downstream or the host wrote (None:
    nothing to say beyond the outcome). The log records `bare` unless the profile records values.
    """

    full: str
    bare: str | None

    @classmethod
    def same(cls, text: str) -> ErrorText:
        """A text made of mcpmux's own words alone (names, rule keys, paths of its files)."""
        return cls(text, text)


def call_error(server: str, tool: str, error: Any) -> ErrorText:
    """A downstream's JSON-RPC error answer to a call: its message may echo the arguments, its code cannot."""
    failed = f"server '{server}' failed tool '{tool}'"
    obj: dict[str, Any] | None = error if isinstance(error, dict) else None  # pyright: ignore[reportUnknownVariableType]
    if obj is None:
        return ErrorText(f"{failed}: {error}", failed)
    code = obj.get("code")
    bare = f"{failed} (JSON-RPC error code {code})" if isinstance(code, int) and not isinstance(code, bool) else failed
    return ErrorText(f"{failed}: {obj.get('message')} (code {code})", bare)


def error_for_log(error: str | ErrorText | None, mode: ArgsMode) -> str | None:
    """The `error` a `tool_call` event records under `mode`: `full` for `redacted`, else `bare`.

    A plain string has no known bare form, so outside `redacted` it is left out: fail closed.
    """
    if error is None or isinstance(error, str):
        return error if mode == "redacted" or error is None else f"not recorded (audit.args = {mode!r})"
    return error.full if mode == "redacted" else error.bare


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
    key: AuditKey | None = None,
    error: str | ErrorText | None = None,
    result_bytes: int = 0,
    **context: Any,
) -> dict[str, Any]:
    """One `tool_call` event; `error` per `error_for_log`, redacted too. `context` adds fields (`profile`, `host`)."""
    try:
        args, args_cut = _cut(record_arguments(arguments, args_mode, redactor, key))
    except (orjson.JSONEncodeError, RecursionError):  # arguments nested deeper than any encoder goes
        args, args_cut = None, False
    text = error_for_log(error, args_mode)
    if text is not None and redactor:
        text = redactor.redact_text(text)
    text, error_cut = _cut(text)
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
        "error": text,
        "result_bytes": result_bytes,
        "truncated": args_cut or error_cut,
    }
