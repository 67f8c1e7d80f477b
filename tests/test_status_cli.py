"""`mcpmux status` and `mcpmux logs` run as a user runs them, against a real control endpoint and real log files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpmux.control import ControlServer, endpoint_path
from mcpmux.paths import state_paths
from tests.conftest import REPO

pytestmark = pytest.mark.anyio

SAMPLE: dict[str, Any] = {
    "pid": os.getpid(),
    "profile": "work",
    "host": "claude-code",
    "started_at": "2026-01-01T10:00:00.000Z",
    "servers": [
        {
            "name": "git",
            "status": "running",
            "protocol": "2026-07-28",
            "pid": 4242,
            "uptime_seconds": 3725.4,
            "restarts": 1,
            "last_error": None,
            "log_path": "/state/logs/git.log",
            "tools": 12,
        },
        {
            "name": "flaky",
            "status": "failed",
            "protocol": None,
            "pid": None,
            "uptime_seconds": None,
            "restarts": 5,
            "last_error": "exited with code 7",
            "log_path": "/state/logs/flaky.log",
            "tools": 0,
        },
    ],
}


async def sample_status(_params: dict[str, Any]) -> dict[str, Any]:
    return SAMPLE


async def mcpmux(*args: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI in a subprocess (MCPMUX_HOME comes from the autouse fixture), while this loop serves the endpoint."""
    with anyio.fail_after(60):
        return await anyio.run_process(
            [sys.executable, "-m", "mcpmux", *args], cwd=REPO, check=False, env={**os.environ, "COLUMNS": "200"}
        )


@asynccontextmanager
async def serve_endpoint() -> AsyncGenerator[Path]:
    async with anyio.create_task_group() as tg:
        path = await tg.start(ControlServer({"status": sample_status}).serve)
        assert path is not None
        yield path
        tg.cancel_scope.cancel()


async def test_status_shows_each_downstream_of_a_running_serve():
    async with serve_endpoint():
        done = await mcpmux("status")
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert f"mcpmux serve pid {os.getpid()}" in out
    assert "profile work" in out and "host claude-code" in out
    git = next(line for line in out.splitlines() if " git " in line)
    flaky = next(line for line in out.splitlines() if " flaky " in line)
    for expected in ("running", "2026-07-28", "4242", "1h02m", "12", "/state/logs/git.log"):
        assert expected in git
    for expected in ("failed", "5", "exited with code 7", "/state/logs/flaky.log"):
        assert expected in flaky


async def test_status_json_prints_every_serves_reply_in_one_versioned_object():
    async with serve_endpoint():
        done = await mcpmux("status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"version": 1, "active": None, "serves": [SAMPLE]}


async def test_status_with_no_serve_running_says_so_and_json_has_no_serves():
    table = await mcpmux("status")
    as_json = await mcpmux("status", "--json")
    assert table.returncode == 0 and as_json.returncode == 0
    assert b"no mcpmux serve is running" in table.stderr
    assert table.stdout == b""
    assert json.loads(as_json.stdout)["serves"] == []


async def test_status_names_the_active_profile_by_the_path_a_serve_started_anywhere_would_use(tmp_path: Path):
    from mcpmux.profile.lookup import set_active_profile

    none_yet = await mcpmux("status")
    assert b"active profile: none (choose one with `mcpmux profile use NAME`" in none_yet.stderr
    profile = tmp_path / "project" / "profiles" / "work.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text('[servers.t]\ncommand = "x"\n')
    set_active_profile("work", cwd=tmp_path / "project")
    chosen = await mcpmux("status")  # run from the repository, not the project
    assert f"active profile: work ({profile})" in chosen.stderr.decode()


async def test_status_exits_1_naming_a_live_serve_whose_endpoint_does_not_answer():
    path = endpoint_path()
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # bound but never listening: connections are refused
        done = await mcpmux("status")
    assert done.returncode == 1
    assert f"mcpmux serve (pid {os.getpid()}) is not listening on {path}" in done.stderr.decode()


@pytest.fixture
def server_log(mcpmux_home: Path) -> Path:
    # The log a serve of the profile `logs` looks at (none active: ./profiles/demo.toml) would write.
    log = state_paths().server_log(REPO / "profiles" / "demo.toml", "git", pid=1)
    log.parent.mkdir(parents=True)
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 101)))
    return log


async def test_logs_prints_the_last_lines_of_a_downstreams_stderr_log(server_log: Path):
    default = await mcpmux("logs", "git")
    three = await mcpmux("logs", "git", "-n", "3")
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines() == [b"line %d" % i for i in range(51, 101)]
    assert three.stdout == b"line 98\nline 99\nline 100\n"


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("nope", "no log for server 'nope' "),
        ("../audit", "'../audit' is not a server name"),
    ],
)
async def test_logs_of_an_unknown_or_invalid_server_exits_1_with_the_reason(server: str, expected: str):
    done = await mcpmux("logs", server)
    assert done.returncode == 1
    assert expected in done.stderr.decode()


async def test_logs_follow_prints_lines_as_they_are_appended(server_log: Path):
    async with await anyio.open_process(
        [sys.executable, "-m", "mcpmux", "logs", "git", "-f", "-n", "1"], cwd=REPO
    ) as proc:
        assert proc.stdout is not None
        try:
            seen = b""
            with anyio.fail_after(30):
                while b"line 100\n" not in seen:
                    seen += await proc.stdout.receive()
                with server_log.open("ab") as f:
                    f.write(b"appended later\n")
                while b"appended later\n" not in seen:
                    seen += await proc.stdout.receive()
        finally:
            proc.terminate()
            with anyio.fail_after(10):
                await proc.wait()
    assert seen == b"line 100\nappended later\n"
