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
from tests.e2e_helpers import ListChanged, serve_pid

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
        with anyio.fail_after(20):
            # Nothing signals a refused edit to the host: poll the status endpoint, bounded.
            while True:
                if (await status(mcpmux_home)).get("reload_error") is not None:
                    break
                await anyio.sleep(0.1)
        still = {t.name for t in (await host.list_tools()).tools}
        path.write_text(server("one") + server("two"))
        trust_profile(path)
        await changed.wait()
        with anyio.fail_after(20):
            while "two__echo" not in (now := {t.name for t in (await host.list_tools()).tools}):
                await changed.wait()
    assert "one__echo" in still and not any(n.startswith("two__") for n in still)
    assert "one__echo" in now
