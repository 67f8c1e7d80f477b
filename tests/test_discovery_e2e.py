"""End to end: discovery mode (`expose = "search"`) through `mcpmux serve` with real downstreams.

The host lists three meta-tools; search and describe answer from the tools it may use,
and a call through `mcpmux__call_tool` takes the same relay path (policy, audit) as a
direct call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client

from mcpmux.catalog.search import CALL_TOOL, DESCRIBE_TOOL, META_TOOLS, SEARCH_TOOL, estimate_tokens
from tests.conftest import fixture_server_toml, host_session, serve_params
from tests.e2e_helpers import audit_events

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
DENY = '[policy]\ndeny = ["*__delete_*"]\n'


def search_profile(*servers: str) -> str:
    return 'expose = "search"\n' + "".join(fixture_server_toml(name) for name in servers) + DENY


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def data_of(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def found(result: types.CallToolResult) -> list[str]:
    return [hit["name"] for hit in data_of(result)["tools"]]


def list_size(tools: list[types.Tool]) -> int:
    """Bytes of a `tools/list` result carrying `tools`, as compact JSON."""
    dumped = [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]
    return len(json.dumps({"tools": dumped}, separators=(",", ":"), ensure_ascii=False))


async def test_in_search_mode_the_host_lists_exactly_the_three_meta_tools(write_profile: WriteProfile):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        tools = (await host.list_tools()).tools
    assert tuple(t.name for t in tools) == META_TOOLS
    search = next(t for t in tools if t.name == SEARCH_TOOL)
    assert "alpha (12)" in (search.description or "")  # 13 fixture tools, one denied


async def test_search_finds_a_tool_by_words_of_its_description_and_describe_returns_its_schema(
    write_profile: WriteProfile,
):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        hits = await host.call_tool(SEARCH_TOOL, {"query": "return the text unchanged"})
        described = await host.call_tool(DESCRIBE_TOOL, {"name": "alpha__echo"})
    assert found(hits)[0] == "alpha__echo"
    definition = data_of(described)
    assert definition["name"] == "alpha__echo"
    assert definition["inputSchema"]["properties"]["text"]["type"] == "string"
    assert definition["inputSchema"]["required"] == ["text"]


async def test_call_tool_through_the_meta_tool_reaches_the_downstream_and_is_audited_under_its_name(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        result = await host.call_tool(CALL_TOOL, {"name": "alpha__echo", "arguments": {"text": "via search"}})
        failed = await host.call_tool(CALL_TOOL, {"name": "alpha__fail", "arguments": {"message": "boom"}})
    assert not result.is_error
    assert text_of(result) == "via search"
    assert failed.is_error and "boom" in text_of(failed)
    calls = [(e["exposed"], e["outcome"]) for e in audit_events(mcpmux_home, "tool_call")]
    assert ("alpha__echo", "ok") in calls and ("alpha__fail", "tool_error") in calls


async def test_a_denied_tool_is_not_found_not_described_and_refused_through_the_meta_tool(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        hits = await host.call_tool(SEARCH_TOOL, {"query": "delete everything", "limit": 50})
        described = await host.call_tool(DESCRIBE_TOOL, {"name": "alpha__delete_everything"})
        refused = await host.call_tool(CALL_TOOL, {"name": "alpha__delete_everything"})
        direct = await host.call_tool("alpha__delete_everything", {})
    assert "alpha__delete_everything" not in found(hits)
    assert described.is_error and "no tool named 'alpha__delete_everything'" in text_of(described)
    for result in (refused, direct):
        assert result.is_error
        assert 'not allowed: denied by policy.deny[0] "*__delete_*"' in text_of(result)
    denied = [e for e in audit_events(mcpmux_home, "tool_call") if e["exposed"] == "alpha__delete_everything"]
    assert [e["decision"] for e in denied] == ["denied", "denied"]


async def test_in_search_mode_a_direct_call_of_an_allowed_tool_is_still_served(write_profile: WriteProfile):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        result = await host.call_tool("alpha__echo", {"text": "direct"})
    assert text_of(result) == "direct"


async def test_bad_meta_tool_arguments_are_error_results_the_model_can_read(write_profile: WriteProfile):
    profile = write_profile(search_profile("alpha"))
    async with host_session(profile) as host:
        no_query = await host.call_tool(SEARCH_TOOL, {})
        bad_args = await host.call_tool(CALL_TOOL, {"name": "alpha__echo", "arguments": "text"})
        unknown = await host.call_tool(CALL_TOOL, {"name": "alpha__ecko", "arguments": {}})
    assert no_query.is_error and "needs 'query'" in text_of(no_query)
    assert bad_args.is_error and "'arguments' must be an object" in text_of(bad_args)
    assert unknown.is_error and "did you mean 'alpha__echo'" in text_of(unknown)


async def test_a_2026_host_gets_the_meta_tools_and_calls_through_them(write_profile: WriteProfile):
    profile = write_profile(search_profile("alpha"))
    async with Client(serve_params(profile), mode="auto") as host:
        names = tuple(t.name for t in (await host.list_tools()).tools)
        result = await host.call_tool(CALL_TOOL, {"name": "beta__echo", "arguments": {"text": "x"}})
        echoed = await host.call_tool(CALL_TOOL, {"name": "alpha__echo", "arguments": {"text": "modern"}})
        assert host.session.protocol_version == "2026-07-28"
    assert names == META_TOOLS
    assert result.is_error and "unknown tool 'beta__echo'" in text_of(result)
    assert text_of(echoed) == "modern"


async def test_search_mode_shrinks_the_tools_list_of_a_real_catalog(
    write_profile: WriteProfile, capsys: pytest.CaptureFixture[str]
):
    servers = ("alpha", "beta", "gamma", "delta")
    full = write_profile("".join(fixture_server_toml(name) for name in servers) + DENY, name="full")
    search = write_profile(search_profile(*servers), name="search")
    async with host_session(full) as host:
        every = list((await host.list_tools()).tools)
    async with host_session(search) as host:
        meta = list((await host.list_tools()).tools)
    assert len(every) == 48 and len(meta) == 3  # 4 servers × 13 fixture tools, one denied on each
    sizes = {"all": (list_size(every), estimate_tokens(every)), "search": (list_size(meta), estimate_tokens(meta))}
    with capsys.disabled():
        print(f"\ntools/list of {len(every)} tools (bytes, ~tokens): {sizes}")
    assert sizes["search"][1] < sizes["all"][1] / 3
