"""A lock file that makes starting a shared gateway race-free: one `serve` starts it, the others wait.

`flock` is released by the kernel when its holder exits, so a serve that dies while starting the
gateway never leaves the others waiting.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path) -> Generator[None]:
    """Hold an exclusive lock on `path` (created owner-only) for the block; blocks until it is free."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
