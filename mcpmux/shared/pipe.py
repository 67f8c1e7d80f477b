"""The `serve` side of shared mode: attach to the profile's gateway (starting it if need be), then pipe bytes.

After the hello, `serve` is a byte pipe between the host's stdio and the gateway's socket: no parsing, no
event loop, one thread per direction blocked in a read. The host's EOF is passed on as a half-close (the
gateway answers what it owes, then closes); the gateway's close ends the serve, so a host whose gateway
died sees its server exit (each request in flight fails) and starts a new `serve`, which starts a new
gateway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import StatePaths
from mcpmux.shared import address, sock
from mcpmux.shared.lock import locked
from mcpmux.shared.spawn import start_gateway

logger = logging.getLogger("mcpmux")

ATTACH_ATTEMPTS = 3
"""A gateway may exit (idle) just as a serve attaches: the serve then starts a new one, a few times at most."""
CHUNK = 1 << 16


class Fallback(Exception):
    """Shared mode cannot be used here (socket path too long, another mcpmux's gateway): serve in-process."""


def attach(paths: StatePaths, key: str, gateway_argv: list[str]) -> socket.socket:
    """A connection to the profile's gateway past its hello, starting the gateway if none runs."""
    path = address.socket_path(paths, key)
    try:
        sock.check_length(path)
    except MCPMuxError as exc:
        raise Fallback(str(exc)) from None
    sock.private_folder(address.shared_dir(paths))
    for _ in range(ATTACH_ATTEMPTS):
        conn = sock.connect(path)
        if conn is None:
            with locked(address.lock_path(paths, key)):  # one serve starts it; the others find it listening
                conn = sock.connect(path)
                if conn is None:
                    start_gateway(_argv(gateway_argv, key), address.log_path(paths, key))
                    conn = sock.connect(path)
        if conn is None:
            continue
        try:
            conn.sendall(address.hello(key, pid=os.getpid()))
            line = sock.read_line(conn, address.MAX_HELLO_BYTES)
        except OSError:
            line = b""
        if not line:  # it was exiting: start another
            conn.close()
            continue
        if (why := address.mismatch(line)) is not None:
            conn.close()
            raise Fallback(f"the gateway on {path} cannot be shared with this serve: {why}")
        return conn
    raise MCPMuxError(f"could not attach to the shared gateway on {path} (log: {address.log_path(paths, key)})")


def _argv(gateway_argv: list[str], key: str) -> list[str]:
    return [*gateway_argv, "--key", key]


def pump(conn: socket.socket, stdin_fd: int = 0, stdout_fd: int = 1) -> bool:
    """Pipe bytes host ↔ gateway until the gateway closes; True when the host closed its input first."""
    out = os.dup(stdout_fd)
    if stdout_fd == 1:
        os.dup2(2, 1)  # fd 1 is the wire: a stray print must not corrupt it
    host_done = threading.Event()

    def upstream() -> None:
        try:
            while data := os.read(stdin_fd, CHUNK):
                conn.sendall(data)
        except OSError:
            pass
        finally:
            host_done.set()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)  # the gateway answers what it owes, then closes

    threading.Thread(target=upstream, name="host→gateway", daemon=True).start()
    try:
        while data := conn.recv(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
    except OSError:
        pass
    finally:
        conn.close()
        os.close(out)
    return host_done.is_set()


def log_of(paths: StatePaths, key: str) -> Path:
    return address.log_path(paths, key)
