"""One attached host's wire on the gateway side: MCP lines over its accepted socket, with back-pressure.

The stdio path (front/stdio.py, front/output.py) opens pipe transports, which take a readable socket for a
closed one; a socket gets asyncio's socket transport instead: one transport reading and writing, a
half-close from the pipe read as the end of the host's input while answers are still written.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import anyio

from mcpmux import wire
from mcpmux.errors import LineTooLong
from mcpmux.front.output import HIGH_WATER, LOW_WATER, Flow
from mcpmux.front.server import EOF_DRAIN_SECONDS, Front

logger = logging.getLogger("mcpmux")


class _HostProtocol(asyncio.Protocol):
    def __init__(self, flow: Flow) -> None:
        self._flow = flow
        self._lines = wire.LineBuffer()
        self.on_line: Callable[[bytes], None] = lambda line: None
        self.eof = asyncio.Event()
        self.closed = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            lines = self._lines.feed(data)
        except LineTooLong:
            logger.error("a host sent a message larger than %d bytes; detaching it", wire.MAX_LINE_BYTES)
            self.eof.set()
            return
        for line in lines:
            self.on_line(line)

    def eof_received(self) -> bool:
        self.eof.set()
        return True  # half-closed: the answers still owed are written before mcpmux closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof.set()
        self.closed.set()
        self._flow.resume_reading()

    def pause_writing(self) -> None:
        self._flow.pause_reading()

    def resume_writing(self) -> None:
        self._flow.resume_reading()


async def serve_host(front: Front, conn: socket.socket, flow: Flow) -> None:
    """Serve one host on `conn` until its input ends; what is owed to it is answered and written first."""
    loop = asyncio.get_running_loop()
    protocol = _HostProtocol(flow)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=conn)
    transport.pause_reading()  # until the front takes lines
    transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def write(line: bytes) -> None:
        if not transport.is_closing():
            transport.write(line + b"\n")

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        protocol.on_line = on_line
        transport.resume_reading()
        await protocol.eof.wait()

    try:
        await front.serve(read_lines, write)
    finally:
        transport.close()  # asyncio writes what is buffered first
        with anyio.move_on_after(EOF_DRAIN_SECONDS), anyio.CancelScope(shield=True):
            await protocol.closed.wait()
