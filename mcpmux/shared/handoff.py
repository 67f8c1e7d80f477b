"""A host whose stdio the gateway took over: its stdin and stdout, sent once the welcome asked (SCM_RIGHTS).

The gateway reads and writes them itself, exactly as a `serve` of its own would (front/stdio.py,
front/output.py), so a shared host's messages cross no extra process: the hop of shared mode costs
what a plain serve costs. The `serve` the host started stays as a bare waiter (pump.py) on the
connection, which is how the gateway learns the host ended it: the connection closes, and the host's
calls are then cancelled without waiting for its input to end.

A serve offers them in its hello and sends them only after this gateway's welcome accepted it: a host's
stdio never goes to a gateway of another version, or to something else listening on the socket. The
descriptors are a peer's: they must be exactly two, each a pipe or a socket (anything else is refused
and closed), and they are received close-on-exec so that no downstream the gateway spawns inherits a
host's output (which would keep it open after the gateway died, and the host's requests hanging).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from functools import partial

import anyio

from mcpmux.front import output, stdio
from mcpmux.front.server import EOF_DRAIN_SECONDS, Front
from mcpmux.shared import address, sock

_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)  # Linux; elsewhere set right after receiving


def wants_handoff(hello: bytes) -> bool:
    """Whether a hello (already checked by address.mismatch) offers the host's stdio."""
    return address.handed_off(hello)


async def receive_fds(conn: socket.socket, fds: list[int]) -> None:
    """The host's stdio, sent once the welcome asked for them: one byte carrying the descriptors.

    They go into `fds`, which the caller owns (and closes unless it keeps them), even when this is cancelled."""
    while True:
        await anyio.wait_readable(conn)
        try:
            _, received, _, _ = socket.recv_fds(conn, 1, 3, _CLOEXEC)  # room for a third: refused, not dropped
        except (BlockingIOError, InterruptedError):
            continue
        for fd in received:
            fds.append(fd)
            os.set_inheritable(fd, False)
        return  # one message: the byte and its descriptors (or the end, with none)


def fds_mismatch(fds: list[int]) -> str | None:
    """Why the descriptors a serve handed over cannot be served; None when they can."""
    if len(fds) != 2:
        return f"the serve handed over {len(fds)} descriptors, not its stdin and stdout"
    try:
        if not all(sock.pollable(os.fstat(fd).st_mode) for fd in fds):
            return "a descriptor handed over is neither a pipe nor a socket"
    except OSError:
        return "a descriptor handed over cannot be inspected"
    return None


def close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


async def serve_handed_off(
    front: Front, conn: socket.socket, fds: list[int], flow: output.Flow, detach: Callable[[], None]
) -> None:
    """Serve the host on its own stdin and stdout (`fds`) until its input ends or its `serve` is gone.

    `detach` is called before the host's output is let go: a host that ended its serve mid-call sees its
    output end only once its calls are cancelled downstream."""
    stdin_fd, stdout_fd = fds
    out = await output.open_output(stdout_fd, flow)  # a private duplicate: `fds` are closed by the caller
    ended = False
    try:
        async with anyio.create_task_group() as tg:

            async def host() -> None:
                nonlocal ended
                await front.serve(partial(stdio.read_lines, stdin_fd), out.write)
                ended = True
                tg.cancel_scope.cancel()

            tg.start_soon(host)
            await _until_closed(conn)  # the host ended its serve: nothing it asked is wanted any more
            tg.cancel_scope.cancel()
    finally:
        detach()
        with anyio.CancelScope(shield=True):
            await out.close(EOF_DRAIN_SECONDS)
    if ended:
        with contextlib.suppress(OSError):
            await asyncio.get_running_loop().sock_sendall(conn, address.DONE)


async def _until_closed(conn: socket.socket) -> None:
    """Until the waiter's end of the connection closes (it never sends anything)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        while await loop.sock_recv(conn, 256):
            pass
