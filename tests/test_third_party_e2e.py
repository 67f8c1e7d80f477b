"""End to end against third-party MCP servers: mcp-server-time (PyPI), server-everything and server-filesystem (npm)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.context import ClientRequestContext

from tests.conftest import host_session
from tests.e2e_helpers import npm_bin

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def everything_bin() -> str:
    return npm_bin("@modelcontextprotocol/server-everything", "mcp-server-everything", "MCPMUX_EVERYTHING_BIN")


def mcp_server_time() -> str:
    path = shutil.which("mcp-server-time")
    if path is None:
        pytest.fail("mcp-server-time is not installed: pip install -e '.[dev]'")
    return path


async def test_mcp_server_time_tools_are_relayed_under_their_namespace(write_profile: WriteProfile):
    profile = write_profile(f'[servers.time]\ncommand = "{mcp_server_time()}"\nargs = ["--local-timezone", "UTC"]\n')
    async with host_session(profile) as host:
        names = [t.name for t in (await host.list_tools()).tools]
        result = await host.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert sorted(names) == ["time__convert_time", "time__get_current_time"]
    assert not result.is_error
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    assert '"timezone": "UTC"' in block.text


async def test_server_everything_results_pass_through_untouched(write_profile: WriteProfile):
    profile = write_profile(f'[servers.every]\ncommand = "{everything_bin()}"\nargs = ["stdio"]\n')
    async with host_session(profile) as host:
        names = {t.name for t in (await host.list_tools()).tools}
        echo = await host.call_tool("every__echo", {"message": "hi"})
        image = await host.call_tool("every__get-tiny-image", {})
        structured = await host.call_tool("every__get-structured-content", {"location": "New York"})
        total = await host.call_tool("every__get-sum", {"a": 2, "b": 3})
    assert {"every__echo", "every__get-tiny-image", "every__trigger-long-running-operation"} <= names
    assert echo.content == [types.TextContent(type="text", text="Echo: hi")]
    assert any(isinstance(block, types.ImageContent) and block.mime_type == "image/png" for block in image.content)
    assert structured.structured_content is not None
    assert "temperature" in structured.structured_content
    assert not total.is_error


async def test_server_everything_progress_is_relayed_to_the_host(write_profile: WriteProfile):
    profile = write_profile(f'[servers.every]\ncommand = "{everything_bin()}"\nargs = ["stdio"]\n')
    steps: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append(progress)

    async with host_session(profile) as host:
        with anyio.fail_after(20):
            result = await host.call_tool(
                "every__trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
            )
    assert not result.is_error
    assert len(steps) == 4


# --- roots grant file access: @modelcontextprotocol/server-filesystem ---------------------------
# It starts with the directories on its command line, and once its client offers roots it asks
# for them and allows exactly those instead (and again on roots/list_changed).


def filesystem_profile(started_with: Path, *settings: str) -> str:
    command = npm_bin("@modelcontextprotocol/server-filesystem", "mcp-server-filesystem", "MCPMUX_FILESYSTEM_BIN")
    lines = [f'[servers.fs]\ncommand = "{command}"\nargs = ["{started_with}"]', *settings]
    return "\n".join(lines) + "\n"


async def allowed_directories(host: ClientSession) -> str:
    """The server's allowed directories, once it has applied the roots it was given."""
    with anyio.fail_after(20):
        while True:  # it asks for roots after its handshake, so the first answer may predate them
            result = await host.call_tool("fs__list_allowed_directories", {})
            body = "".join(b.text for b in result.content if isinstance(b, types.TextContent))
            if "argv" not in body:
                return body


async def test_server_filesystem_takes_the_hosts_roots_as_its_allowed_directories(
    write_profile: WriteProfile, tmp_path: Path
):
    argv, host_root = tmp_path / "argv", tmp_path / "host-root"
    for folder in (argv, host_root):
        folder.mkdir()

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root.model_validate({"uri": host_root.as_uri(), "name": "h"})])

    async with host_session(write_profile(filesystem_profile(argv)), list_roots_callback=roots) as host:
        allowed = await allowed_directories(host)
    assert str(host_root) in allowed


async def test_server_filesystem_with_pinned_roots_gets_those_and_never_the_hosts(
    write_profile: WriteProfile, tmp_path: Path
):
    argv, host_root, pinned = tmp_path / "argv", tmp_path / "host-root", tmp_path / "pinned"
    for folder in (argv, host_root, pinned):
        folder.mkdir()
    asked = anyio.Event()

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        asked.set()
        return types.ListRootsResult(roots=[types.Root.model_validate({"uri": host_root.as_uri(), "name": "h"})])

    profile = write_profile(filesystem_profile(argv, f'roots = ["{pinned}"]'))
    async with host_session(profile, list_roots_callback=roots) as host:
        allowed = await allowed_directories(host)
    assert str(pinned) in allowed
    assert str(host_root) not in allowed
    assert not asked.is_set()
