"""What a shared `serve` becomes once attached: a bare interpreter, standard library only (about 10 MB).

A `serve` that has attached execs this file (`python -I -S pump.py FD LOG MODE`), so what stays running
for each host is not mcpmux's CLI. Two modes:

- `wait` (the usual one: the host's stdin and stdout are pipes or sockets): the gateway took them over
  with the hello, and reads and writes them itself; no process relays the host's bytes. This process
  keeps the pid the host knows, holds nothing of the wire (its fds 0 and 1 are let go at once) and
  waits for the gateway's connection to end: "done" (the host's input ended, all answered) exits 0,
  anything else means the gateway died (exit 1, saying so on stderr). A host that ends this process
  ends its attachment: the gateway sees the connection close and lets the host's stdio go.
- `pipe` (a terminal or a file as stdio): a byte pipe, one thread per direction blocked in a read.
  The host's EOF is passed on as a half-close (the gateway answers what it owes, then closes).

Either way a host whose gateway died sees its server's output end and each request in flight fail,
never hang.
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


DONE = b'{"mcpmux":"done"}'
"""address.DONE without its newline (this file imports nothing of mcpmux)."""


def wait(conn: socket.socket, stdin_fd: int = 0, stdout_fd: int = 1) -> bool:
    """Let go of the host's stdio (the gateway has it) and wait for the gateway's end; True when it said "done"."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, stdin_fd)
    os.close(null)
    os.dup2(2, stdout_fd)  # the host's output ends when the gateway closes its copy, not when this process exits
    said = b""
    try:
        while data := conn.recv(256):
            said += data[: 256 - len(said)]
    except OSError:
        pass
    finally:
        conn.close()
    return said.strip() == DONE


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the pipe without a traceback
    fd, log, mode = int(argv[1]), argv[2], argv[3]
    conn = socket.socket(fileno=fd)
    if wait(conn) if mode == "wait" else pump(conn):
        return 0
    sys.stderr.write(f"mcpmux: error: the shared gateway closed the connection (log: {log})\n")
    return 1


def exec_pump(conn: socket.socket, log: str, *, handed_off: bool) -> None:
    """Replace this process with the bare waiter or pipe on `conn` (the pid the host knows stays the same)."""
    fd = conn.detach()
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    mode = "wait" if handed_off else "pipe"
    os.execv(sys.executable, [sys.executable, "-I", "-S", __file__, str(fd), log, mode])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
