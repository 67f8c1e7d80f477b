"""The audit log: one JSON object per line, appended, never rewritten.

Each `AuditLog.write` is one `os.write` on a descriptor opened with `O_APPEND`, so
lines from several threads or processes never interleave. It is synchronous on
purpose: one small append costs microseconds, less than handing it to a thread.
Callers supply the fields; the log adds `ts` (UTC, ISO 8601, milliseconds, `Z`).

Event schema (callers keep to it; readers tolerate extra keys):

`tool_call`, one per `tools/call`, written when the call is over (even if cancelled)::

    {"ts": "2025-01-31T12:00:00.123Z", "event": "tool_call", "profile": "dev",
     "host": "claude-code", "exposed": "git__git_status", "server": "git",
     "tool": "git_status", "decision": "allowed", "rule": "allow: git__*",
     "outcome": "ok", "duration_ms": 12.345, "args": "sha256:…", "error": null,
     "result_bytes": 2048}

- `decision`: `allowed` | `denied` | `unknown` (no route); `rule`: the deciding rule or null.
- `outcome`: `ok` | `tool_error` (the downstream returned `is_error`) | `error` | `timeout`
  | `cancelled` | `denied` | `unknown`.
- `args`: `args_digest(arguments)`; raw arguments are never recorded.
- `error`: a short, redacted message, or null.

Lifecycle events carry `event` plus what applies (`server`, `pid`, `exit_code`, `error`, ...):
`serve_start`, `serve_stop`, `downstream_start`, `downstream_exit`, `downstream_failed`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from mcpmux.paths import ensure_private_dir

Decision = Literal["allowed", "denied", "unknown"]
Outcome = Literal["ok", "tool_error", "error", "timeout", "cancelled", "denied", "unknown"]
LifecycleEvent = Literal["serve_start", "serve_stop", "downstream_start", "downstream_exit", "downstream_failed"]

_TAIL_BLOCK = 64 * 1024


def utc_timestamp(when: datetime | None = None) -> str:
    """`2025-01-31T12:00:00.123Z`: UTC, milliseconds, `Z`."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def args_digest(arguments: Any) -> str:
    """`sha256:<hex>` of the canonical JSON (sorted keys) of `arguments`: stable, and reveals nothing."""
    canonical = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


class AuditLog:
    """An append-only JSONL file, opened lazily (mode 0600, parent directory 0700). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def _open(self) -> int:
        with self._lock:
            if self._fd is None:
                ensure_private_dir(self.path.parent)
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o600)
            return self._fd

    def write(self, event: Mapping[str, Any]) -> None:
        """Append `event` as one line, adding `ts` if absent. Values orjson cannot encode are written as `str()`."""
        record = event if "ts" in event else {"ts": utc_timestamp(), **event}
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE, default=str)
        fd = self._fd if self._fd is not None else self._open()
        written = os.write(fd, line)
        while written < len(line):  # a regular file only writes short on a full disk or a signal
            written += os.write(fd, line[written:])

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(slots=True)
class ReadStats:
    """Filled in by `read_events` as it goes: lines read as events, and lines skipped as unparseable."""

    events: int = 0
    skipped: int = 0


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None  # pyright: ignore[reportUnknownVariableType]


def read_events(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Every event in `path`, oldest first; a missing file has none.

    Lines that are not JSON objects (say, cut short by a crash) are skipped and counted in `stats`.
    """
    stats = stats if stats is not None else ReadStats()
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            if not line.strip():
                continue
            event = _parse(line)
            if event is None:
                stats.skipped += 1
                continue
            stats.events += 1
            yield event


def tail_lines(path: Path, n: int) -> list[bytes]:
    """The last `n` lines of `path` that are JSON objects, raw (without newline), oldest first.

    Reads backwards from the end, so it costs O(n) however long the log is.
    """
    if n <= 0:
        return []
    found: list[bytes] = []
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, os.SEEK_END)
        carry = b""
        while end > 0 and len(found) < n:
            start = max(0, end - _TAIL_BLOCK)
            f.seek(start)
            chunk = f.read(end - start) + carry
            end = start
            lines = chunk.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""  # maybe the tail of an earlier line
            for line in reversed(lines):
                if len(found) < n and line.strip() and _parse(line) is not None:
                    found.append(line)
    return found[::-1]


def tail_events(path: Path, n: int) -> list[dict[str, Any]]:
    """The last `n` parseable events of `path`, oldest first."""
    return [event for line in tail_lines(path, n) if (event := _parse(line)) is not None]
