"""The start-up sweep against real process trees: those of a dead mcpmux end, those of a live one stay."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from mcpmux.downstream.orphans import find_orphans, sweep_orphans
from mcpmux.downstream.process import MARK_ENV

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sweep reads /proc (Linux only)"),
]

# Plays a short-lived mcpmux: starts a tagged downstream in its own session (a shell whose
# grandchild `sleep` drops the tag, as some real servers' children do), prints the pids, exits.
# The grandchild prints its own pid once it runs untagged: printing `$!` from the parent shell
# raced with the exec that drops the tag (the sweep could see it still tagged).
DYING_PARENT = f"""
import os, subprocess, sys
env = {{**os.environ, "{MARK_ENV}": str(os.getpid())}}
leader = subprocess.Popen(
    ["sh", "-c", "env -u {MARK_ENV} sh -c 'echo $$; exec sleep 300' & exec sleep 301"],
    env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    start_new_session=True, text=True,
)
assert leader.stdout is not None
print(leader.pid, leader.stdout.readline().strip(), flush=True)
"""


async def wait_for_exit(pid: int) -> None:
    """Bounded wait on a pidfd, which turns readable when the process ends (it need not be our child)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with anyio.fail_after(10):
            await anyio.wait_readable(fd)
    finally:
        os.close(fd)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@pytest.fixture
def orphan_tree() -> Iterator[tuple[int, int]]:
    """(leader, untagged grandchild) of a tree whose tagging parent has exited."""
    done = subprocess.run([sys.executable, "-c", DYING_PARENT], capture_output=True, text=True, check=True, timeout=30)
    leader, grandchild = (int(pid) for pid in done.stdout.split())
    yield leader, grandchild
    kill_group(leader)


@pytest.fixture
def live_tree() -> Iterator[subprocess.Popen[bytes]]:
    """A downstream tagged by this (live) test process, as an in-process gateway would start it."""
    env = {**os.environ, MARK_ENV: str(os.getpid())}
    proc = subprocess.Popen(["sleep", "300"], env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    yield proc
    kill_group(proc.pid)
    proc.wait(timeout=10)


async def test_a_tree_tagged_by_a_dead_mcpmux_is_ended_with_its_untagged_grandchild(orphan_tree: tuple[int, int]):
    leader, grandchild = orphan_tree
    assert alive(leader) and alive(grandchild)
    found = {orphan.pid: orphan for orphan in find_orphans()}
    assert leader in found
    assert grandchild not in found  # untagged: it goes with its group, not on its own account
    assert found[leader].pgid == leader

    swept = await sweep_orphans()

    assert leader in {orphan.pid for orphan in swept}
    await wait_for_exit(leader)
    await wait_for_exit(grandchild)
    assert not alive(leader) and not alive(grandchild)


async def test_a_tree_tagged_by_a_live_mcpmux_is_left_alone(live_tree: subprocess.Popen[bytes]):
    swept = await sweep_orphans()

    assert live_tree.pid not in {orphan.pid for orphan in swept}
    assert live_tree.poll() is None
    assert alive(live_tree.pid)


def test_this_process_is_never_its_own_orphan():
    assert os.getpid() not in {orphan.pid for orphan in find_orphans()}
