"""Coalescing of repeated work: a burst of requests for one key costs one run in flight and one after it.

A downstream may send `list_changed` notifications in a storm; each asks for a re-list. Runs for a key
never overlap: a request while one runs marks one trailing run (which sees every change made before it
starts), and any further requests meanwhile are already covered by it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

StartSoon = Callable[[Callable[..., Coroutine[Any, Any, Any]], Any, Any], None]


class Coalescer:
    def __init__(self, start_soon: StartSoon) -> None:
        self._start_soon = start_soon
        self._again: dict[Hashable, bool] = {}
        """Keys with a run in flight → whether one more run is wanted after it."""

    def request(self, key: Hashable, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` soon, unless a run for `key` is in flight: then once more after it (however often asked)."""
        if key in self._again:
            self._again[key] = True
            return
        self._again[key] = False
        self._start_soon(self._run, key, job)

    async def _run(self, key: Hashable, job: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                await job()
                if not self._again[key]:
                    return
                self._again[key] = False
        finally:
            del self._again[key]
