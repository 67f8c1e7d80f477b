"""The shared gateway's Unix socket: an owner-only folder (0700), the socket 0600, and the peer's uid checked.

The folder's and socket's modes already keep other users out; checking each connection's peer uid
(SO_PEERCRED on Linux, getpeereid elsewhere) also refuses a process of another user that was handed
an open descriptor, and a socket file someone else put in the folder (its owner is checked by stat).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import sys
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import ensure_private_dir
from mcpmux.shared import address

# sun_path holds 108 bytes on Linux and 104 on macOS and the BSDs, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107 if sys.platform.startswith("linux") else 103


def check_length(path: Path) -> None:
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise MCPMuxError(
            f"socket path {path} is longer than the {MAX_SOCKET_PATH_BYTES} bytes Unix sockets allow "
            "(set MCPMUX_HOME to a shorter folder)"
        )


def private_folder(path: Path) -> Path:
    folder = ensure_private_dir(path)
    folder.chmod(0o700)  # mkdir's mode does not apply to a folder that already existed
    return folder


def listen(path: Path) -> socket.socket:
    """A listening socket at `path` (0600), replacing a stale one left by a gateway that died."""
    check_length(path)
    private_folder(path.parent)
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)  # never a moment with a wider mode than 0600
        try:
            server.bind(str(path))
        finally:
            os.umask(old)
        path.chmod(0o600)
        server.listen(64)
    except BaseException:
        server.close()
        raise
    return server


def connect(path: Path) -> socket.socket | None:
    """A connection to the gateway at `path`; None when none listens there (or the socket is not ours)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_uid != os.getuid():
        raise MCPMuxError(f"{path} belongs to another user (uid {info.st_uid}); remove it")
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        client.close()
        return None
    if peer_uid(client) != os.getuid():
        client.close()
        raise MCPMuxError(f"the process listening on {path} is another user's; remove the socket")
    return client


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end; None where the platform cannot tell."""
    if hasattr(socket, "SO_PEERCRED"):
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[1]
    with contextlib.suppress(AttributeError, OSError):
        return os.getpeereid(conn.fileno())[0]  # type: ignore[attr-defined]  # macOS and the BSDs
    return None


def peer_pid(conn: socket.socket) -> int | None:
    if hasattr(socket, "SO_PEERCRED"):
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0]
    return None


def handoff_fds(stdin_fd: int = 0, stdout_fd: int = 1) -> list[int]:
    """The host's stdin and stdout when the gateway can take them over (pipes or sockets), else none.

    Handed over, they are read and written by the gateway itself: no process relays the host's bytes.
    A terminal or a file (`serve < requests.json`) stays with the byte pipe, which reads anything."""
    try:
        modes = [os.fstat(fd).st_mode for fd in (stdin_fd, stdout_fd)]
    except OSError:
        return []
    return [stdin_fd, stdout_fd] if all(pollable(mode) for mode in modes) else []


def pollable(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def greet(conn: socket.socket, key: str) -> tuple[bytes, bool]:
    """A serve's side of attaching: its hello (offering the host's stdio when it can be handed over), the
    gateway's answer line (b"" when it hung up), and whether the stdio went to it, sent only once that answer
    welcomed this serve. A broken connection raises OSError."""
    fds = handoff_fds()
    conn.sendall(address.hello(key, pid=os.getpid(), handoff=bool(fds)))
    line = read_line(conn, address.MAX_HELLO_BYTES)
    handed_off = bool(fds and line) and address.mismatch(line) is None and address.handed_off(line)
    if handed_off:
        send_stdio(conn, fds)
    return line, handed_off


def send_stdio(conn: socket.socket, fds: list[int]) -> None:
    """The host's stdio to a gateway whose welcome asked for it: one byte carrying the descriptors (SCM_RIGHTS)."""
    socket.send_fds(conn, [b"\0"], fds)


def read_line(conn: socket.socket, limit: int) -> bytes:
    """One line, read a byte at a time so nothing after it is consumed (the hello; tiny)."""
    data = bytearray()
    while len(data) < limit:
        byte = conn.recv(1)
        if not byte or byte == b"\n":
            break
        data += byte
    return bytes(data)
