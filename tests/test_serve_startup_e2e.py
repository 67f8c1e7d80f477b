"""`mcpmux serve` that cannot start, seen from a real SDK host: it answers the handshake (both eras), then says
why and the one command that fixes it, in the log, on `tools/list` and on every `tools/call`; `mcpmux status`
and stderr say the same; it exits as soon as the host closes stdin."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.conftest import REPO, fixture_server_toml
from tests.e2e_helpers import RawHost

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"


@dataclass(frozen=True, slots=True)
class Failure:
    args: list[str]
    """`mcpmux serve`'s arguments."""
    cwd: Path
    says: str
    """What the problem text must contain: the problem."""
    fix: str
    """... and the command that fixes it."""
    env: dict[str, str] = field(default_factory=dict[str, str])


def untrusted(tmp_path: Path, home: Path) -> Failure:
    profile = tmp_path / "project" / "profiles" / "shared.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text(fixture_server_toml("alpha"))  # written, never trusted
    return Failure(["--profile", str(profile)], REPO, "is not trusted yet", f"mcpmux profile trust {profile}")


def missing(tmp_path: Path, home: Path) -> Failure:
    return Failure(["--profile", "nowhere"], tmp_path, "no profile named 'nowhere'", "mcpmux profile list")


def none_chosen(tmp_path: Path, home: Path) -> Failure:
    return Failure([], tmp_path, "no profile given, no active profile set", "mcpmux profile use NAME")


def invalid_toml(tmp_path: Path, home: Path) -> Failure:
    profile = home / "profiles" / "broken.toml"  # the user's own folder: trusted, so only the syntax is wrong
    profile.parent.mkdir(parents=True)
    profile.write_text(fixture_server_toml("alpha") + "[servers.beta\n")
    return Failure(["--profile", "broken"], tmp_path, f"{profile}:4: TOML syntax error", f"mcpmux validate {profile}")


def unsafe_state(tmp_path: Path, home: Path) -> Failure:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o777)
    return Failure(["--profile", "nowhere"], tmp_path, f"{home} is writable by other users", f"chmod go-w {home}")


def unusable_state(tmp_path: Path, home: Path) -> Failure:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    state = blocker / "home" / "state"
    fix = "set MCPMUX_HOME to a folder of yours"
    return Failure(
        ["--profile", "nowhere"], tmp_path, f"mcpmux cannot use {state}", fix, {"MCPMUX_HOME": str(state.parent)}
    )


KINDS: dict[str, Callable[[Path, Path], Failure]] = {
    "untrusted": untrusted,
    "missing": missing,
    "none chosen": none_chosen,
    "invalid TOML": invalid_toml,
    "unsafe state folder": unsafe_state,
    "unusable state folder": unusable_state,
}


def serve_params(failure: Failure) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpmux", "serve", *failure.args],
        env={**os.environ, **failure.env},
        cwd=str(failure.cwd),
    )


class Logs:
    """The host's logging callback: every message, and an event once one has arrived."""

    def __init__(self) -> None:
        self.messages: list[types.LoggingMessageNotificationParams] = []
        self.arrived = anyio.Event()

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        self.messages.append(params)
        self.arrived.set()


def assert_names(text: str, failure: Failure) -> None:
    assert failure.says in text
    assert failure.fix in text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_serve_that_cannot_start_answers_the_host_and_says_why_and_the_fix_on_every_channel(
    tmp_path: Path, mcpmux_home: Path, kind: str, mode: str
):
    failure = KINDS[kind](tmp_path, mcpmux_home)
    logs = Logs()
    log_level: Any = "error" if mode == "auto" else None  # a 2026-07-28 host hears log messages only if it asks
    async with Client(serve_params(failure), mode=mode, logging_callback=logs, log_level=log_level) as host:
        with anyio.fail_after(30):
            assert host.session.protocol_version == (MODERN if mode == "auto" else "2025-11-25")
            assert_names(host.instructions or "", failure)
            with pytest.raises(MCPError) as listing:
                await host.list_tools()
            result = await host.call_tool("alpha__echo", {"text": "hi"})
            await logs.arrived.wait()
    assert_names(listing.value.error.message, failure)
    assert result.is_error
    [block] = result.content
    assert isinstance(block, types.TextContent)
    assert block.text.startswith("tool 'alpha__echo' is unavailable: mcpmux could not start: ")
    assert_names(block.text, failure)
    assert logs.messages[0].level == "error"
    assert_names(str(logs.messages[0].data), failure)


async def test_mcpmux_status_and_stderr_say_what_the_host_is_told(tmp_path: Path, mcpmux_home: Path):
    failure = untrusted(tmp_path, mcpmux_home)
    with (tmp_path / "serve.err").open("wb") as errors:
        async with await anyio.open_process(
            [sys.executable, "-m", "mcpmux", "serve", *failure.args], cwd=failure.cwd, stderr=errors
        ) as proc:
            host = RawHost(proc)
            hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
            await host.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
            answer = await host.reply_to(1)
            status = await anyio.run_process([sys.executable, "-m", "mcpmux", "status"], cwd=REPO, check=False)
            as_json = await anyio.run_process([sys.executable, "-m", "mcpmux", "status", "--json"], check=False)
            await host.close()
            with anyio.fail_after(10):
                code = await proc.wait()
    told = answer["result"]["instructions"]
    assert_names(told, failure)
    assert status.returncode == 1
    assert f"mcpmux serve pid {proc.pid} could not start" in status.stderr.decode()
    assert_names(status.stderr.decode(), failure)
    [entry] = json.loads(as_json.stdout)["serves"]
    assert (entry["pid"], entry["profile"], entry["servers"]) == (proc.pid, None, [])
    assert_names(entry["startup_error"], failure)
    stderr = (tmp_path / "serve.err").read_text()
    assert_names(stderr, failure)
    assert code == 1


async def test_mcpmux_status_names_an_unsafe_state_folder_and_its_fix(tmp_path: Path, mcpmux_home: Path):
    failure = unsafe_state(tmp_path, mcpmux_home)
    status = await anyio.run_process([sys.executable, "-m", "mcpmux", "status"], cwd=REPO, check=False)
    assert status.returncode == 1
    assert_names(status.stderr.decode(), failure)


HELLO = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}


async def test_requests_written_before_stdin_closes_are_answered_however_soon_it_closes(
    tmp_path: Path, mcpmux_home: Path
):
    failure = missing(tmp_path, mcpmux_home)
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", *failure.args], cwd=failure.cwd
    ) as proc:
        host = RawHost(proc)
        await host.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO})
        await host.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await host.send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "a__b"}})
        await host.close()  # at once, as `echo … | mcpmux serve` does: serve may not even have started reading
        messages = await host.until_eof()
        with anyio.fail_after(10):
            code = await proc.wait()
    answers = {m["id"]: m for m in messages if "id" in m and "method" not in m}
    assert sorted(answers) == [1, 2]
    assert_names(answers[1]["result"]["instructions"], failure)
    assert answers[2]["result"]["isError"] is True
    assert code == 1


async def test_a_serve_that_cannot_start_exits_as_soon_as_the_host_closes_stdin(tmp_path: Path, mcpmux_home: Path):
    failure = untrusted(tmp_path, mcpmux_home)
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", *failure.args], cwd=failure.cwd
    ) as proc:
        host = RawHost(proc)
        await host.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO})
        await host.reply_to(1)
        await host.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        closed = time.monotonic()
        await host.close()
        messages = await host.until_eof()
        with anyio.fail_after(10):
            code = await proc.wait()
        took = time.monotonic() - closed
    print(f"\nserve that could not start exited {took:.2f} s after stdin closed")
    assert [m["id"] for m in messages if "error" in m] == [2]
    assert code == 1
    assert took < 2.0  # the SDK's stdio client SIGTERMs a server still running 2 s after closing its stdin
