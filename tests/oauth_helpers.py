"""The OAuth fixture server as a subprocess, and `mcpmux auth login` driven by a test standing in for the person.

The "person" follows the authorization URL that `auth login --no-browser` prints, with a
plain HTTP client: the fixture's authorization server consents at once and redirects to
mcpmux's loopback callback, which completes the sign-in.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx2
import orjson

from tests.conftest import FIXTURES, REPO

OAUTH_SERVER = FIXTURES / "oauth_server.py"
AUTHORIZE_URL = re.compile(rb"http://127\.0\.0\.1:\d+/authorize\?\S+")


@dataclass(frozen=True, slots=True)
class OAuthServer:
    process: anyio.abc.Process
    port: int
    path: str = "/mcp"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def stats(self) -> dict[str, int]:
        async with httpx2.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{self.port}/fixture/stats")).json()

    async def post(self, action: str) -> None:
        async with httpx2.AsyncClient() as client:
            (await client.post(f"http://127.0.0.1:{self.port}/fixture/{action}")).raise_for_status()


@asynccontextmanager
async def oauth_server(*flags: str, env: dict[str, str] | None = None) -> AsyncGenerator[OAuthServer]:
    """The fixture as a subprocess; yields it once it listens; always ends it."""
    command = [sys.executable, str(OAUTH_SERVER), *flags]
    async with await anyio.open_process(command, env={**os.environ, **(env or {})}) as proc:
        try:
            assert proc.stdout is not None
            buffer = b""
            with anyio.fail_after(20):
                while b"\n" not in buffer:
                    buffer += await proc.stdout.receive()
            yield OAuthServer(proc, int(buffer.split(b"\n")[0]), "/sse" if "--sse" in flags else "/mcp")
        finally:
            if proc.returncode is None:
                proc.kill()
            with anyio.CancelScope(shield=True), anyio.fail_after(10):
                await proc.wait()


async def mcpmux(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(
        [sys.executable, "-m", "mcpmux", *args], input=stdin.encode() if stdin else None, cwd=REPO, check=False
    )


async def auth_status(profile: Path) -> dict[str, Any]:
    """`mcpmux auth status --json`, by server name."""
    done = await mcpmux("auth", "status", "--profile", str(profile), "--json")
    assert done.returncode == 0, done.stderr
    return {row["server"]: row for row in orjson.loads(done.stdout)}


async def login(profile: Path, server: str = "remote", *, consent: bool = True) -> tuple[int, str]:
    """`mcpmux auth login SERVER --no-browser`, following the URL it prints if `consent`: exit code and stderr."""
    command = [sys.executable, "-m", "mcpmux", "auth", "login", server, "--profile", str(profile), "--no-browser"]
    async with await anyio.open_process(command, cwd=REPO) as proc:
        assert proc.stderr is not None
        err = b""
        try:
            with anyio.fail_after(60):
                while consent and not AUTHORIZE_URL.search(err) and proc.returncode is None:
                    try:
                        err += await proc.stderr.receive()
                    except anyio.EndOfStream:
                        break
                if consent and (found := AUTHORIZE_URL.search(err)):
                    async with httpx2.AsyncClient(follow_redirects=True) as person:
                        page = await person.get(found.group().decode())
                    assert page.status_code == 200, page.text
                async for chunk in proc.stderr:
                    err += chunk
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                with anyio.CancelScope(shield=True):
                    await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
