"""Back-pressure from the host to the downstreams: their output is left unread while the host does not read.

The front's writer (front/stdio.py) pauses the gate when more than its high-water mark of bytes waits for the
host, and resumes it below the low-water mark. A paused downstream blocks on its own stdout, so mcpmux's
memory stays bounded however much the downstreams produce; nothing is dropped. A health check that overlapped
a pause proves nothing about the server (its answer may be waiting unread), so the gate counts its pauses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcpmux.downstream.connection import Downstream


class ReadGate:
    def __init__(self, running: Callable[[], Iterable[Downstream]]) -> None:
        self._running = running
        self.paused = False
        self.pauses = 0
        """How many times reading was paused so far."""

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1
        for ds in self._running():
            ds.pause_reading()

    def resume_reading(self) -> None:
        self.paused = False
        for ds in self._running():
            ds.resume_reading()

    def overlapped(self, pauses: int) -> bool:
        """Whether reading is paused now, or was at some time since the gate counted `pauses`."""
        return self.paused or self.pauses != pauses
