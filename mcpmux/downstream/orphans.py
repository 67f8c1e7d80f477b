"""The start-up sweep: end downstreams left behind by an mcpmux that died.

Every downstream's environment carries `MCPMUX_PARENT_PID=<pid of its mcpmux>` (see
`mcpmux.process.MARK_ENV`), and its children inherit it. A tagged process is an orphan when
that mcpmux is gone: no such pid, or the pid now belongs to a process that started after the
tagged one (pids are reused). A live mcpmux's processes, including this process's own, are
never touched, whatever that mcpmux is doing.

An orphan that leads its own process group (every downstream does: it was started in its own
session) is ended with its whole group, so untagged grandchildren go too; any other orphan is
ended alone. SIGTERM first, then SIGKILL for whatever has not exited within the grace period.

What holds on each OS:
- Linux: the sweep reads `/proc/<pid>/environ` and `/proc/<pid>/stat` (only the user's own
  processes are readable, so only those are candidates) and waits on pidfds. Together with
  `PR_SET_PDEATHSIG` on direct children, a SIGKILLed mcpmux leaves nothing after the next start.
- macOS and the BSDs: there is no `/proc`, and another process's environment is not readable
  without privileges, so `find_orphans` returns nothing; downstreams are still in their own
  process groups and ended as groups by a live mcpmux, but those of a SIGKILLed one survive it.
- Windows: not supported by mcpmux's process handling.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio

from mcpmux.downstream.process import MARK_ENV

logger = logging.getLogger("mcpmux")

TERM_GRACE_SECONDS = 2.0
KILL_WAIT_SECONDS = 2.0
_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Orphan:
    """A process tagged by a dead mcpmux."""

    pid: int
    pgid: int
    parent_pid: int
    """The dead mcpmux that started it (the value of its `MCPMUX_PARENT_PID`)."""
    command: str


@dataclass(frozen=True, slots=True)
class _Proc:
    pid: int
    pgid: int
    start_ticks: int
    command: str


def _stat(pid: int) -> _Proc | None:
    """pgid and start time from `/proc/<pid>/stat`, or None if gone or a zombie."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command (field 2) may hold spaces and parentheses: split after its last ')'.
    head, _, rest = raw.rpartition(")")
    fields = rest.split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return _Proc(pid=pid, pgid=int(fields[2]), start_ticks=int(fields[19]), command=head.partition("(")[2])


def _tag(pid: int) -> int | None:
    """The mcpmux pid a process's environment names, or None (untagged, unreadable, gone)."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = MARK_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            value = entry[len(prefix) :]
            return int(value) if value.isdigit() else None
    return None


def _pids() -> Iterable[int]:
    try:
        names = [entry.name for entry in _PROC.iterdir()]
    except OSError:
        return []
    return [int(name) for name in names if name.isdigit()]


def _parent_alive(parent_pid: int, child: _Proc) -> bool:
    """Whether the tagging mcpmux still runs: its pid exists and was not reused after the child started."""
    if parent_pid == os.getpid():
        return True
    parent = _stat(parent_pid)
    return parent is not None and parent.start_ticks <= child.start_ticks


def find_orphans() -> list[Orphan]:
    """Every readable process tagged by an mcpmux that is no longer running (empty where /proc is absent)."""
    if not sys.platform.startswith("linux"):
        return []
    found: list[Orphan] = []
    own = os.getpid()
    for pid in _pids():
        if pid == own:
            continue
        parent_pid = _tag(pid)
        if parent_pid is None:
            continue
        proc = _stat(pid)
        if proc is None or _parent_alive(parent_pid, proc):
            continue
        found.append(Orphan(pid=pid, pgid=proc.pgid, parent_pid=parent_pid, command=proc.command))
    return found


def _signal(orphans: list[Orphan], sig: signal.Signals) -> None:
    orphan_pids = {o.pid for o in orphans}
    own_group = os.getpgrp()
    for orphan in orphans:
        # A group is ended whole only when its leader is itself an orphan: never a live mcpmux's group.
        whole_group = orphan.pgid in orphan_pids and orphan.pgid != own_group
        try:
            if whole_group:
                os.killpg(orphan.pgid, sig)
            else:
                os.kill(orphan.pid, sig)
        except (ProcessLookupError, PermissionError):
            continue


async def _wait_all(pids: Iterable[int], seconds: float) -> bool:
    """Wait (bounded) until every pid has exited, on pidfds; True if all did."""
    with anyio.move_on_after(seconds):
        for pid in pids:
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # already gone
                continue
            try:
                await anyio.wait_readable(fd)
            finally:
                os.close(fd)
        return True
    return False


async def sweep_orphans(*, term_grace_seconds: float = TERM_GRACE_SECONDS) -> list[Orphan]:
    """Find and end the orphans of dead mcpmux processes; returns what was found (each one is logged)."""
    orphans = find_orphans()
    if not orphans:
        return []
    for orphan in orphans:
        logger.info(
            "ending orphan pid %d (%s) left by mcpmux pid %d, which is gone",
            orphan.pid,
            orphan.command,
            orphan.parent_pid,
        )
    _signal(orphans, signal.SIGTERM)
    await _wait_all([o.pid for o in orphans], term_grace_seconds)
    # Also when every tagged process exited: an untagged grandchild may ignore SIGTERM in their group.
    _signal(orphans, signal.SIGKILL)
    await _wait_all([o.pid for o in orphans], KILL_WAIT_SECONDS)
    return orphans
