"""The bearer token a gateway serving by URL asks of every request: one per user, random, owner-only on disk.

The token is what keeps other local users, and pages in the user's browser, from the gateway's
downstreams: the loopback port itself is open to every process on the machine. It is created on first
use (32 random bytes, urlsafe) in the state folder with mode 0600, and read from there by `mcpmux
gateway token` to print a host entry. It is never logged: a refused request is logged without it.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import StatePaths, create_private

TOKEN_BYTES = 32
SCHEME = "bearer"


def token_path(paths: StatePaths) -> Path:
    return paths.state_dir / "shared" / "http-token"


def load_or_create(paths: StatePaths) -> str:
    """The user's token, created (O_EXCL, 0600) when there is none yet; a file others can read is refused."""
    path = token_path(paths)
    with contextlib.suppress(FileExistsError):  # the usual case, or another process created it just now
        create_private(path, secrets.token_urlsafe(TOKEN_BYTES).encode())
    return read(path)


def read(path: Path) -> str:
    try:  # never through a link: a planted one would make mcpmux serve a token someone else chose
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise MCPMuxError(f"cannot read {path} ({exc.strerror}); remove it and mcpmux creates a new token") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode):
            raise MCPMuxError(f"{path} is not a file of yours; remove it and mcpmux creates a new token")
        if info.st_mode & 0o077:
            raise MCPMuxError(
                f"{path} is readable by other users (mode {info.st_mode & 0o777:o}); anyone who read it can call "
                f"your gateway: remove it (mcpmux creates a new token) and update your hosts' entries"
            )
        token = handle.read(1024).decode("ascii", errors="replace").strip()
    if len(token) < TOKEN_BYTES:
        raise MCPMuxError(f"{path} does not hold a token mcpmux wrote; remove it and mcpmux creates a new one")
    return token


def presented(authorization: str | None) -> str | None:
    """The token in an `Authorization: Bearer …` header value; None when there is no bearer token."""
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != SCHEME or not value.strip():
        return None
    return value.strip()


def matches(authorization: str | None, token: str) -> bool:
    """Whether the header carries `token`: compared in constant time, so timing does not spell it out."""
    given = presented(authorization)
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", errors="replace"), token.encode())
