"""The byte pipe a shared `serve` becomes: the host's stdio ↔ the gateway's socket, standard library only.

A `serve` that has attached execs this file (`python -I -S pump.py FD LOG`), so what stays running for
each host is a bare interpreter (about 10 MB) rather than mcpmux's CLI. No parsing and no event loop:
one thread per direction, blocked in a read. The host's EOF is passed on as a half-close (the gateway
answers what it owes, then closes); the gateway's close ends the pipe, so a host whose gateway died sees
its server exit and each request in flight fail, never hang.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading

CHUNK = 1 << 16


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


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the pipe without a traceback
    fd, log = int(argv[1]), argv[2]
    if pump(socket.socket(fileno=fd)):
        return 0
    sys.stderr.write(f"mcpmux: error: the shared gateway closed the connection (log: {log})\n")
    return 1


def exec_pump(conn: socket.socket, log: str) -> None:
    """Replace this process with the bare pipe on `conn` (the pid the host knows stays the same)."""
    fd = conn.detach()
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-I", "-S", __file__, str(fd), log])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
