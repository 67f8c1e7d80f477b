"""Supervision through `mcpmux serve`: output limits, lazy start, idle stop, hangs, garbage, load with a crash."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from tests.conftest import FIXTURES, fixture_server_toml, host_session, processes_marked_by
from tests.e2e_helpers import audit_events, serve_pid, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
FAULTY = FIXTURES / "faulty_server.py"


def faulty(name: str, *flags: str, settings: str = "") -> str:
    args = ", ".join(f'"{a}"' for a in [str(FAULTY), "--name", name, *flags])
    return f'[servers.{name}]\ncommand = "{sys.executable}"\nargs = [{args}]\n{settings}\n'


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_a_result_over_max_output_bytes_is_cut_with_a_note(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(fixture_server_toml("alpha", max_output_bytes="4096"))
    async with host_session(profile) as host:
        result = await host.call_tool("alpha__blob", {"size": 200_000})
    assert result.is_error  # structured content could not be kept whole, and hosts validate it
    assert len(text_of(result)) < 4096
    assert "over its max_output_bytes of 4096" in text_of(result)
    assert audit_events(mcpmux_home, "tool_call")[-1]["truncated"] is True


async def test_a_lazy_server_is_listed_from_cache_and_starts_on_the_first_call(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha", start='"lazy"'))
    async with host_session(profile) as host:  # no cache yet: it starts once to learn its catalog
        first = {t.name for t in (await host.list_tools()).tools}
    async with host_session(profile) as host:
        second = {t.name for t in (await host.list_tools()).tools}
        assert processes_marked_by(serve_pid(mcpmux_home)) == []
        result = await host.call_tool("alpha__echo", {"text": "woken"})
        assert len(processes_marked_by(serve_pid(mcpmux_home))) == 1
    assert "alpha__echo" in first
    assert second == first
    assert text_of(result) == "woken"


async def test_an_idle_lazy_server_stops_and_starts_again_on_the_next_call(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha", start='"lazy"', idle_timeout_seconds="1"))
    async with host_session(profile) as host:
        await host.call_tool("alpha__echo", {"text": "one"})
        (child,) = processes_marked_by(serve_pid(mcpmux_home))
        await wait_for_exit(child, seconds=15)
        again = await host.call_tool("alpha__echo", {"text": "two"})
    assert text_of(again) == "two"


async def test_a_frozen_server_fails_its_health_check_and_is_restarted(write_profile: WriteProfile):
    profile = write_profile(faulty("frozen", settings="health_interval_seconds = 0.5\ntimeout_seconds = 1"))
    async with host_session(profile) as host:
        with anyio.fail_after(20):
            frozen = await host.call_tool("frozen__freeze", {})
            while True:  # the restart is asynchronous; poll its observable effect, bounded
                result = await host.call_tool("frozen__echo", {"text": "thawed"})
                if not result.is_error:
                    break
                await anyio.sleep(0.2)
    assert frozen.is_error
    assert text_of(result) == "thawed"


async def test_garbage_on_a_downstreams_stdout_affects_nothing_else(write_profile: WriteProfile):
    profile = write_profile(faulty("messy", "--garbage") + fixture_server_toml("alpha"))
    async with host_session(profile) as host:
        messy = await host.call_tool("messy__echo", {"text": "through the noise"})
        clean = await host.call_tool("alpha__echo", {"text": "clean"})
    assert text_of(messy) == "through the noise"
    assert text_of(clean) == "clean"


async def test_five_hundred_concurrent_calls_each_get_one_answer_while_a_server_crashes(write_profile: WriteProfile):
    names = [f"s{i}" for i in range(5)]
    profile = write_profile("".join(fixture_server_toml(n) for n in names))
    answers: dict[int, types.CallToolResult] = {}
    async with host_session(profile) as host:
        await host.list_tools()

        async def one(i: int) -> None:
            server = names[i % 5]
            if i == 254:
                answers[i] = await host.call_tool("s4__crash", {})
            else:
                answers[i] = await host.call_tool(f"{server}__echo", {"text": str(i)})

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(500):
                    tg.start_soon(one, i)
    assert len(answers) == 500
    healthy = [i for i in answers if names[i % 5] != "s4"]
    wrong = {i: text_of(answers[i]) for i in healthy if text_of(answers[i]) != str(i)}
    assert wrong == {}
    assert answers[254].is_error
    crashed_server = [answers[i] for i in answers if names[i % 5] == "s4" and i != 254]
    assert all(r.is_error or text_of(r).isdigit() for r in crashed_server)
