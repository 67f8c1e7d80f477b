"""The `serve` side of shared mode: attach to the profile's gateway, starting it if none runs.

The hello offers the host's stdin and stdout when they are pipes or sockets, and they are sent once the
gateway's welcome asks for them (the gateway then serves them itself); then `serve` becomes the bare
waiter or byte pipe (pump.py). A gateway that is exiting just as a serve attaches closes the connection
before its welcome: the serve then starts a new one.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import StatePaths
from mcpmux.shared import address, sock
from mcpmux.shared.lock import locked
from mcpmux.shared.spawn import start_gateway

logger = logging.getLogger("mcpmux")

ATTACH_ATTEMPTS = 3
"""A gateway may exit (idle) just as a serve attaches: the serve then starts a new one, a few times at most."""


class Fallback(Exception):
    """Shared mode cannot be used here (socket path too long, another mcpmux's gateway): serve in-process."""


def attach(paths: StatePaths, key: str, gateway_argv: list[str]) -> tuple[socket.socket, bool]:
    """A connection to the profile's gateway past its hello, starting the gateway if none runs; and whether the
    gateway took the host's stdio."""
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
            line, handed_off = sock.greet(conn, key)
        except OSError:
            line, handed_off = b"", False
        if not line:  # it was exiting: start another
            conn.close()
            continue
        if (why := address.mismatch(line)) is not None:
            conn.close()
            raise Fallback(f"the gateway on {path} cannot be shared with this serve: {why}")
        return conn, handed_off
    raise MCPMuxError(f"could not attach to the shared gateway on {path} (log: {address.log_path(paths, key)})")


def _argv(gateway_argv: list[str], key: str) -> list[str]:
    return [*gateway_argv, "--key", key]


def log_of(paths: StatePaths, key: str) -> Path:
    return address.log_path(paths, key)
