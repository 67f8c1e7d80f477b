"""The host's wire through `mcpmux serve`: back-pressure when the host stops reading, and the answers still owed
when its input ends. Both need the process boundary: real pipes, their buffers, and mcpmux's exit."""

from __future__ import annotations

import fcntl
import os
import sys
import termios
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.conftest import FIXTURES, REPO
from tests.e2e_helpers import RawHost, audit_events

pytestmark = pytest.mark.anyio

FAULTY = FIXTURES / "faulty_server.py"
RESULT_BYTES = 4 * 1024 * 1024
CALLS = 40
"""160 MB of results in all: what mcpmux would hold if it kept reading while the host does not."""
GROWTH_BOUND_MB = 64
PAUSED = b"pausing the servers' output"


def big_server(size: int) -> str:
    args = ", ".join(f'"{a}"' for a in [str(FAULTY), "--name", "big", "--huge-output", str(size)])
    return f'[servers.big]\ncommand = "{sys.executable}"\nargs = [{args}]\n'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def call(request_id: int) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "big__huge", "arguments": {}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def open_host(proc: anyio.abc.Process) -> RawHost:
    """A raw host past the handshake, with the downstream up (its tools listed)."""
    host = RawHost(proc)
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    await host.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    await host.reply_to(1)
    await host.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    await host.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    await host.reply_to(2)
    return host


async def wait_until_blocked(pid: int, seconds: float = 30.0) -> None:
    """Until the process's stdout pipe is full: nothing reads it, so it is blocked writing.

    Polled (a pipe's fill level signals nothing); FIONREAD on a second read end of the same pipe, never read.
    """
    fd = os.open(f"/proc/{pid}/fd/1", os.O_RDONLY | os.O_NONBLOCK)
    try:
        capacity = fcntl.fcntl(fd, 1032)  # F_GETPIPE_SZ
        unread = bytearray(4)
        with anyio.fail_after(seconds):
            while True:
                fcntl.ioctl(fd, termios.FIONREAD, unread)
                if int.from_bytes(unread, sys.byteorder) >= capacity:
                    return
                await anyio.sleep(0.05)
    finally:
        os.close(fd)


async def test_a_host_that_stops_reading_pauses_the_servers_output_memory_stays_bounded_and_then_all_arrives(
    write_profile: Any, mcpmux_home: Path
) -> None:
    profile = write_profile(big_server(RESULT_BYTES))
    said = bytearray()
    paused = anyio.Event()
    grown, answers = float("inf"), dict[int, int]()
    command = [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)]
    async with await anyio.open_process(command, cwd=REPO) as proc, anyio.create_task_group() as tg:
        assert proc.stderr is not None
        stderr = proc.stderr

        async def watch_stderr() -> None:
            async for chunk in stderr:
                said.extend(chunk)
                if PAUSED in said:
                    paused.set()

        tg.start_soon(watch_stderr)
        host = await open_host(proc)
        [started] = audit_events(mcpmux_home, "downstream_start")
        before = rss_mb(proc.pid)
        for i in range(CALLS):
            await host.send(call(100 + i))  # and read nothing for now
        try:
            with anyio.fail_after(60):
                await paused.wait()
        except TimeoutError:
            pytest.fail(f"mcpmux never paused its servers' output; it grew by {rss_mb(proc.pid) - before:.0f} MB")
        await wait_until_blocked(started["pid"])  # the server now waits on mcpmux, which waits on the host
        grown = rss_mb(proc.pid) - before
        print(f"mcpmux RSS {before:.0f} MB before the calls, {before + grown:.0f} MB with its server blocked")

        for _ in range(CALLS):
            message = await host.receive(lambda m: isinstance(m.get("id"), int) and m["id"] >= 100)
            assert message["id"] not in answers
            answers[message["id"]] = len(message["result"]["content"][0]["text"])
        await host.close()
        tg.cancel_scope.cancel()
    assert grown < GROWTH_BOUND_MB, f"mcpmux grew by {grown:.0f} MB while its host did not read"
    assert answers == {100 + i: RESULT_BYTES for i in range(CALLS)}
    assert len(audit_events(mcpmux_home, "downstream_start")) == 1  # no health check mistook the wait for a hang


async def test_requests_sent_just_before_stdin_closes_are_answered_and_written_before_mcpmux_exits(
    write_profile: Any, mcpmux_home: Path
) -> None:
    profile = write_profile(big_server(8 * 1024 * 1024))
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        host = await open_host(proc)
        await host.send(call(10))
        await host.send({"jsonrpc": "2.0", "id": 11, "method": "tools/list"})
        await host.close()
        rest = await host.until_eof()
        await proc.wait()
    answers = {m["id"]: m for m in rest if "id" in m and "method" not in m}
    assert sorted(answers) == [10, 11]
    assert len(answers[10]["result"]["content"][0]["text"]) == 8 * 1024 * 1024
    assert "big__huge" in [t["name"] for t in answers[11]["result"]["tools"]]
