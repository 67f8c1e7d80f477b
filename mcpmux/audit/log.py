"""The audit log writer: one JSON object per line, appended, chained, rotated by size.

The schema of every event is documented in `events.py`; the keyed chain's format (MACs, head
records, the anchor) in `chain.py`; reading, querying and verification live in `read.py`,
`query.py` and `verify.py`.

Each `AuditLog.write` is one `os.write` of whole lines on a descriptor opened with
`O_APPEND`, so lines from several threads or `serve` processes never interleave, and a
crash loses no completed event. The log adds `v` (schema version), `id` (time-ordered,
unique), `ts` (UTC, ms), `seq` (position in the chain), `prev` (the previous line's link)
and, with a key, `mac` to every event, plus the fields bound with `bind`. With a key
(`mcpmux.audit.key`; `serve` always tries to have one) lines are version 2, MACed, and each
append rewrites the anchor; without one they are version 1, sha256-chained, as before keys.

Several processes may append to one file and the chain must stay whole, so each
append takes an exclusive `flock` on a sibling lock file (`audit.jsonl.lock`, never
rotated) around "find the last line's link, write ours". The last link is cached in
process and the tail re-read only when the file's inode or size differs from what our
own last write left: with one writer that is a `stat`, a `flock` pair, a `write` and the
anchor's `pwrite`. Rotation (`audit.jsonl` → `audit.1.jsonl` → … → `audit.<keep>.jsonl`,
oldest dropped) happens under the same lock, and the first line of the new file (a head
record, when keyed) chains to the last line of the rotated one.

Synchronous on purpose: one small append costs microseconds, less than handing it to a thread.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from mcpmux.audit.chain import GENESIS, KEYED_VERSION, anchor_path, encode_anchor, head_record, link_of, seal, sealed_by
from mcpmux.audit.key import AuditKey
from mcpmux.audit.read import (
    ReadStats,
    first_seq,
    last_line,
    last_seq_in,
    log_files,
    parse_line,
    read_events,
    rotated_path,
    seq_of,
    tail_events,
    tail_lines,
    tail_of,
)
from mcpmux.errors import AuditError
from mcpmux.paths import ensure_private_dir
from mcpmux.secrets.redact import Redactor

logger = logging.getLogger("mcpmux")

SCHEMA_VERSION = 1
"""The version of unkeyed lines (sha256-chained); keyed lines are `chain.KEYED_VERSION`."""

__all__ = [
    "GENESIS",
    "SCHEMA_VERSION",
    "AuditLog",
    "ReadStats",
    "event_id",
    "line_hash",
    "read_events",
    "tail_events",
    "tail_lines",
    "utc_timestamp",
]

FsyncPolicy = Literal["never", "always"]
Observer = Callable[[Mapping[str, Any]], None]

DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024
DEFAULT_KEEP = 10


def utc_timestamp(when: datetime | None = None) -> str:
    """`2025-01-31T12:00:00.123Z`: UTC, milliseconds, `Z`. Strings in this form sort as times do."""
    if when is None:
        ms = time.time_ns() // 1_000_000
        return _second_text(ms // 1000) + f".{ms % 1000:03d}Z"
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    # Formatting a date costs microseconds; every event within one second shares it.
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def event_id() -> str:
    """32 hex digits: milliseconds since the epoch, then 80 random bits; sorts by creation time like a ULID."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def line_hash(line: bytes) -> str:
    """What the next event's `prev` holds: sha256 hex of a line's exact bytes, without its newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


class AuditLog:
    """An append-only, chained JSONL file, opened lazily (mode 0600, parent directory 0700). Thread-safe.

    `key`: MAC the chain and key argument digests with it (`mcpmux.audit.key`); None writes the unkeyed
    version-1 chain, whose edits anyone who can write the file can hide by re-hashing.
    `required`: when a write fails (full disk, unwritable file), raise `AuditError` so the caller can refuse
    the call; otherwise report it once on stderr and go on. Either way `failure` (and `failure_reason`, the
    OS's words) holds the last error until a write succeeds again: every append updates it, so a caller can
    check `healthy` for free before each call (the relay does, for a profile's `audit.required`).
    `observers` are called with every event written (say, `telemetry.observe`).
    """

    def __init__(
        self,
        path: Path,
        *,
        key: AuditKey | None = None,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        keep: int = DEFAULT_KEEP,
        fsync: FsyncPolicy = "never",
        required: bool = False,
        observers: list[Observer] | None = None,
        redactor: Callable[[], Redactor] | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self._redactor = redactor
        """Every secret of the running profile out of each event's text, whichever part carries it (the choke
        point of the audit direction, as front.to_host is of the host's)."""
        self.rotate_bytes = rotate_bytes
        self.keep = max(0, keep)
        self.fsync = fsync
        self.required = required
        self.observers: list[Observer] = observers if observers is not None else []
        self.failure: AuditError | None = None
        self.failure_reason: str | None = None
        self._context: dict[str, Any] = {}
        self._path_text = os.fspath(path)
        self._version = SCHEMA_VERSION if key is None else KEYED_VERSION
        self._fd: int | None = None
        self._ino = -1
        self._lock_fd: int | None = None
        self._anchor_fd: int | None = None
        self._lock = threading.Lock()
        # What our last write left: (inode, size) of the live file, its last line's link and seq.
        self._mark: tuple[int, int] | None = None
        self._last_link = GENESIS
        self._last_seq = 0
        self._head: dict[str, Any] | None = None
        """A head record to write before the next event (keyed only): a new log, a new file, another key."""
        self._reported = False
        self._needs_newline = False

    def bind(self, **fields: Any) -> None:
        """Fields merged into every later event where the event itself has no value (e.g. serve, profile, host)."""
        with self._lock:
            self._context = {**self._context, **fields}

    def write(self, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """Append `event` as one chained line; returns the record written, or None when it could not be.

        Adds `v`, `id`, `ts` (unless given), `seq`, `prev` and, keyed, `mac`. Values orjson cannot encode are
        written as `str()`. Raises `AuditError` on failure only when the log is `required`.
        """
        head: dict[str, Any] = {"v": self._version, "id": event_id(), "ts": utc_timestamp()}
        with self._lock:
            context = self._context
            record = head | context | {k: v for k, v in event.items() if v is not None or k not in context}
            record = {k: v for k, v in record.items() if k not in _CHAIN_FIELDS}
            if self._redactor is not None and (redactor := self._redactor()):
                record = _scrubbed(record, redactor.redact_text)
            try:
                self._append_locked(record)
            except OSError as exc:
                self._failed(exc)
                return None
            self.failure = self.failure_reason = None
            self._reported = False
        for observer in self.observers:
            try:
                observer(record)
            except Exception:  # an observer (telemetry) must never break the audit path
                logger.exception("audit observer failed")
        return record

    @property
    def healthy(self) -> bool:
        """False from a failed append until the next one succeeds."""
        return self.failure is None

    def _failed(self, exc: OSError) -> None:
        reason = self.failure_reason = exc.strerror or str(exc)
        error = AuditError(
            self.path,
            f"cannot write the audit log {self.path}: {reason} "
            "(free disk space or fix the file's permissions; calls are refused while audit is required)"
            if self.required
            else f"cannot write the audit log {self.path}: {reason} "
            "(free disk space or fix the file's permissions; events are being lost)",
        )
        self.failure = error
        if self.required:
            raise error from exc
        if not self._reported:
            self._reported = True
            logger.error("%s", error)

    def _append_locked(self, record: dict[str, Any]) -> None:
        lock_fd = self._lock_fd if self._lock_fd is not None else self._open_lock()
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            fd, ino, size = self._live_fd()
            if self._mark != (ino, size):
                self._reload_tail(size)
            if size > 0 and self.rotate_bytes > 0 and size >= self.rotate_bytes:
                self._rotate()
                fd, ino, size = self._live_fd()
            key, seq, link = self.key, self._last_seq, self._last_link
            # A line cut short by a crash stays on its own line, so ours is never glued to it.
            parts = [b"\n"] if self._needs_newline else []
            if key is not None and self._head is not None:  # in the same write: a head never stands alone
                head = {"v": KEYED_VERSION, "id": event_id(), "ts": record["ts"], **self._head}
                seq, link = self._encode(head, seq, link, parts)
            seq, link = self._encode(record, seq, link, parts)
            data = b"".join(parts)
            self._write_all(fd, data)
            if self.fsync == "always":
                os.fsync(fd)
            self._last_seq, self._last_link = seq, link
            self._head = None
            self._needs_newline = False
            self._mark = (ino, size + len(data))
            if key is not None:
                anchor_fd = self._anchor_fd if self._anchor_fd is not None else self._open_anchor()
                os.pwrite(anchor_fd, encode_anchor(key, seq, link), 0)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def _encode(self, record: dict[str, Any], seq: int, link: str, parts: list[bytes]) -> tuple[int, str]:
        """Append `record` as the line after (`seq`, `link`) to `parts`; returns its own (seq, link)."""
        record["seq"] = seq = seq + 1
        record["prev"] = link
        body = orjson.dumps(record, default=str)
        if self.key is None:
            parts.append(body + b"\n")
            return seq, hashlib.sha256(body).hexdigest()
        line, mac = seal(body, self.key)
        record["mac"] = mac
        parts.append(line + b"\n")
        return seq, mac

    @staticmethod
    def _write_all(fd: int, line: bytes) -> None:
        written = os.write(fd, line)
        while written < len(line):  # a regular file only writes short on a full disk or a signal
            written += os.write(fd, line[written:])

    def _open_lock(self) -> int:
        ensure_private_dir(self.path.parent)
        lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._lock_fd

    def _open_anchor(self) -> int:
        self._anchor_fd = os.open(anchor_path(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._anchor_fd

    def _live_fd(self) -> tuple[int, int, int]:
        """Our descriptor of the live file, reopened when another process rotated it away; (fd, inode, size)."""
        if self._fd is not None:
            try:
                st = os.stat(self._path_text)  # noqa: PTH116 - a str path: Path.stat costs twice the syscall
                if st.st_ino == self._ino:
                    return self._fd, st.st_ino, st.st_size
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        st = os.fstat(self._fd)
        self._ino = st.st_ino
        return self._fd, st.st_ino, st.st_size

    def _reload_tail(self, size: int) -> None:
        """Another writer appended (or rotated) since our last write: chain to the file's real last line."""
        if size == 0:
            tail = last_line(rotated_path(self.path, 1))  # the first line of a new file chains to the rotated one
            self._needs_newline = False
            if tail is None and self._mark is not None:
                self._head = self._rotation_head()  # the rotated file is gone (keep = 0): go on from our last
                return
        else:
            tail, complete = tail_of(self.path)
            self._needs_newline = not complete
        if tail is None:
            self._last_link, self._last_seq = GENESIS, 0
            self._head = head_record("new", self.key) if self.key is not None else None
            return
        self._last_link = link_of(tail)
        seq = seq_of(tail)
        self._last_seq = seq if seq is not None else last_seq_in(self.path if size > 0 else rotated_path(self.path, 1))
        if self.key is None:
            self._head = None
        elif size == 0:
            self._head = self._rotation_head()  # every keyed file starts with a head
        elif parse_line(tail) is not None and not sealed_by(tail, self.key):
            self._head = head_record("key", self.key)  # unkeyed, or another key's: a new segment
        else:
            self._head = None  # our key's line, or one cut short by a crash: the segment goes on

    def _rotation_head(self) -> dict[str, Any] | None:
        """The head of a file started by rotation, naming the first seq the log still holds (after the drop)."""
        if self.key is None:
            return None
        files = [f for f in log_files(self.path) if f != self.path]
        oldest = first_seq(files[0]) if files else None
        return head_record("rotated", self.key, oldest_seq=oldest if oldest is not None else self._last_seq + 1)

    def _rotate(self) -> None:
        """`audit.jsonl` → `audit.1.jsonl`, each older one up by one, past `keep` deleted. Under the lock."""
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            rotated_path(self.path, self.keep).unlink(missing_ok=True)
            for index in range(self.keep - 1, 0, -1):
                older = rotated_path(self.path, index)
                if older.exists():
                    older.rename(rotated_path(self.path, index + 1))
            self.path.rename(rotated_path(self.path, 1))
        self._needs_newline = False
        self._head = self._rotation_head()

    def close(self) -> None:
        with self._lock:
            for fd in (self._fd, self._lock_fd, self._anchor_fd):
                if fd is not None:
                    os.close(fd)
            self._fd = self._lock_fd = self._anchor_fd = None
            self._mark = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_CHAIN_FIELDS = frozenset({"seq", "prev", "mac"})
"""Set by the log alone: an event's own values for them are dropped."""


def _scrubbed(value: Any, redact: Callable[[str], str]) -> Any:
    """`value` with `redact` applied to every string in it, keys included (a JSON tree of dicts and lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _scrubbed(v, redact) for k, v in cast(dict[Any, Any], value).items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v, redact) for v in cast(list[Any], value)]
    return value
