"""Log rotation of a running server: copy-truncate under a real child writing through an O_APPEND stderr."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from mcpmux.downstream import logs as log_rotation
from mcpmux.downstream.logs import rotate_before_start, rotate_running, rotated_path, watch_log

pytestmark = pytest.mark.anyio

# Writes N numbered lines to stderr (one write each) per number read on stdin, then says "ok" on stdout.
ON_COMMAND = """
import os, sys
n = 0
for command in sys.stdin:
    for _ in range(int(command)):
        os.write(2, b"line %06d\\n" % n)
        n += 1
    sys.stdout.write("ok\\n")
    sys.stdout.flush()
"""
# Writes numbered lines to stderr without pause until stdin closes.
NONSTOP = """
import os, sys, threading
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
n = 0
while not done.is_set():
    os.write(2, b"line %d\\n" % n)
    n += 1
"""
LINE = len(b"line 000000\n")


def lines(first: int, end: int) -> bytes:
    return b"".join(b"line %06d\n" % n for n in range(first, end))


def rotated_note(path: Path) -> bytes:
    return f"--- mcpmux: log rotated; earlier output in {rotated_path(path).name}\n".encode()


@asynccontextmanager
async def writer(script: str, log_path: Path) -> AsyncGenerator[anyio.abc.Process]:
    """A child whose stderr is `log_path` opened O_APPEND, as launch.py starts a server."""
    with log_path.open("ab") as log:
        process = await anyio.open_process(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    async with process:
        yield process
        assert process.stdin is not None
        await process.stdin.aclose()
        with anyio.fail_after(10):
            assert await process.wait() == 0


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while True:  # the file is all there is to watch: poll it, bounded
            if condition():
                return
            await anyio.sleep(0.005)


async def test_a_running_writer_keeps_appending_at_the_start_of_the_truncated_log_and_no_byte_is_lost(
    tmp_path: Path,
) -> None:
    log_path, cap = tmp_path / "alpha.log", 50 * LINE
    async with writer(ON_COMMAND, log_path) as process:
        assert process.stdin is not None and process.stdout is not None
        replies = BufferedByteReceiveStream(process.stdout)

        async def write(count: int) -> None:
            await process.stdin.send(b"%d\n" % count)  # pyright: ignore[reportOptionalMemberAccess]
            assert await replies.receive_until(b"\n", 10) == b"ok"

        await write(80)
        assert log_path.stat().st_size == 80 * LINE
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_log, log_path, 0.005, cap)
            # The note is the rotation's last step; the child is idle meanwhile, so the outcome is exact.
            await until(lambda: log_path.read_bytes() == rotated_note(log_path))
            await write(30)
            tg.cancel_scope.cancel()

    assert rotated_path(log_path).read_bytes() == lines(0, 80)
    # Appends went to the new end (no hole of NULs where the old content was) and the file shrank.
    assert log_path.read_bytes() == rotated_note(log_path) + lines(80, 110)


async def test_a_log_rotated_again_and_again_under_a_nonstop_writer_stays_in_order_and_small(tmp_path: Path) -> None:
    log_path, cap = tmp_path / "alpha.log", 4096
    seen: set[int] = set()

    def rotated_three_times() -> bool:
        with suppress(FileNotFoundError):
            seen.add(rotated_path(log_path).stat().st_ino)
        return len(seen) >= 3

    async with writer(NONSTOP, log_path):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch_log, log_path, 0.005, cap)
            await until(rotated_three_times)
            tg.cancel_scope.cancel()
        await until(lambda: len(numbered(log_path.read_bytes())) >= 2)  # the writer goes on after the last rotation

    current, kept = log_path.read_bytes(), rotated_path(log_path).read_bytes()
    assert b"\0" not in current + kept
    # Both files hold a run of consecutive lines; only the truncate's instant may separate the two runs.
    numbers, copied = numbered(current), numbered(kept)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert copied == list(range(copied[0], copied[0] + len(copied)))
    assert copied[-1] < numbers[0]
    assert len(kept) <= 3 * cap + 200  # two caps of tail, a cap of what arrived during the copy, the note


def numbered(log: bytes) -> list[int]:
    """The numbers of the whole lines a writer wrote (a copy may start or end inside one)."""
    return [int(m[1]) for line in log.split(b"\n")[:-1] if (m := re.fullmatch(rb"line (\d+)", line))]


async def test_only_the_tail_of_a_log_far_over_the_cap_is_copied_and_the_rest_is_counted(tmp_path: Path) -> None:
    log_path, cap = tmp_path / "alpha.log", 10 * LINE
    log_path.write_bytes(lines(0, 100))
    assert await anyio.to_thread.run_sync(rotate_running, log_path, cap)
    note = f"--- mcpmux: {80 * LINE} earlier bytes not kept (log over {cap} bytes)\n".encode()
    assert rotated_path(log_path).read_bytes() == note + lines(80, 100)
    assert log_path.read_bytes() == rotated_note(log_path)


def test_a_log_under_the_cap_or_missing_is_left_alone(tmp_path: Path) -> None:
    log_path = tmp_path / "alpha.log"
    assert rotate_running(log_path, 100) is False
    log_path.write_bytes(b"x" * 100)
    assert rotate_running(log_path, 100) is False
    assert log_path.read_bytes() == b"x" * 100
    assert not rotated_path(log_path).exists()


def test_a_restart_and_a_running_rotation_keep_the_same_single_previous_log(tmp_path: Path) -> None:
    log_path = tmp_path / "alpha.log"
    log_path.write_bytes(b"a" * 101)
    rotate_before_start(log_path, 100)
    assert rotated_path(log_path) == tmp_path / "alpha.log.1"
    assert (tmp_path / "alpha.log.1").read_bytes() == b"a" * 101
    log_path.write_bytes(b"b" * 101)
    assert rotate_running(log_path, 100) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.log", "alpha.log.1"]
    assert (tmp_path / "alpha.log.1").read_bytes() == b"b" * 101


async def test_a_log_that_cannot_be_rotated_stays_whole_and_is_warned_about_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log_path = tmp_path / "alpha.log"
    log_path.write_bytes(lines(0, 100))
    rotated_path(log_path).mkdir()  # the rotated name is taken by a directory: the rename fails
    attempts: list[bool] = []

    def counted(path: Path, max_bytes: int) -> bool:
        attempts.append(True)
        return rotate_running(path, max_bytes)

    monkeypatch.setattr(log_rotation, "rotate_running", counted)
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch_log, log_path, 0.001, 10 * LINE)
        await until(lambda: len(attempts) >= 3)
        tg.cancel_scope.cancel()

    assert log_path.read_bytes() == lines(0, 100)
    assert not (tmp_path / "alpha.log.1.partial").exists()  # the failed copy was cleaned up
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].startswith(f"could not rotate the log {log_path} (it keeps growing): ")
