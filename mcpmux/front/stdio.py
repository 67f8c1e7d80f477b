"""The host's stdio, inbound: lines from fd 0 (a pipe, a socket, a tty, or a file such as /dev/null).

Outbound lines go through output.py. Tests drive the front with streams of their own instead
(`Front.serve`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Callable

import anyio
import anyio.to_thread

from mcpmux import wire
from mcpmux.errors import LineTooLong

logger = logging.getLogger("mcpmux")


class _LineProtocol(asyncio.Protocol):
    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._lines = wire.LineBuffer()
        self._on_line = on_line
        self.eof = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        try:
            lines = self._lines.feed(data)
        except LineTooLong:
            logger.error("the host sent a message larger than %d bytes; closing", wire.MAX_LINE_BYTES)
            self.eof.set()
            return
        for line in lines:
            self._on_line(line)

    def eof_received(self) -> bool | None:
        self.eof.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof.set()


async def read_lines(fd: int, on_line: Callable[[bytes], None]) -> None:
    loop = asyncio.get_running_loop()
    protocol = _LineProtocol(on_line)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
        # A regular file or a device such as /dev/null (`nohup`, systemd's StandardInput=null): epoll
        # refuses them, and asyncio would only log that from a callback and never see the end of input.
        await _read_lines_blocking(fd, protocol)
        return
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: protocol, pipe)
    try:
        await protocol.eof.wait()
    finally:
        transport.close()


async def _read_lines_blocking(fd: int, protocol: _LineProtocol) -> None:
    while chunk := await anyio.to_thread.run_sync(os.read, fd, 1 << 16, abandon_on_cancel=True):
        protocol.data_received(chunk)
