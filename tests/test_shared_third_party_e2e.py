"""End to end, shared mode with a real third-party server: `@modelcontextprotocol/server-everything` (npm).

Several SDK hosts attach to one gateway; the server runs once, and what it sends back (results,
progress, its sampling requests) reaches the host whose call it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from tests.conftest import processes_marked_by
from tests.e2e_helpers import gateway_pids
from tests.test_protocol_e2e import everything_profile, sampler
from tests.test_shared_e2e import shared_host, text_of

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


async def test_hosts_share_one_everything_server_and_each_gets_its_own_progress_and_sampling(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(everything_profile())
    asked: dict[str, list[types.CreateMessageRequestParams]] = {"a": [], "b": []}
    heard: dict[str, list[float]] = {"a": [], "b": []}
    sampled: dict[str, str] = {}
    echoed: dict[str, str] = {}
    processes: list[int] = []
    both_listed = [anyio.Event(), anyio.Event()]
    both_done = [anyio.Event(), anyio.Event()]
    a_sampled = anyio.Event()

    async def host(label: str, index: int) -> None:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            heard[label].append(progress)

        sample = sampler(f"answer of {label}", asked[label])
        async with shared_host(profile, sampling_callback=sample) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"every__echo", "every__trigger-long-running-operation"} <= names
            both_listed[index].set()
            for event in both_listed:
                await event.wait()
            echoed[label] = text_of(await session.call_tool("every__echo", {"message": label}))
            arguments = {"duration": 1, "steps": 3}
            await session.call_tool("every__trigger-long-running-operation", arguments, progress_callback=on_progress)
            both_done[index].set()
            for event in both_done:
                await event.wait()
            if label == "a":
                processes.extend(processes_marked_by(gateway_pids(mcpmux_home)[0]))
            else:  # one host at a time: while two hosts call it, a shared server's requests are refused (README)
                await a_sampled.wait()
            result = await session.call_tool("every__trigger-sampling-request", {"prompt": label, "maxTokens": 5})
            sampled[label] = " ".join(b.text for b in result.content if isinstance(b, types.TextContent))
            a_sampled.set()

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            tg.start_soon(host, "a", 0)
            tg.start_soon(host, "b", 1)
    assert echoed == {"a": "Echo: a", "b": "Echo: b"}
    assert heard == {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}
    assert len(processes) == 1  # one everything server for both hosts
    assert len(gateway_pids(mcpmux_home)) == 1
    assert "answer of a" in sampled["a"] and "answer of b" in sampled["b"]
    for label, other in (("a", "b"), ("b", "a")):  # each host was asked its own question, once
        (question,) = [p.messages[0].content for p in asked[label]]
        assert isinstance(question, types.TextContent)
        assert question.text.endswith(f": {label}") and not question.text.endswith(f": {other}")
