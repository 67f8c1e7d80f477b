"""End to end against third-party MCP servers from the registries: mcp-server-time (PyPI), server-everything (npm)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from tests.conftest import REPO, host_session

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def everything_bin() -> str:
    """server-everything from npm: $MCPMUX_EVERYTHING_BIN, the repo's .cache/npm (as .ci/run installs it), or PATH."""
    candidates = [
        os.environ.get("MCPMUX_EVERYTHING_BIN", ""),
        str(REPO / ".cache/npm/node_modules/.bin/mcp-server-everything"),
        shutil.which("mcp-server-everything") or "",
    ]
    found = next((c for c in candidates if c and Path(c).exists()), None)
    if found is None:
        if os.environ.get("MCPMUX_REQUIRE_ALL") == "1":
            pytest.fail(
                "server-everything is missing: npm install --prefix .cache/npm @modelcontextprotocol/server-everything"
            )
        pytest.skip("server-everything is not installed; .ci/run installs it")
    return found


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
