"""Per-server stderr logs, bounded: rotated at each (re)start and, while a server runs, by copy-truncate.

Each serve process writes its own `<server>.<pid>.log` in its profile's folder (paths.py), so
concurrent serves never share a file; at each start the logs of all but the newest
`KEEP_ENDED_SERVES` serves that have ended are removed, so their number stays bounded too.

A local downstream's stderr *is* its log file (opened O_APPEND, see launch.py), and a
running server cannot be told to reopen it. So `rotate_running` copies the file's tail
to the rotated name and truncates the original in place: the server's appends then
continue at the new end, with no hole. As with logrotate's `copytruncate`, a write that
lands between the copy's last read and the truncate is lost; that window is one system
call. Either way one previous log is kept, `NAME.log.1`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import BinaryIO, NoReturn

import anyio
import anyio.to_thread

from mcpmux.paths import ensure_private_dir, open_private

logger = logging.getLogger("mcpmux")

LOG_ROTATE_BYTES = 10 * 1024 * 1024
LOG_CHECK_SECONDS = 5.0
"""How often a running server's log size is checked (one stat in a worker thread)."""
_CHUNK = 1024 * 1024


KEEP_ENDED_SERVES = 3
_LOG_NAME = re.compile(r"(?P<server>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)\.log")


def prepare_log(path: Path) -> None:
    """Before a server (re)starts: its folder made owner-only, ended serves' old logs pruned, this one rotated."""
    ensure_private_dir(path.parent)
    prune_ended(path)
    rotate_before_start(path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: running (a reused pid keeps one more log a while)
    return True


def prune_ended(path: Path, keep: int = KEEP_ENDED_SERVES) -> None:
    """Remove this server's logs of serves that have ended, all but the newest `keep` (best effort)."""
    own = _LOG_NAME.fullmatch(path.name)
    if own is None:
        return
    ended: list[tuple[float, Path]] = []
    with contextlib.suppress(OSError):
        for sibling in path.parent.glob(f"{own['server']}.*.log"):
            match = _LOG_NAME.fullmatch(sibling.name)
            if match is None or match["server"] != own["server"] or sibling == path or _running(int(match["pid"])):
                continue
            with contextlib.suppress(FileNotFoundError):
                ended.append((sibling.stat().st_mtime, sibling))
        ended.sort(reverse=True)
        for _, old in ended[keep:]:
            old.unlink(missing_ok=True)
            rotated_path(old).unlink(missing_ok=True)


def rotated_path(path: Path) -> Path:
    """The one previous log kept: `NAME.log.1`."""
    return path.with_suffix(".log.1")


def rotate_before_start(path: Path, max_bytes: int = LOG_ROTATE_BYTES) -> None:
    """Keep one previous log: enough to read why the last run died, bounded in size."""
    try:
        if path.stat().st_size > max_bytes:
            path.replace(rotated_path(path))
    except FileNotFoundError:
        pass


def rotate_running(path: Path, max_bytes: int = LOG_ROTATE_BYTES) -> bool:
    """If `path` is over `max_bytes`, copy it to the rotated log and empty it in place; returns whether it rotated.

    Blocking (up to three times `max_bytes` of copying): run it in a worker thread.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    target = rotated_path(path)
    partial = target.with_name(f"{target.name}.partial")
    # Unbuffered: each read asks the file, so the last one really is at its current end.
    with path.open("r+b", buffering=0) as log, open_private(partial, "wb") as out:
        try:
            # Checked every few seconds, the file is barely over the cap and is kept whole; of a burst far
            # beyond it only the last two caps' worth, so one rotation never copies more than that.
            start = max(0, os.fstat(log.fileno()).st_size - 2 * max_bytes)
            if start:
                out.write(f"--- mcpmux: {start} earlier bytes not kept (log over {max_bytes} bytes)\n".encode())
            _copy(log, out, start, 2 * max_bytes)
            # Renamed before the truncate: if the rename fails, the original is still whole.
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        # What the server wrote during the copy, then the truncate right after the read that found the end.
        _copy(log, out, None, max_bytes)
        os.ftruncate(log.fileno(), 0)
    with open_private(path) as note:  # O_APPEND like the server's fd: lands after whatever it wrote since
        note.write(f"--- mcpmux: log rotated; earlier output in {target.name}\n".encode())
    return True


def _copy(src: BinaryIO, dst: BinaryIO, start: int | None, limit: int) -> None:
    """Copy from `start` (None: where `src` is) to its end, at most `limit` bytes (a server outpacing the copy)."""
    if start is not None:
        src.seek(start)
    while limit > 0 and (chunk := src.read(min(_CHUNK, limit))):
        dst.write(chunk)
        limit -= len(chunk)


async def watch_log(
    path: Path, every_seconds: float = LOG_CHECK_SECONDS, max_bytes: int = LOG_ROTATE_BYTES
) -> NoReturn:
    """Rotate a running server's log whenever it grows past `max_bytes`; run it beside the server until cancelled."""
    failed: str | None = None
    while True:
        await anyio.sleep(every_seconds)
        try:
            # A thread keeps the copy off the event loop; a cancel waits for it, so two rotations never overlap.
            await anyio.to_thread.run_sync(rotate_running, path, max_bytes)
        except OSError as exc:
            if str(exc) != failed:  # once per distinct failure, not every few seconds
                logger.warning("could not rotate the log %s (it keeps growing): %s", path, exc)
            failed = str(exc)
        else:
            failed = None
