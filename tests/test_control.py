"""The control endpoint over a real Unix socket: requests, errors, permissions, discovery of running serves."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from mcpmux.control import ControlServer, Endpoint, Handler, endpoint_path, list_endpoints, request
from mcpmux.errors import ControlError

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(handlers: dict[str, Handler]) -> AsyncGenerator[Path]:
    """A real endpoint at this process's default socket path, served until the block ends."""
    async with anyio.create_task_group() as tg:
        started = await tg.start(ControlServer(handlers).serve)
        assert started is not None
        yield started
        tg.cancel_scope.cancel()


async def status(params: dict[str, Any]) -> dict[str, Any]:
    return {"profile": "demo", "servers": [], "echo": params}


async def broken(_params: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("the supervisor is gone")


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(done.stdout)


async def test_a_request_gets_its_handlers_reply_with_the_parameters_passed_through():
    async with running({"status": status}) as path:
        assert path == endpoint_path()
        reply = await request(path, "status", verbose=True)
    assert reply == {"profile": "demo", "servers": [], "echo": {"verbose": True}}


async def test_the_socket_is_owner_only_in_an_owner_only_folder_and_removed_on_exit(mcpmux_home: Path):
    async with running({"status": status}) as path:
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent == mcpmux_home / "state" / "run"
    assert not path.exists()


async def test_ping_is_built_in_and_names_this_process_and_its_ops():
    async with running({"status": status}) as path:
        reply = await request(path, "ping")
    assert reply == {"pid": os.getpid(), "ops": ["ping", "status"]}


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("reload", "unknown op 'reload'; this serve offers: broken, ping, status"),
        ("broken", "op 'broken' failed: the supervisor is gone"),
    ],
)
async def test_an_unknown_op_or_a_failing_handler_is_an_error_reply_and_the_endpoint_keeps_serving(
    op: str, expected: str
):
    async with running({"status": status, "broken": broken}) as path:
        with pytest.raises(ControlError) as caught:
            await request(path, op)
        after = await request(path, "status")
    assert expected in str(caught.value)
    assert f"pid {os.getpid()}" in str(caught.value)
    assert after["profile"] == "demo"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json\n", "one JSON object per line"),
        (b'["status"]\n', 'a string "op"'),
        (b'{"op": 7}\n', 'a string "op"'),
    ],
)
async def test_a_malformed_request_line_gets_an_error_reply_and_the_next_connection_is_served(
    line: bytes, expected: str
):
    async with running({"status": status}) as path:
        async with await anyio.connect_unix(path) as stream:
            await stream.send(line)
            with anyio.fail_after(5):
                received = b"".join([chunk async for chunk in stream])  # the server closes after its reply
        after = await request(path, "status")
    assert expected in orjson.loads(received)["error"]
    assert after["profile"] == "demo"


async def test_a_request_to_an_endpoint_that_does_not_answer_in_time_fails_naming_the_socket():
    never = anyio.Event()

    async def stuck(_params: dict[str, Any]) -> dict[str, Any]:
        await never.wait()
        return {}

    async with running({"status": stuck}) as path:
        with pytest.raises(ControlError, match="did not answer 'status'") as caught:
            await request(path, "status", timeout_seconds=0.2)
    assert caught.value.path == path


async def test_a_request_to_a_socket_nobody_listens_on_says_so(tmp_path: Path):
    with pytest.raises(ControlError, match="is not listening on"):
        await request(tmp_path / "serve-1.sock", "status")


async def test_list_endpoints_finds_running_serves_and_removes_sockets_left_by_dead_ones(mcpmux_home: Path):
    stale = endpoint_path(dead_pid())
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")  # what a SIGKILLed serve leaves behind
    (stale.parent / "unrelated.txt").write_text("kept")
    async with running({"status": status}) as path:
        found = list_endpoints()
    assert found == [Endpoint(os.getpid(), endpoint_path())]
    assert path == endpoint_path()
    assert not stale.exists()
    assert (stale.parent / "unrelated.txt").exists()


def test_list_endpoints_is_empty_before_any_serve_ran():
    assert list_endpoints() == []


async def test_a_socket_path_too_long_for_unix_sockets_leaves_the_gateway_running_without_an_endpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    too_long = tmp_path / ("d" * 60) / ("e" * 60) / "serve-1.sock"
    started: list[Path | None] = []
    async with anyio.create_task_group() as tg:
        started.append(await tg.start(ControlServer({"status": status}).serve, too_long))
    assert started == [None]  # and the task group ended without an exception
    assert "set MCPMUX_HOME to a shorter folder" in caplog.text
