"""Downstream logs never collide: one per profile and serve process, and `mcpmux logs` finds the right one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mcpmux.downstream.logs import prune_ended, rotated_path
from tests.conftest import REPO, fixture_server_toml, host_session

WriteProfile = Callable[..., Path]
UNUSED_PID = 4_194_304 + 1000  # above Linux's largest pid_max: never a running process


def mcpmux(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpmux", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def logs_starting(mcpmux_home: Path, server: str) -> dict[Path, int]:
    """Every file under the state folder's logs → how many starts of `server` it records."""
    mark = f"--- mcpmux: starting {server}:"
    found = [p for p in (mcpmux_home / "state" / "logs").rglob("*") if p.is_file()]
    return {p: text.count(mark) for p in found if (text := p.read_text(errors="replace")).count(mark)}


@pytest.mark.anyio
async def test_two_serves_of_one_profile_each_write_their_own_log_and_status_names_it(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with host_session(profile) as first, host_session(profile) as second:
        await first.list_tools()  # both have started alpha
        await second.list_tools()
        status = mcpmux("status", "--json")
    assert status.returncode == 0, status.stderr
    shown = {Path(s["log_path"]) for serve in orjson.loads(status.stdout)["serves"] for s in serve["servers"]}
    started = logs_starting(mcpmux_home, "alpha")
    assert len(started) == 2, started  # not one file both serves append to
    assert set(started.values()) == {1}
    assert shown == set(started)


def test_logs_shows_the_active_profiles_server_and_p_chooses_another(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    # Two profiles, each with a server named alpha, told apart by the arguments its start line records.
    one = write_profile(fixture_server_toml("alpha", "--name", "from-one"), name="one")
    two = write_profile(fixture_server_toml("alpha", "--name", "from-two"), name="two")
    for profile in (one, two):
        done = mcpmux("tools", "--profile", str(profile))
        assert done.returncode == 0, done.stderr
    assert len(logs_starting(mcpmux_home, "alpha")) == 2
    assert mcpmux("profile", "use", str(one)).returncode == 0
    active = mcpmux("logs", "alpha")
    chosen = mcpmux("logs", "alpha", "-p", str(two))
    assert active.returncode == 0, active.stderr
    assert "from-one" in active.stdout
    assert "from-two" not in active.stdout
    assert chosen.returncode == 0, chosen.stderr
    assert "from-two" in chosen.stdout
    assert "from-one" not in chosen.stdout
    assert "==> " in chosen.stderr  # which file it is


def test_logs_p_for_a_profile_whose_server_never_ran_says_so(write_profile: WriteProfile) -> None:
    ran = write_profile(fixture_server_toml("alpha"), name="ran")
    idle = write_profile(fixture_server_toml("alpha"), name="idle")
    assert mcpmux("tools", "--profile", str(ran)).returncode == 0
    done = mcpmux("logs", "alpha", "-p", str(idle))
    assert done.returncode == 1
    assert f"no log for server 'alpha' of profile {idle}" in done.stderr


def test_a_start_keeps_the_logs_of_only_the_newest_ended_serves(tmp_path: Path) -> None:
    ended = [tmp_path / f"alpha.{UNUSED_PID + n}.log" for n in range(5)]
    for n, path in enumerate(ended):
        path.write_text("old\n")
        os.utime(path, (1000 + n, 1000 + n))  # the higher n, the newer
    rotated_path(ended[0]).write_text("older\n")
    running = tmp_path / f"alpha.{os.getppid()}.log"  # a serve still running: never removed
    other = tmp_path / f"beta.{UNUSED_PID}.log"  # another server's
    own = tmp_path / f"alpha.{os.getpid()}.log"
    for path in (running, other):
        path.write_text("kept\n")
        os.utime(path, (1, 1))
    prune_ended(own, keep=3)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*(p.name for p in ended[2:]), running.name, other.name])
