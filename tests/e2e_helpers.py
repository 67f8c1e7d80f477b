"""Helpers for end-to-end tests: npm servers, reading the audit log, waiting on process exit without sleeping."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
import orjson
import pytest

from mcpmux.audit.log import read_events
from mcpmux.wire import LineBuffer

REPO = Path(__file__).resolve().parents[1]


def npm_bin(package: str, command: str, env_var: str) -> str:
    """An npm package's command: $env_var, the repo's .cache/npm (as .ci/run installs it), or PATH.

    Missing, the test is skipped, or fails under MCPMUX_REQUIRE_ALL=1 (CI), naming the install command.
    """
    candidates = [
        os.environ.get(env_var, ""),
        str(REPO / ".cache/npm/node_modules/.bin" / command),
        shutil.which(command) or "",
    ]
    found = next((c for c in candidates if c and Path(c).exists()), None)
    if found is None:
        install = f"npm install --prefix .cache/npm {package}"
        if os.environ.get("MCPMUX_REQUIRE_ALL") == "1":
            pytest.fail(f"{package} is missing: {install}")
        pytest.skip(f"{package} is not installed ({install}; .ci/run installs it)")
    return found


def audit_events(home: Path, event: str | None = None) -> list[dict[str, Any]]:
    events = list(read_events(home / "state" / "audit.jsonl"))
    return [e for e in events if event is None or e.get("event") == event]


def gateway_pids(home: Path) -> list[int]:
    """Every shared gateway started so far, oldest first (each writes a `serve_start` marked shared)."""
    return [int(e["pid"]) for e in audit_events(home, "serve_start") if e.get("shared")]


def serve_pid(home: Path) -> int:
    starts = audit_events(home, "serve_start")
    assert starts, "serve wrote no serve_start event"
    return int(starts[-1]["pid"])


async def wait_for_exit(pid: int, seconds: float = 10.0) -> None:
    """Wait until `pid` has exited, using a pidfd (readable once the process ends)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with anyio.fail_after(seconds):
            await anyio.wait_readable(fd)
    finally:
        os.close(fd)


async def exchange(profile: Path, messages: list[dict[str, Any]], *, answers: int) -> dict[Any, dict[str, Any]]:
    """Send raw JSON-RPC lines to `mcpmux serve`, return the first `answers` responses by id, then close stdin."""
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=Path(__file__).parent.parent
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        await proc.stdin.send(b"".join(orjson.dumps(m) + b"\n" for m in messages))
        replies: dict[Any, dict[str, Any]] = {}
        buffer = b""
        with anyio.fail_after(30):
            while len(replies) < answers:
                buffer += await proc.stdout.receive()
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    message = orjson.loads(line)
                    if "id" in message and "method" not in message:
                        replies[message["id"]] = message
            await proc.stdin.aclose()
            await proc.wait()
    return replies


class ListChanged:
    """A host message handler that signals each `tools/list_changed`; `wait` re-arms for the next one."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    async def __call__(self, message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.event.set()

    async def wait(self, seconds: float = 20.0) -> None:
        with anyio.fail_after(seconds):
            await self.event.wait()
        self.event = anyio.Event()


class RawHost:
    """A host that speaks raw JSON-RPC lines to `mcpmux serve`: for what SDK clients never send."""

    def __init__(self, proc: anyio.abc.Process) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin, self._stdout = proc.stdin, proc.stdout
        self._lines = LineBuffer()  # linear in the bytes read, however long a line (results run to megabytes)
        self._ready: list[bytes] = []
        self.seen: list[dict[str, Any]] = []
        """Every message received so far, in order."""

    async def send(self, message: dict[str, Any]) -> None:
        await self._stdin.send(orjson.dumps(message) + b"\n")

    async def receive(self, match: Callable[[dict[str, Any]], bool], seconds: float = 30.0) -> dict[str, Any]:
        """The next message for which `match(message)` is true (messages before it are kept in `seen`)."""
        with anyio.fail_after(seconds):
            while True:
                while not self._ready:
                    self._ready = self._lines.feed(await self._stdout.receive(1 << 20))
                message = orjson.loads(self._ready.pop(0))
                self.seen.append(message)
                if match(message):
                    return message

    async def reply_to(self, request_id: Any, seconds: float = 30.0) -> dict[str, Any]:
        return await self.receive(lambda m: m.get("id") == request_id and "method" not in m, seconds)

    async def close(self) -> None:
        await self._stdin.aclose()

    async def until_eof(self, seconds: float = 30.0) -> list[dict[str, Any]]:
        """Every message from now until mcpmux closes its stdout (it exits)."""
        messages: list[dict[str, Any]] = []
        with anyio.fail_after(seconds):
            while True:
                messages += [orjson.loads(line) for line in self._ready]
                try:
                    self._ready = self._lines.feed(await self._stdout.receive(1 << 20))
                except anyio.EndOfStream:
                    break
        self.seen += messages
        return messages


def server_log(mcpmux_home: Path, server: str) -> Path:
    """The one stderr log of `server` the test's serve wrote: `logs/<profile>-<hash>/<server>.<pid>.log`."""
    (found,) = (mcpmux_home / "state" / "logs").glob(f"*/{server}.*.log")
    return found


def every_log(mcpmux_home: Path) -> list[Path]:
    """Every downstream log (and rotated log) under the state folder."""
    return [p for p in (mcpmux_home / "state" / "logs").rglob("*.log*") if p.is_file()]
