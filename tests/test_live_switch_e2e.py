"""Live profile changes under a running host: `mcpmux profile use`, and hot reload of the profile file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.conftest import FIXTURES, REPO
from tests.e2e_helpers import ListChanged, audit_events, serve_pid

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
FAULTY = FIXTURES / "faulty_server.py"


def server(name: str) -> str:
    return f'[servers.{name}]\ncommand = "{sys.executable}"\nargs = ["{FAULTY}", "--name", "{name}"]\n'


def mcpmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpmux", *args], capture_output=True, text=True, cwd=REPO, timeout=60)


async def status(home: Path) -> dict[str, Any]:
    from mcpmux.control import endpoint_path, request

    return await request(endpoint_path(serve_pid(home)), "status")


async def wait_for_reload_error(home: Path) -> str:
    with anyio.fail_after(20):
        # Nothing signals a refused edit to the host: poll the status endpoint, bounded.
        while True:
            if (error := (await status(home)).get("reload_error")) is not None:
                return error
            await anyio.sleep(0.1)


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def test_profile_use_switches_a_running_serve_and_unchanged_servers_keep_their_pid(
    write_profile: WriteProfile, mcpmux_home: Path
):
    first = write_profile(server("keep") + server("gone"), name="first")
    second = write_profile(server("keep") + server("fresh"), name="second")
    assert mcpmux("profile", "use", str(first)).returncode == 0
    changed = ListChanged()
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpmux", "serve"], env=dict(os.environ), cwd=REPO
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write, message_handler=changed) as host:
        await host.initialize()
        before = {t.name for t in (await host.list_tools()).tools}
        keep_pid = text(await host.call_tool("keep__pid", {}))
        switched = mcpmux("profile", "use", str(second))
        await changed.wait()
        with anyio.fail_after(20):
            while "fresh__echo" not in (after := {t.name for t in (await host.list_tools()).tools}):
                await changed.wait()
        kept_pid = text(await host.call_tool("keep__pid", {}))
        state = await status(mcpmux_home)
    assert "gone__echo" in before
    assert "gone__echo" not in after
    assert keep_pid == kept_pid
    assert "switches to" in switched.stderr
    assert state["profile"] == "second"


async def test_saving_the_profile_applies_it_and_an_invalid_edit_keeps_the_old_one(
    write_profile: WriteProfile, mcpmux_home: Path
):
    from mcpmux.profile.trust import trust_profile

    path = write_profile(server("one"))
    changed = ListChanged()
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpmux", "serve", "--profile", str(path)], env=dict(os.environ), cwd=REPO
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write, message_handler=changed) as host:
        await host.initialize()
        await host.list_tools()
        path.write_text(server("one") + "[servers.two\n")  # a syntax error
        await wait_for_reload_error(mcpmux_home)
        still = {t.name for t in (await host.list_tools()).tools}
        path.write_text(server("one") + server("two"))
        trust_profile(path)
        await changed.wait()
        with anyio.fail_after(20):
            while "two__echo" not in (now := {t.name for t in (await host.list_tools()).tools}):
                await changed.wait()
    assert "one__echo" in still and not any(n.startswith("two__") for n in still)
    assert "one__echo" in now


async def test_a_change_to_the_repository_file_a_served_user_profile_extends_waits_for_trust(
    tmp_path: Path, mcpmux_home: Path
):
    import hashlib

    from mcpmux.profile.trust import trust_profile

    base = tmp_path / "repo" / "profiles" / "base.toml"
    base.parent.mkdir(parents=True)
    base.write_text(server("one"))
    mine = mcpmux_home / "profiles" / "mine.toml"
    mine.parent.mkdir(parents=True)
    mine.write_text(f'extends = ["{base}"]\n')
    trust_profile(mine)
    changed = ListChanged()
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcpmux", "serve", "--profile", str(mine)], env=dict(os.environ), cwd=REPO
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write, message_handler=changed) as host:
        await host.initialize()
        await host.list_tools()
        base.write_text(server("one") + server("two"))  # a `git pull` in the repository
        error = await wait_for_reload_error(mcpmux_home)
        still = {t.name for t in (await host.list_tools()).tools}
        trust_profile(mine)
        with anyio.fail_after(20):
            while "two__echo" not in (now := {t.name for t in (await host.list_tools()).tools}):
                await changed.wait()
        state = await status(mcpmux_home)
    assert f"profile {mine} has changed since you trusted it (" in error
    assert f": {base}), so it will not run" in error
    assert error.endswith(f"mcpmux profile trust {mine}")
    assert "one__echo" in still and not any(n.startswith("two__") for n in still)
    assert "one__echo" in now
    # The hashes recorded are those of the bytes parsed, for every file.
    sha = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in (mine, base)}
    assert state["profile_hash"] == sha[mine]
    (switch,) = audit_events(mcpmux_home, "profile_switch")
    assert switch["profile_hash"] == sha[mine]
    assert switch["profile_files"] == {str(mine): sha[mine], str(base): sha[base]}
