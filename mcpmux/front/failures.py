"""What the host is told of a server that failed for good: a log message now, or right after its handshake answer.

A first start's `initialize` answer waits for the servers, so a command that is not found fails
before the host may hear anything (channel.py): the message is held until the answer is out.
"""

from __future__ import annotations

from mcpmux.front.channel import HostChannel
from mcpmux.wire import JSON


class FailureNotes:
    def __init__(self) -> None:
        self._held: list[tuple[str, JSON]] = []

    def add(self, name: str, reason: str) -> None:
        text = f"server '{name}' failed and will not be restarted: {reason} (see `mcpmux logs {name}`)"
        self._held.append((name, {"level": "error", "logger": "mcpmux", "data": text}))

    def tell(self, channel: HostChannel) -> None:
        """Send what is held (call once the host may hear notifications)."""
        held, self._held = self._held, []
        for name, params in held:
            channel.log_message(name, params)
