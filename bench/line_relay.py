"""The floor: a bare stdlib line relay between a host and one server, nothing else.

Run: `python bench/line_relay.py COMMAND [ARGS...]`. Two threads copy whole lines, host to
server and server to host, flushing each; no parsing, no policy, no audit. Whatever a
Python relay does per message costs at least this much, so the benchmark shows mcpmux
against it as well as against a direct connection.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import IO


def pump(src: IO[bytes], dst: IO[bytes]) -> None:
    for line in src:
        dst.write(line)
        dst.flush()
    dst.close()


def main(argv: list[str]) -> int:
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    to_child = threading.Thread(target=pump, args=(sys.stdin.buffer, child.stdin), daemon=True)
    to_child.start()
    pump(child.stdout, sys.stdout.buffer)  # ends when the server exits (it does on stdin EOF)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
