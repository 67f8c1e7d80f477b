"""The whole protocol through `mcpmux serve`: prompts, resources, completions, notifications, server requests."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext, SamplingFnT
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.conftest import FIXTURES, host_session, serve_params
from tests.e2e_helpers import ListChanged, exchange
from tests.test_third_party_e2e import everything_bin

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
CATALOG_SERVER = FIXTURES / "catalog_server.py"


def catalog_server(name: str, *settings: str) -> str:
    lines = [f"[servers.{name}]", f'command = "{sys.executable}"', f'args = ["{CATALOG_SERVER}", "--tag", "{name}"]']
    return "\n".join([*lines, *settings]) + "\n"


def text(result: types.CallToolResult | types.ReadResourceResult) -> str:
    if isinstance(result, types.ReadResourceResult):
        block = result.contents[0]
        assert isinstance(block, types.TextResourceContents)
        return block.text
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_same_uri_on_two_servers_never_collides_and_reads_reach_the_owner(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one") + catalog_server("two"))
    async with host_session(profile) as host:
        uris = sorted(str(r.uri) for r in (await host.list_resources()).resources)
        templates = sorted(t.uri_template for t in (await host.list_resource_templates()).resource_templates)
        one = await host.read_resource("mcpmux://one/fixture://greeting")
        two = await host.read_resource("mcpmux://two/fixture://greeting")
        item = await host.read_resource("mcpmux://two/fixture://items/7")
    assert uris == ["mcpmux://one/fixture://greeting", "mcpmux://two/fixture://greeting"]
    assert templates == ["mcpmux://one/fixture://items/{item}", "mcpmux://two/fixture://items/{item}"]
    assert (text(one), text(two), text(item)) == ("hello from one", "hello from two", "item 7 from two")
    assert str(two.contents[0].uri) == "mcpmux://two/fixture://greeting"


async def test_prompts_are_namespaced_and_get_is_routed_with_arguments(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one") + catalog_server("two"))
    async with host_session(profile) as host:
        names = sorted(p.name for p in (await host.list_prompts()).prompts)
        prompt = await host.get_prompt("two__greet", {"name": "Ada"})
    assert names == ["one__greet", "two__greet"]
    content = prompt.messages[0].content
    assert isinstance(content, types.TextContent)
    assert content.text == "Say hello to Ada (two)."


async def test_a_downstream_list_changed_updates_the_catalog_and_reaches_the_host(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    changed = ListChanged()
    async with host_session(profile, message_handler=changed) as host:
        await host.list_tools()
        await host.call_tool("one__add_tool", {"name": "fresh"})
        # Start-up may have sent list_changed too: wait for the one that brings the new tool.
        while "one__fresh" not in (names := {t.name for t in (await host.list_tools()).tools}):
            await changed.wait()
        result = await host.call_tool("one__fresh", {})
    assert "one__fresh" in names
    assert text(result) == "fresh from one"


async def test_downstream_log_messages_reach_the_host_tagged_with_the_server(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    logged: list[types.LoggingMessageNotificationParams] = []
    got = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)
        got.set()

    async with host_session(profile, logging_callback=on_log) as host:
        with pytest.warns(MCPDeprecationWarning):  # the SDK flags logging as a legacy-era feature
            await host.set_logging_level("debug")  # pyright: ignore[reportDeprecated]
        await host.call_tool("one__log_something", {"message": "disk nearly full"})
        with anyio.fail_after(10):
            await got.wait()
    assert (logged[0].logger, logged[0].level, logged[0].data) == ("one/catalog", "warning", "disk nearly full")


async def test_resource_updates_reach_the_host_with_the_uri_it_knows(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    updated: list[str] = []
    got = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            got.set()

    async with host_session(profile, message_handler=on_message) as host:
        await host.call_tool("one__touch", {})
        with anyio.fail_after(10):
            await got.wait()
    assert updated == ["mcpmux://one/fixture://greeting"]


async def test_a_server_without_a_namespace_keeps_its_names_and_uris(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one", "namespace = false") + catalog_server("two", 'namespace = "b"'))
    async with host_session(profile) as host:
        tools = {t.name for t in (await host.list_tools()).tools}
        prompts = {p.name for p in (await host.list_prompts()).prompts}
        plain = await host.read_resource("fixture://greeting")
        item = await host.read_resource("fixture://items/3")
    assert {"add_tool", "b__add_tool"} <= tools
    assert prompts == {"greet", "b__greet"}
    assert (text(plain), text(item)) == ("hello from one", "item 3 from one")


async def test_an_unknown_resource_is_a_protocol_error_naming_it(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    async with host_session(profile) as host:
        with pytest.raises(MCPError) as caught:
            await host.read_resource("mcpmux://nobody/fixture://greeting")
        await host.send_ping()
    assert "mcpmux://nobody/fixture://greeting" in caught.value.message


def everything_profile(name: str = "every") -> str:
    return f'[servers.{name}]\ncommand = "{everything_bin()}"\nargs = ["stdio"]\n'


def sampler(answer: str, asked: list[types.CreateMessageRequestParams]) -> SamplingFnT:
    """A host's sampling callback: records each request and answers `answer`."""

    async def sample(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.append(params)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=answer), model="test-model"
        )

    return sample


async def test_sampling_requests_reach_a_host_that_offers_sampling(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    asked: list[types.CreateMessageRequestParams] = []
    sample = sampler("sampled by the host", asked)

    async with host_session(profile, sampling_callback=sample) as host:
        with anyio.fail_after(20):
            result = await host.call_tool("every__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
    assert not result.is_error
    assert "sampled by the host" in text(result)
    assert len(asked) == 1


async def test_sampling_from_a_downstream_fails_cleanly_when_the_host_cannot_sample(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    async with host_session(profile) as host:
        with anyio.fail_after(20):
            result = await host.call_tool("every__trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
        still = await host.call_tool("every__echo", {"message": "alive"})
    assert result.is_error
    assert text(still) == "Echo: alive"


async def test_completions_are_routed_for_prompt_arguments(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    async with host_session(profile) as host:
        result = await host.complete(
            types.PromptReference(type="ref/prompt", name="every__completable-prompt"),
            {"name": "department", "value": "E"},
        )
    assert "Engineering" in result.completion.values


async def test_elicitation_requests_reach_the_host_and_its_answer_returns(write_profile: WriteProfile):
    profile = write_profile(everything_profile())

    async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with host_session(profile, elicitation_callback=elicit) as host:
        names = {t.name for t in (await host.list_tools()).tools}
        assert "every__trigger-elicitation-request" in names
        with anyio.fail_after(20):
            result = await host.call_tool("every__trigger-elicitation-request", {})
    assert not result.is_error
    assert "decline" in text(result).lower()


async def test_roots_come_from_the_host_unless_the_profile_pins_them(write_profile: WriteProfile, tmp_path: Path):
    pinned = tmp_path / "pinned"
    pinned.mkdir()
    profile = write_profile(everything_profile() + everything_profile("pin") + f'roots = ["{pinned}"]\n')

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(
            roots=[types.Root.model_validate({"uri": "file:///host/root", "name": "host-root"})]
        )

    async with host_session(profile, list_roots_callback=roots) as host:
        with anyio.fail_after(20):
            from_host = await host.call_tool("every__get-roots-list", {})
            from_profile = await host.call_tool("pin__get-roots-list", {})
    assert "file:///host/root" in text(from_host)
    assert pinned.as_uri() in text(from_profile)
    assert "file:///host/root" not in text(from_profile)


async def test_a_2026_host_negotiates_the_modern_era_and_calls_through_the_gateway(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    async with Client(serve_params(profile), mode="auto") as host:
        tools = {t.name for t in (await host.list_tools()).tools}
        result = await host.call_tool("one__log_something", {"message": "modern"})
        assert host.session.protocol_version == "2026-07-28"
    assert "one__add_tool" in tools
    assert text(result) == "logged"


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_hosts_of_every_handshake_version_are_served_in_their_version(write_profile: WriteProfile, version: str):
    profile = write_profile(catalog_server("one"))
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "old-host", "version": "1"}}
    call: dict[str, Any] = {"name": "one__touch", "arguments": {}}
    lines: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call},
    ]
    replies = await exchange(profile, lines, answers=2)
    assert replies[1]["result"]["protocolVersion"] == version
    assert replies[2]["result"]["content"] == [{"type": "text", "text": "touched"}]


async def test_a_2026_host_hears_of_catalog_changes_on_its_listen_stream(write_profile: WriteProfile):
    profile = write_profile(catalog_server("one"))
    async with Client(serve_params(profile), mode="auto") as host:
        await host.list_tools()
        async with host.listen(tools_list_changed=True) as events:
            await host.call_tool("one__add_tool", {"name": "fresh"})
            with anyio.fail_after(20):
                async for _event in events:
                    if "one__fresh" in {t.name for t in (await host.list_tools()).tools}:
                        break
        result = await host.call_tool("one__fresh", {})
    assert text(result) == "fresh from one"


async def test_resource_links_in_tool_results_name_uris_the_host_can_read_back(write_profile: WriteProfile):
    profile = write_profile(everything_profile())
    async with host_session(profile) as host:
        result = await host.call_tool("every__get-resource-links", {"count": 2})
        links = [b for b in result.content if isinstance(b, types.ResourceLink)]
        read = await host.read_resource(str(links[0].uri))
    assert len(links) == 2
    assert all(str(link.uri).startswith("mcpmux://every/") for link in links)
    assert str(read.contents[0].uri) == str(links[0].uri)
