"""Start a shared gateway detached from the `serve` that needs it: its own session, no terminal, no parent to reap.

A double fork: the gateway is nobody's child but init's (or the session's subreaper), so the serve
that started it may exit first, and a gateway that exits is never left a zombie of a serve. Its
stdin and stdout are /dev/null, its stderr its own log. It reports on `ready`: one line, "ready"
once it listens, else why it could not start.
"""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import ensure_private_dir

READY_SECONDS = 20.0
"""How long a serve waits for the gateway it started to listen (a profile may take a while to load)."""


def start_gateway(argv: list[str], log: Path) -> None:
    """Run `python -m mcpmux <argv> --ready-fd N` detached; return once it listens, else raise with why."""
    ensure_private_dir(log.parent)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the intermediate: a new session, then the gateway, then gone
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() == 0:
                _exec_gateway(argv, log, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    try:
        _wait_ready(read_end, log)
    finally:
        os.close(read_end)


def _exec_gateway(argv: list[str], log: Path, ready: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(err, 2)
    os.set_inheritable(ready, True)
    os.execv(sys.executable, [sys.executable, "-m", "mcpmux", *argv, "--ready-fd", str(ready)])


def _wait_ready(fd: int, log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise MCPMuxError(f"the shared gateway did not start within {READY_SECONDS:g} s (log: {log})")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise MCPMuxError(f"the shared gateway exited while starting (log: {log})")
        data += chunk
    line = data.split(b"\n", 1)[0].decode(errors="replace")
    if line != "ready":
        raise MCPMuxError(f"the shared gateway could not start: {line} (log: {log})")
