"""Helpers for end-to-end tests: reading the audit log, waiting on process exit without sleeping."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from mcpmux.audit import read_events


def audit_events(home: Path, event: str | None = None) -> list[dict[str, Any]]:
    events = list(read_events(home / "audit.jsonl"))
    return [e for e in events if event is None or e.get("event") == event]


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
