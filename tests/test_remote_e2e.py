"""Remote (streamable HTTP) downstreams, end to end: a real SDK server on loopback behind a bearer token.

The server (tests/fixtures/http_server.py) runs as a real subprocess; its token
comes from a secret stored in the test's file keyring with `mcpmux secret set`,
and the profile sends it as `Authorization = "Bearer {secret:remote-token}"`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
import pytest

from tests.conftest import FIXTURES, REPO, fixture_server_toml, host_session
from tests.e2e_helpers import audit_events, every_log

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
HTTP_SERVER = FIXTURES / "http_server.py"
SECRET = "remote-token"


@asynccontextmanager
async def remote_server(token: str, port: int = 0, *extra: str) -> AsyncGenerator[tuple[anyio.abc.Process, int]]:
    """The HTTP fixture server as a subprocess; yields it and its port once it listens; always ends it."""
    async with await anyio.open_process(
        [sys.executable, str(HTTP_SERVER), "--port", str(port), *extra], env={**os.environ, "FIXTURE_TOKEN": token}
    ) as proc:
        try:
            assert proc.stdout is not None
            buffer = b""
            with anyio.fail_after(20):
                while b"\n" not in buffer:
                    buffer += await proc.stdout.receive()
            yield proc, int(buffer.split(b"\n")[0])
        finally:
            if proc.returncode is None:
                proc.kill()
            with anyio.CancelScope(shield=True), anyio.fail_after(10):
                await proc.wait()


async def mcpmux(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(
        [sys.executable, "-m", "mcpmux", *args], input=stdin.encode() if stdin else None, cwd=REPO, check=False
    )


@pytest.fixture(autouse=True)
async def forget_secret() -> AsyncGenerator[None]:
    """In CI the keyring is the session's real Secret Service, shared by every test: leave it as found."""
    yield
    await mcpmux("secret", "delete", SECRET)


async def store_secret(value: str) -> None:
    done = await mcpmux("secret", "set", SECRET, stdin=value + "\n")
    assert done.returncode == 0, done.stderr


def remote_toml(port: int, path: str = "/mcp", **settings: str) -> str:
    lines = ["[servers.remote]", f'url = "http://127.0.0.1:{port}{path}"']
    lines.append(f'headers = {{ Authorization = "Bearer {{secret:{SECRET}}}" }}')
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def text_of(result: Any) -> str:
    return result.content[0].model_dump()["text"]


async def test_a_remote_server_is_relayed_like_a_local_one_and_its_secret_is_redacted(
    write_profile: WriteProfile, mcpmux_home: Path
):
    token = f"tok-{uuid.uuid4().hex}"
    await store_secret(token)
    async with remote_server(token) as (_, port):
        profile = write_profile(remote_toml(port) + fixture_server_toml("alpha"))
        async with host_session(profile) as host:
            names = {tool.name for tool in (await host.list_tools()).tools}
            echoed = await host.call_tool("remote__echo", {"text": "over http"})
            leaked = await host.call_tool("remote__bearer", {})
            local = await host.call_tool("alpha__echo", {"text": "over stdio"})
            status = await mcpmux("status", "--json")
    assert {"remote__echo", "remote__bearer", "remote__pid", "alpha__echo"} <= names
    assert (echoed.is_error, text_of(echoed)) == (False, "over http")
    assert text_of(leaked) == f"token=[redacted:{SECRET}]"
    assert text_of(local) == "over stdio"
    assert status.returncode == 0, status.stderr
    (serve,) = orjson.loads(status.stdout)["serves"]
    remote = next(s for s in serve["servers"] if s["name"] == "remote")
    assert (remote["status"], remote["pid"], remote["tools"]) == ("running", None, 3)
    calls = [e for e in audit_events(mcpmux_home, "tool_call") if e.get("server") == "remote"]
    assert len(calls) == 2
    for path in [mcpmux_home / "state" / "audit.jsonl", *every_log(mcpmux_home), profile]:
        assert token not in path.read_text()


async def test_a_legacy_sse_server_is_relayed_when_its_url_ends_in_sse(write_profile: WriteProfile):
    token = f"tok-{uuid.uuid4().hex}"
    await store_secret(token)
    async with remote_server(token, 0, "--sse") as (proc, port):
        profile = write_profile(remote_toml(port, "/sse"))
        async with host_session(profile) as host:
            echoed = await host.call_tool("remote__echo", {"text": "over sse"})
            served_by = await host.call_tool("remote__pid", {})
    assert text_of(echoed) == "over sse"
    assert int(text_of(served_by)) == proc.pid


async def test_a_wrong_secret_fails_only_the_remote_server_without_retries(
    write_profile: WriteProfile, mcpmux_home: Path
):
    await store_secret("not-the-token")
    async with remote_server("the-token") as (_, port):
        profile = write_profile(remote_toml(port) + fixture_server_toml("alpha"))
        async with host_session(profile) as host:
            names = {tool.name for tool in (await host.list_tools()).tools}
            local = await host.call_tool("alpha__echo", {"text": "still here"})
            refused = await host.call_tool("remote__echo", {"text": "x"})
    assert "alpha__echo" in names and not any(n.startswith("remote__") for n in names)
    assert text_of(local) == "still here"
    assert refused.is_error
    (failed,) = audit_events(mcpmux_home, "downstream_failed")
    assert failed["server"] == "remote"
    assert "HTTP 401" in str(failed)
    assert not audit_events(mcpmux_home, "downstream_restart")


async def test_a_missing_secret_fails_only_the_remote_server_naming_the_fix(
    write_profile: WriteProfile, mcpmux_home: Path
):
    async with remote_server("the-token") as (_, port):
        profile = write_profile(remote_toml(port) + fixture_server_toml("alpha"))
        async with host_session(profile) as host:
            local = await host.call_tool("alpha__echo", {"text": "still here"})
    assert text_of(local) == "still here"
    (failed,) = audit_events(mcpmux_home, "downstream_failed")
    assert failed["server"] == "remote"
    assert f"mcpmux secret set {SECRET}" in str(failed)


async def test_a_remote_server_that_goes_away_fails_calls_and_is_reconnected_once_it_is_back(
    write_profile: WriteProfile, mcpmux_home: Path
):
    token = f"tok-{uuid.uuid4().hex}"
    await store_secret(token)
    restart = "{ backoff_initial_seconds = 0.1, backoff_max_seconds = 0.5, max_restarts = 50 }"

    async def remote_tools() -> set[str]:
        return {t.name for t in (await host.list_tools()).tools if t.name.startswith("remote__")}

    async with remote_server(token) as (proc, port):
        profile = write_profile(remote_toml(port, restart=restart))
        async with host_session(profile) as host:
            first = await host.call_tool("remote__pid", {})
            assert int(text_of(first)) == proc.pid
            proc.kill()
            await proc.wait()
            gone = await host.call_tool("remote__echo", {"text": "anyone?"})
            assert gone.is_error
            assert "remote__pid" in await remote_tools()  # its routes stay while it reconnects
            async with remote_server(token, port) as (again, _):
                with anyio.fail_after(20):
                    while True:  # the reconnect changes nothing the host can see: poll its effect, bounded
                        back = await host.call_tool("remote__pid", {})
                        if not back.is_error:
                            break
                        await anyio.sleep(0.1)
                assert int(text_of(back)) == again.pid
    assert audit_events(mcpmux_home, "downstream_restart")
