"""Signals to a real `mcpmux serve` from a host that loses patience: however many arrive, and whenever, serve
ends its downstreams and exits cleanly (code 0, no traceback, nothing left running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.conftest import FIXTURES, REPO, fixture_server_toml, processes_marked_by
from tests.e2e_helpers import audit_events, serve_pid, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
FAULTY = FIXTURES / "faulty_server.py"
SIGNAL_EVERY_SECONDS = 0.01


def stubborn_server() -> str:
    """A server that ignores stdin EOF and SIGTERM, and leaves a grandchild: only its group's SIGKILL ends it."""
    flags = ["--name", "stubborn", "--ignore-sigterm", "--linger", "--spawn-grandchild"]
    args = ", ".join(f'"{a}"' for a in [str(FAULTY), *flags])
    return f'[servers.stubborn]\ncommand = "{sys.executable}"\nargs = [{args}]\n'


def start_serve(profile: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """A plain Popen, reaped by no one but itself: its exit status is the one the kernel reports."""
    with stderr.open("wb") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_signals_sent_again_and_again_during_shutdown_end_in_a_clean_exit_with_nothing_left_running(
    write_profile: WriteProfile, mcpmux_home: Path, tmp_path: Path, signum: signal.Signals
):
    profile = write_profile(fixture_server_toml("alpha") + stubborn_server())
    hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "impatient", "version": "1"}}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    proc = start_serve(profile, tmp_path / "serve.err")
    assert proc.stdin is not None and proc.stdout is not None
    exited = os.pidfd_open(proc.pid)
    try:
        proc.stdin.write(b"".join(orjson.dumps(m) + b"\n" for m in requests))
        proc.stdin.flush()
        listed: dict[str, Any] = {}
        with anyio.fail_after(30):
            while listed.get("id") != 2:
                listed = orjson.loads(await anyio.to_thread.run_sync(proc.stdout.readline))
        pid = serve_pid(mcpmux_home)
        tree = processes_marked_by(pid)
        sent = 0
        with anyio.fail_after(20):
            while proc.poll() is None:  # the first one starts the shutdown; every later one lands in it
                proc.send_signal(signum)
                sent += 1
                with anyio.move_on_after(SIGNAL_EVERY_SECONDS):
                    await anyio.wait_readable(exited)
        code = proc.returncode
    finally:
        os.close(exited)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    for child in tree:
        await wait_for_exit(child, seconds=5)
    stderr = (tmp_path / "serve.err").read_text()
    names = {tool["name"] for tool in listed["result"]["tools"]}
    assert {"alpha__echo", "stubborn__echo"} <= names
    assert sent > 1
    assert code == 0, f"serve exited with {code} after {sent} signals; stderr:\n{stderr}"
    assert "Traceback" not in stderr
    assert len(tree) == 3  # alpha, stubborn and stubborn's grandchild
    assert processes_marked_by(pid) == []
    stops = audit_events(mcpmux_home, "serve_stop")
    assert stops and stops[-1]["reason"] == f"received {signum.name}"
