"""The host's side of the wire: whole lines out on a private duplicate of fd 1, with back-pressure.

fd 1 is the protocol wire: it is duplicated for the wire and then pointed at stderr, so a stray
print anywhere in the process cannot corrupt the protocol.

Past `HIGH_WATER` bytes waiting for the host, mcpmux stops reading its downstreams' output
(they then block) until the host has read down to `LOW_WATER`: mcpmux's memory stays bounded
while a host does not read.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

import anyio

from mcpmux import wire

logger = logging.getLogger("mcpmux")


class Flow(Protocol):
    """What is told when the host stops keeping up with what mcpmux writes (the supervisor: its downstreams)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


HIGH_WATER = 1024 * 1024
"""Bytes waiting for the host past which mcpmux stops reading its downstreams' output (they then block)."""
LOW_WATER = 256 * 1024
"""Bytes waiting for the host below which mcpmux reads its downstreams' output again."""
SPLIT_WRITE_BYTES = 64 * 1024
"""From this size a line and its newline are written apart (two writes cost less than a copy)."""


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
    wire.widen_pipe(wire_fd)
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
            if len(line) < SPLIT_WRITE_BYTES:
                transport.write(line + b"\n")
            else:  # a large line is not copied just to end it
                transport.write(line)
                transport.write(b"\n")

    return Output(write, transport)
