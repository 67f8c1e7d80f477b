"""MCP Apps (`io.modelcontextprotocol/ui`) through `mcpmux serve`: `ui://` views stay `ui://` and stay readable.

An SDK server built on the SDK's own `Apps` extension (fixtures/app_server.py), for a host of
each era; the URI mapping itself is tested in-process in test_uris.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.conftest import FIXTURES, host_session, serve_params

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
VIEW = "ui://weather/view.html"
EXPOSED_VIEW = "ui://app.mcpmux/weather/view.html"
APP_MIME = "text/html;profile=mcp-app"


def app_profile(policy: str = "") -> str:
    return f'[servers.app]\ncommand = "{sys.executable}"\nargs = ["{FIXTURES / "app_server.py"}"]\n{policy}'


def meta_of(tool: types.Tool) -> dict[str, Any]:
    return tool.meta or {}


async def test_a_handshake_host_reads_the_view_a_tool_names_through_mcpmux(write_profile: WriteProfile):
    profile = write_profile(app_profile())
    async with host_session(profile) as host:
        with anyio.fail_after(30):
            tools = {t.name: t for t in (await host.list_tools()).tools}
            uri = meta_of(tools["app__weather"])["ui"]["resourceUri"]
            read = await host.read_resource(uri)
            listed = {str(r.uri): r for r in (await host.list_resources()).resources}
    assert uri == EXPOSED_VIEW
    assert meta_of(tools["app__weather"])["ui"]["visibility"] == ["model", "app"]
    assert meta_of(tools["app__refresh"])["ui"] == {"resourceUri": EXPOSED_VIEW, "visibility": ["app"]}
    assert meta_of(tools["app__legacy_chart"]) == {"ui/resourceUri": EXPOSED_VIEW}
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert (str(content.uri), content.mime_type) == (EXPOSED_VIEW, APP_MIME)
    assert "sunny" in content.text
    assert content.meta == {"ui": {"csp": {"connectDomains": ["https://api.example"]}}}
    assert listed[EXPOSED_VIEW].mime_type == APP_MIME


async def test_a_call_result_names_the_view_by_its_exposed_uri(write_profile: WriteProfile):
    profile = write_profile(app_profile())
    async with host_session(profile) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("app__open_view", {})
            links = [b for b in result.content if isinstance(b, types.ResourceLink)]
            read = await host.read_resource(str(links[0].uri))
    assert result.meta == {"ui": {"resourceUri": EXPOSED_VIEW, "visibility": ["model"]}}
    assert [(str(link.uri), link.mime_type) for link in links] == [(EXPOSED_VIEW, APP_MIME)]
    assert str(read.contents[0].uri) == EXPOSED_VIEW


async def test_the_apps_own_calls_by_exposed_name_are_governed_by_policy(write_profile: WriteProfile):
    profile = write_profile(app_profile('[policy]\ndeny = ["app__refresh"]\n'))
    async with host_session(profile) as host:
        with anyio.fail_after(30):
            names = {t.name for t in (await host.list_tools()).tools}
            refused = await host.call_tool("app__refresh", {})
            weather = await host.call_tool("app__weather", {"city": "Oslo"})
    assert "app__refresh" not in names
    assert refused.is_error
    assert 'policy.deny[0] "app__refresh"' in str(refused.content[0])
    assert not weather.is_error


async def test_a_resource_policy_over_the_exposed_ui_uri_refuses_the_view(write_profile: WriteProfile):
    profile = write_profile(app_profile('[policy.resources]\ndeny = ["ui://app.mcpmux/*"]\n'))
    async with host_session(profile) as host:
        with anyio.fail_after(30), pytest.raises(Exception, match="not allowed"):
            await host.read_resource(EXPOSED_VIEW)


async def test_a_2026_host_reads_the_view_a_tool_names_through_mcpmux(write_profile: WriteProfile):
    profile = write_profile(app_profile())
    async with Client(serve_params(profile), mode="auto") as host:
        with anyio.fail_after(30):
            tools = {t.name: t for t in (await host.list_tools()).tools}
            uri = meta_of(tools["app__weather"])["ui"]["resourceUri"]
            read = await host.read_resource(uri)
            called = await host.call_tool("app__weather", {"city": "Oslo"})
    assert uri == EXPOSED_VIEW
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    assert (str(content.uri), content.mime_type) == (EXPOSED_VIEW, APP_MIME)
    assert not called.is_error
