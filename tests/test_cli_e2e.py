"""The CLI as a user runs it: real subprocesses, the bundled demo profile, secrets, signals, a clean stdout."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from tests.conftest import REPO, fixture_server_toml, host_session, processes_marked_by
from tests.e2e_helpers import every_log, serve_pid, wait_for_exit

WriteProfile = Callable[..., Path]


def mcpmux(*args: str, stdin: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpmux", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_tools_on_the_demo_profile_lists_namespaced_tools_and_hides_git_writes():
    done = mcpmux("tools", "--profile", "demo", "--trust")
    assert done.returncode == 0, done.stderr
    assert "time__get_current_time" in done.stdout
    assert "git__git_status" in done.stdout
    assert "git__git_commit" not in done.stdout
    assert "hidden by policy" in done.stdout


def test_call_prints_a_result_and_a_denied_call_exits_1_naming_the_rule():
    ok = mcpmux("call", "time__get_current_time", '{"timezone": "UTC"}', "--profile", "demo", "--trust")
    denied = mcpmux("call", "git__git_commit", "repo_path=.", "message=x", "--profile", "demo", "--trust")
    assert ok.returncode == 0, ok.stderr
    assert '"timezone": "UTC"' in ok.stdout
    assert denied.returncode == 1
    assert 'policy.deny[1] "git__git_commit"' in denied.stdout


@pytest.fixture
def secret_name() -> Iterator[str]:
    name = f"test-token-{uuid.uuid4().hex[:8]}"
    yield name
    mcpmux("secret", "delete", name)


@pytest.mark.anyio
async def test_a_stored_secret_reaches_only_its_downstream_and_never_the_audit_log(
    write_profile: WriteProfile, mcpmux_home: Path, secret_name: str
):
    value = f"s3cr3t-{uuid.uuid4().hex}"
    stored = mcpmux("secret", "set", secret_name, stdin=value + "\n")
    assert stored.returncode == 0, stored.stderr
    profile = write_profile(
        fixture_server_toml("alpha", env=f'{{ API_TOKEN = {{ secret = "{secret_name}" }} }}')
        + fixture_server_toml("beta")
    )
    async with host_session(profile) as host:
        seen = await host.call_tool("alpha__show_env", {"name": "API_TOKEN"})
        other = await host.call_tool("beta__show_env", {"name": "API_TOKEN"})
    assert other.content[0].model_dump()["text"] == "<unset>"
    # The value reached the downstream, and the gateway redacted it on the way back to the host.
    assert seen.content[0].model_dump()["text"] == f"[redacted:{secret_name}]"
    for path in [mcpmux_home / "state" / "audit.jsonl", *every_log(mcpmux_home), profile]:
        assert value not in path.read_text()


def test_a_missing_secret_fails_only_its_downstream_with_the_fix(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(
        fixture_server_toml("alpha", env='{ API_TOKEN = { secret = "never-stored-token" } }')
        + fixture_server_toml("beta")
    )
    done = mcpmux("tools", "--profile", str(profile))
    assert "beta__echo" in done.stdout
    assert "mcpmux secret set never-stored-token" in done.stderr
    assert done.returncode == 1


@pytest.mark.anyio
async def test_sigterm_ends_serve_and_every_downstream(write_profile: WriteProfile, mcpmux_home: Path):
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        await proc.stdin.send(_initialize_line() + _line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        with anyio.fail_after(30):
            replies = await _read_replies(proc.stdout, 2)
        assert len(replies[1]["result"]["tools"]) >= 18
        pid = serve_pid(mcpmux_home)
        tree = processes_marked_by(pid)
        assert len(tree) == 2
        proc.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            code = await proc.wait()
        for child in tree:
            await wait_for_exit(child)
    assert code == 0
    assert processes_marked_by(pid) == []


@pytest.mark.anyio
async def test_serve_writes_nothing_but_json_rpc_to_stdout(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("broken", "--fail-start"))
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)], cwd=REPO
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        params = {"name": "alpha__echo", "arguments": {"text": "x"}}
        call: dict[str, object] = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}
        await proc.stdin.send(
            _initialize_line()
            + _line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            + _line(call)
            + b"this is not json\n"
        )
        with anyio.fail_after(30):
            replies = await _read_replies(proc.stdout, 4)
        await proc.stdin.aclose()
        with anyio.fail_after(15):
            rest = b"".join([chunk async for chunk in proc.stdout])
            await proc.wait()
    by_id = {r.get("id"): r for r in replies}
    assert set(by_id) == {1, 2, 3, None}
    assert by_id[None]["error"] == {"code": -32700, "message": "parse error: a line that is not JSON"}
    assert by_id[3]["result"]["content"] == [{"type": "text", "text": "x"}]
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    assert rest == b""


def _line(message: dict[str, object]) -> bytes:
    return orjson.dumps(message) + b"\n"


def _initialize_line() -> bytes:
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}}
    return _line({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}) + _line(
        {"jsonrpc": "2.0", "method": "notifications/initialized"}
    )


async def _read_replies(stream: anyio.abc.ByteReceiveStream, count: int) -> list[dict[str, Any]]:
    """Read JSON-RPC lines until `count` responses arrived; notifications are skipped."""
    buffer = b""
    replies: list[dict[str, Any]] = []
    while len(replies) < count:
        buffer += await stream.receive()
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            message = orjson.loads(line)
            if "id" in message:
                replies.append(message)
    return replies
