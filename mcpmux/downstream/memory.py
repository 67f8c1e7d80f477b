"""An in-process downstream: the transport seam's third implementation, beside stdio and HTTP.

`MemoryDownstream` carries the same JSON-RPC lines as a spawned server, to a
`peer` in the same process: every line mcpmux writes is handed to the peer on
the next turn of the event loop (as a pipe would deliver it), and the peer
answers with `deliver`. `end` is the peer going away (a crash: pending requests
fail at once). The relay and the front can then be tested without a process,
the way httpx ships a MockTransport: a real implementation of the public seam,
not a patch of its internals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from mcpmux.downstream.connection import Downstream, Hooks
from mcpmux.profile.model import ServerSpec
from mcpmux.secrets.store import SecretStore

Peer = Callable[["MemoryDownstream", bytes], None]
"""Receives each line mcpmux writes to the downstream."""


@dataclass(slots=True, eq=False)
class MemoryDownstream(Downstream):
    peer: Peer | None = None
    _open: bool = True

    @property
    def alive(self) -> bool:
        return self._open and not self.exited.is_set() and self._closing_reason is None

    def write(self, line: bytes) -> None:
        if self._open and self.peer is not None:
            asyncio.get_running_loop().call_soon(self.peer, self, line)

    def deliver(self, line: bytes) -> None:
        """A line from the peer, as if read from the server's stdout."""
        if self._open:
            self._on_line(line)

    def end(self, exit_code: int = 0) -> None:
        """The peer is gone: pending requests fail now, `exited` is set."""
        if not self._open:
            return
        self._open = False
        self.exit_code = exit_code
        self._fail_pending(f"server '{self.name}' exited with code {exit_code}")
        self.exited.set()

    def kill(self) -> None:
        self.end(-9)

    async def close(self) -> None:
        self.end(0)


def memory_connect(
    peers: dict[str, Peer], secrets: dict[str, dict[str, str]] | None = None
) -> Callable[[ServerSpec, SecretStore, Path, Hooks], Awaitable[tuple[Downstream, dict[str, str]]]]:
    """A `Connect` (launch.py) that starts each named server as a `MemoryDownstream` talking to its peer.

    `secrets`: per server, the secrets it is taken to have been given (what launch would resolve from the store).
    """

    async def connect(
        spec: ServerSpec, store: SecretStore, log_path: Path, hooks: Hooks
    ) -> tuple[Downstream, dict[str, str]]:
        ds = MemoryDownstream(spec.name, log_path, hooks, peer=peers[spec.name])
        return ds, dict((secrets or {}).get(spec.name, {}))

    return connect
