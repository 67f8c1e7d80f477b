"""The host's stdio: lines in from fd 0, whole lines out on a private duplicate of fd 1.

fd 1 is the protocol wire: it is duplicated for the wire and then pointed at
stderr, so a stray print anywhere in the process cannot corrupt the protocol.
Tests drive the front with their own pipe pair instead of fds 0 and 1.
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


async def open_output(fd: int) -> Callable[[bytes], None]:
    """A line writer on a private duplicate of `fd`; `fd` itself is then pointed at stderr."""
    wire_fd = os.dup(fd)
    if fd == 1:
        os.dup2(2, 1)
    pipe = os.fdopen(wire_fd, "wb", buffering=0)
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
    except ValueError:  # a regular file: write it directly; small and rare

        def write_blocking(line: bytes) -> None:
            pipe.write(line + b"\n")

        return write_blocking

    def write(line: bytes) -> None:
        if not transport.is_closing():
            transport.write(line + b"\n")

    return write
