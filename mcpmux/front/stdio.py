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
from typing import Protocol

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


class Flow(Protocol):
    """What is told when the host stops keeping up with what mcpmux writes (the supervisor: its downstreams)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


HIGH_WATER = 1024 * 1024
"""Bytes waiting for the host past which mcpmux stops reading its downstreams' output (they then block)."""
LOW_WATER = 256 * 1024
"""Bytes waiting for the host below which mcpmux reads its downstreams' output again."""


class _Flowing(asyncio.Protocol):
    def __init__(self, flow: Flow | None) -> None:
        self._flow = flow
        self.closed = asyncio.Event()
        self.paused_once = False

    def pause_writing(self) -> None:
        if not self.paused_once:
            self.paused_once = True
            logger.info("the host is not reading mcpmux's output as fast as it comes: pausing the servers' output")
        if self._flow is not None:
            self._flow.pause_reading()

    def resume_writing(self) -> None:
        if self._flow is not None:
            self._flow.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self.resume_writing()  # nothing more can be written: nothing to hold the servers back for


class Output:
    """The host's side of the wire: `write` one line; `close` flushes what is buffered, boundedly."""

    def __init__(self, write: Callable[[bytes], None], transport: asyncio.WriteTransport | None = None) -> None:
        self.write = write
        self._transport = transport

    async def close(self, seconds: float) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        protocol = transport.get_protocol()
        assert isinstance(protocol, _Flowing)
        transport.close()  # asyncio writes what is buffered first, then reports the connection lost
        with anyio.move_on_after(seconds):
            await protocol.closed.wait()


async def open_output(fd: int, flow: Flow | None = None) -> Output:
    """A line writer on a private duplicate of `fd`; `fd` itself is then pointed at stderr.

    Past `HIGH_WATER` bytes waiting for the host, `flow` is paused until they drop below `LOW_WATER`:
    mcpmux's memory stays bounded while the host does not read, and the downstreams wait instead.
    """
    wire_fd = os.dup(fd)
    if fd == 1:
        os.dup2(2, 1)
    pipe = os.fdopen(wire_fd, "wb", buffering=0)
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.connect_write_pipe(lambda: _Flowing(flow), pipe)
    except ValueError:  # a regular file: write it directly; small and rare

        def write_blocking(line: bytes) -> None:
            pipe.write(line + b"\n")

        return Output(write_blocking)
    transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def write(line: bytes) -> None:
        if not transport.is_closing():
            transport.write(line + b"\n")

    return Output(write, transport)
