"""One server's live state, as the supervisor keeps it and `mcpmux status` shows it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio

from mcpmux.catalog.build import Listing
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.facts import ServerFacts
from mcpmux.profile.model import ServerSpec
from mcpmux.secrets.redact import Redactor

Status = Literal["starting", "running", "restarting", "idle", "failed", "stopped"]


@dataclass(slots=True, eq=False)
class ServerState:
    spec: ServerSpec
    log_path: Path
    """Its stderr log for this serve process (state_paths().server_log); kept when a live switch keeps the server."""
    status: Status = "starting"
    downstream: Downstream | None = None
    listing: Listing = field(default_factory=Listing)
    redactor: Redactor = field(default_factory=lambda: Redactor({}))
    last_error: str | None = None
    restarts: list[float] = field(default_factory=list[float])
    started_at: float | None = None
    last_used: float = 0.0
    wanted: anyio.Event = field(default_factory=anyio.Event)
    """Set when a call needs an idle lazy server."""
    up: anyio.Event = field(default_factory=anyio.Event)
    """Set when the current start cycle has the server running."""
    restart_count: int = 0
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    """Cancels this server's keeper alone (a live profile switch dropped it)."""
    facts: ServerFacts | None = None
    """Its instructions and capabilities: from its last handshake, this run's or a previous one's."""
    era: Literal["handshake", "modern"] | None = None
    """The protocol era it spoke when last started (downstream/era.py), remembered across runs; None if unknown."""

    def may_restart(self) -> bool:
        """Whether the restart budget allows one more restart now (and count it if so)."""
        policy = self.spec.restart
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < policy.window_seconds]
        if len(self.restarts) >= policy.max_restarts:
            return False
        self.restarts.append(now)
        self.restart_count += 1
        return True

    def backoff(self) -> float:
        """Seconds to wait before the next restart: doubling within the budget's window, jittered."""
        policy = self.spec.restart
        delay = min(policy.backoff_max_seconds, policy.backoff_initial_seconds * 2 ** (len(self.restarts) - 1))
        return delay * random.uniform(0.8, 1.2)  # jitter keeps crashing siblings from restarting in lockstep
