"""Reading the audit log: its files oldest first, every event across rotation, the tail, and a follower.

Also what the writer reads under its lock: a file's last line, its first and last `seq`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

_TAIL_BLOCK = 64 * 1024


def rotated_path(path: Path, index: int) -> Path:
    """`audit.jsonl` → `audit.<index>.jsonl` (index 0 is the live file)."""
    return path if index == 0 else path.with_name(f"{path.stem}.{index}{path.suffix}")


@dataclass(slots=True)
class ReadStats:
    """Filled in by the readers as they go: lines read as events, and lines skipped as unparseable."""

    events: int = 0
    skipped: int = 0


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The event on one line, or None when it is not a JSON object."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None  # pyright: ignore[reportUnknownVariableType]


def log_files(path: Path) -> list[Path]:
    """`path`'s rotated files and `path` itself, oldest first (`audit.3.jsonl`, …, `audit.1.jsonl`, `audit.jsonl`)."""
    pattern = re.compile(rf"{re.escape(path.stem)}\.(\d+){re.escape(path.suffix)}")
    indices: list[int] = []
    try:
        for entry in path.parent.iterdir():
            if (m := pattern.fullmatch(entry.name)) and int(m.group(1)) > 0:
                indices.append(int(m.group(1)))
    except FileNotFoundError:
        return []
    files = [rotated_path(path, i) for i in sorted(indices, reverse=True)]
    return [*files, path] if path.exists() else files


def read_lines(path: Path) -> Iterator[tuple[Path, int, bytes]]:
    """(file, 1-based line number, raw line without newline) for every non-blank line, across rotation."""
    for file in log_files(path):
        try:
            f = file.open("rb")
        except FileNotFoundError:  # rotated away while we read
            continue
        with f:
            for number, line in enumerate(f, 1):
                line = line.rstrip(b"\n")
                if line.strip():
                    yield file, number, line


def read_events(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Every event of the log at `path` (rotated files included), oldest first; a missing log has none.

    Lines that are not JSON objects (say, cut short by a crash) are skipped and counted in `stats`.
    """
    stats = stats if stats is not None else ReadStats()
    for _, _, line in read_lines(path):
        event = parse_line(line)
        if event is None:
            stats.skipped += 1
            continue
        stats.events += 1
        yield event


def _tail_of_file(file: Path, n: int) -> list[bytes]:
    found: list[bytes] = []
    try:
        f = file.open("rb")
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
                if len(found) < n and line.strip() and parse_line(line) is not None:
                    found.append(line)
    return found[::-1]


def tail_lines(path: Path, n: int) -> list[bytes]:
    """The last `n` lines of the log that are JSON objects, raw (without newline), oldest first.

    Reads backwards from the end of the live file, then of the rotated ones, so it costs O(n).
    """
    found: list[bytes] = []
    for file in reversed(log_files(path)):
        if len(found) >= n:
            break
        found = _tail_of_file(file, n - len(found)) + found
    return found


def tail_events(path: Path, n: int) -> list[dict[str, Any]]:
    """The last `n` parseable events of the log, oldest first."""
    return [event for line in tail_lines(path, n) if (event := parse_line(line)) is not None]


def follow(path: Path, *, poll_seconds: float = 0.5, stop: Callable[[], bool] = lambda: False) -> Iterator[bytes]:
    """Every whole line appended to the live file from this call on, across rotation, until `stop()` is true.

    A CLI follower: it polls the file's size every `poll_seconds` (no inotify dependency). When the
    file is rotated away it drains the old one, then continues at the start of the new one.
    """
    try:
        f = path.open("rb")
        f.seek(0, os.SEEK_END)  # now, not at the first next(): nothing written after this call is missed
    except FileNotFoundError:
        f = None
    return _follow(path, f, poll_seconds, stop)


def _follow(path: Path, f: BinaryIO | None, poll_seconds: float, stop: Callable[[], bool]) -> Iterator[bytes]:
    carry = b""
    try:
        while not stop():
            if f is not None:
                data = f.read()
                if data:
                    *lines, carry = (carry + data).split(b"\n")
                    yield from (line for line in lines if line.strip())
                    continue
            try:
                live = path.stat().st_ino
            except FileNotFoundError:
                live = None
            if live is not None and (f is None or os.fstat(f.fileno()).st_ino != live):
                newer = _next_file(path, os.fstat(f.fileno()).st_ino if f is not None else None)
                if f is not None:
                    f.close()
                f, carry = newer.open("rb"), b""  # rotated (or created): the next file from its start
                continue
            time.sleep(poll_seconds)
    finally:
        if f is not None:
            f.close()


def _next_file(path: Path, inode: int | None) -> Path:
    """The file rotated in after the one with `inode` (several rotations may have passed between polls)."""
    files = log_files(path)
    inodes = [_inode(f) for f in files]
    if inode in inodes:
        return files[min(inodes.index(inode) + 1, len(files) - 1)]
    return files[0] if inode is not None and files else path  # ours was dropped by retention: the oldest left


def _inode(file: Path) -> int | None:
    try:
        return file.stat().st_ino
    except FileNotFoundError:
        return None


# ---- what the writer reads under its lock -------------------------------------------------------------------------


def last_line(path: Path) -> bytes | None:
    """The last line of `path` (complete or cut short, without newline); None when the file is empty or absent."""
    return tail_of(path)[0]


def tail_of(path: Path) -> tuple[bytes | None, bool]:
    """(last line without newline or None, whether the file ends with a newline). Reads 4 KiB, then more."""
    try:
        f = path.open("rb", buffering=0)
    except FileNotFoundError:
        return None, True
    with f:
        pos = f.seek(0, os.SEEK_END)
        carry = b""
        block = 4096
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            carry = f.read(pos - start) + carry
            pos, block = start, block * 4
            body = carry[:-1] if carry.endswith(b"\n") else carry
            cut = body.rfind(b"\n")
            if cut >= 0 or pos == 0:
                return body[cut + 1 :], carry.endswith(b"\n")
        return None, True


def seq_of(line: bytes) -> int | None:
    """The line's `seq` (0 for an event without one), or None when the line is not an event."""
    event = parse_line(line)
    if event is None:
        return None
    seq = event.get("seq")
    return seq if isinstance(seq, int) else 0


def first_seq(path: Path) -> int | None:
    """The `seq` of a file's first line, if it is an event with one."""
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20).rstrip(b"\n")
    except FileNotFoundError:
        return None
    return seq_of(first) or None


def last_seq_in(path: Path) -> int:
    """The last `seq` in a file whose last line is not an event (cut short by a crash): a rare, whole-file scan."""
    seq = 0
    with path.open("rb") as f:
        for raw in f:
            seq = seq_of(raw.rstrip(b"\n")) or seq
    return seq
