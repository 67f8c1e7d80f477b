"""`echo '<requests>' | mcpmux serve`: input that ends before serve has even started reading is still answered,
in full, before serve exits, however long its server takes to start; from a pipe, from a regular file, and in
either era."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.conftest import FIXTURES, REPO
from tests.e2e_helpers import RawHost

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
HELLO = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "echo", "version": "1"}}
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "echo", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


SLOW_START_SECONDS = 3.0
"""Longer than serve ever waited for owed answers once its input ended (2 s): a server fetched by `npx` takes more."""


def slow_server() -> str:
    argv = [str(FIXTURES / "faulty_server.py"), "--name", "slow", "--slow-start", str(SLOW_START_SECONDS)]
    args = ", ".join(f'"{a}"' for a in argv)
    return f'[servers.slow]\ncommand = "{sys.executable}"\nargs = [{args}]\n'


def handshake_requests() -> list[dict[str, Any]]:
    call = {"name": "slow__echo", "arguments": {"text": "hi"}}
    return [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call},
    ]


def envelope_requests() -> list[dict[str, Any]]:
    call = {"name": "slow__echo", "arguments": {"text": "hi"}, "_meta": ENVELOPE}
    return [
        {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": ENVELOPE}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": ENVELOPE}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call},
    ]


def lines(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(m) + b"\n" for m in messages)


def assert_all_answered(messages: list[dict[str, Any]]) -> None:
    answers = {m["id"]: m for m in messages if "id" in m and "method" not in m}
    assert sorted(answers) == [1, 2, 3], messages
    assert "slow__echo" in [tool["name"] for tool in answers[2]["result"]["tools"]]
    assert answers[3]["result"]["content"][0]["text"] == "hi"


@pytest.mark.parametrize("requests", [handshake_requests, envelope_requests], ids=["handshake", "2026-07-28"])
async def test_requests_piped_in_and_closed_at_once_are_all_answered_before_serve_exits(
    write_profile: WriteProfile, requests: Callable[[], list[dict[str, Any]]]
):
    profile = write_profile(slow_server())
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        host = RawHost(proc)
        assert proc.stdin is not None
        await proc.stdin.send(lines(requests()))
        await host.close()
        messages = await host.until_eof()
        with anyio.fail_after(10):
            code = await proc.wait()
    assert_all_answered(messages)
    assert code == 0


async def test_requests_read_from_a_file_are_all_answered_before_serve_exits(
    write_profile: WriteProfile, tmp_path: Path
):
    profile = write_profile(slow_server())
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(lines(handshake_requests()))
    with requests.open("rb") as stdin:
        async with await anyio.open_process(
            [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO, stdin=stdin
        ) as proc:
            assert proc.stdout is not None
            out = b""
            with anyio.fail_after(30):
                async for chunk in proc.stdout:
                    out += chunk
                code = await proc.wait()
    assert_all_answered([orjson.loads(line) for line in out.splitlines()])
    assert code == 0
