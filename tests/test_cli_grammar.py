"""One grammar for the CLI, run as a user runs it (the installed `mcpmux`, a subprocess, stdout a pipe).

`--json` everywhere data is printed (one versioned object, nothing else on stdout), `-p/--profile`
wherever a profile is meant, one time syntax, shell completion, and output that survives a pipe.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcpmux.audit.log import AuditLog
from mcpmux.control import ControlServer
from tests.conftest import FIXTURE_SERVER
from tests.test_cli_main import installed_mcpmux

TIMEOUT = 60.0
WriteProfile = Callable[..., Path]
LONG = "fx__a_tool_name_long_enough_to_be_folded_at_eighty_columns"


def mcpmux(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed entry point with stdout a pipe, as `mcpmux … | cat` runs it, in an 80-column terminal."""
    result = subprocess.run(
        [str(installed_mcpmux()), *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def json_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """stdout as the one JSON object it must be, whose shape is version 1."""
    body = json.loads(result.stdout)
    assert isinstance(body, dict), result.stdout
    assert body["version"] == 1
    return body  # pyright: ignore[reportUnknownVariableType]


def calls(home: Path, *names: str) -> None:
    """A real audit log with one call to each tool, a second ago, and a downstream's start."""
    with AuditLog(home / "state" / "audit.jsonl") as log:
        log.write({"event": "downstream_start", "server": "fx", "pid": 4242})
        for name in names:
            log.write(
                {"event": "tool_call", "exposed": name, "server": "fx", "tool": name.removeprefix("fx__")}
                | {"host": "cursor", "decision": "allowed", "outcome": "ok", "duration_ms": 12.5}
            )


def fixture_profile(write_profile: WriteProfile) -> Path:
    return write_profile(f'[servers.fx]\ncommand = "{sys.executable}"\nargs = ["{FIXTURE_SERVER}"]\n', name="fx")


# ---- output that survives a pipe -------------------------------------------------------------------------------


def test_audit_stats_through_a_pipe_keeps_every_tool_name_on_one_line(tmp_path: Path, mcpmux_home: Path) -> None:
    calls(mcpmux_home, LONG, "fx__echo")
    result = mcpmux("audit", "stats", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert LONG in result.stdout
    assert re.search(rf"│ {LONG} +│ +1 │", result.stdout)


def test_audit_tail_prints_one_line_per_event_that_fits_80_columns(tmp_path: Path, mcpmux_home: Path) -> None:
    calls(mcpmux_home, "fx__echo", "fx__add")
    result = mcpmux("audit", "tail", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(len(line) <= 80 for line in lines), lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  downstream_start fx", lines[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  fx__echo  ok  12\.5 ms  cursor", lines[1])


def test_audit_tail_event_keeps_only_the_events_its_glob_names(tmp_path: Path, mcpmux_home: Path) -> None:
    calls(mcpmux_home, "fx__echo", "fx__add")
    lifecycle = mcpmux("audit", "tail", "--event", "downstream_*", cwd=tmp_path)
    latest = mcpmux("audit", "tail", "--event", "tool_call", "-n", "1", "--json", cwd=tmp_path)
    assert lifecycle.returncode == 0 and latest.returncode == 0, lifecycle.stderr + latest.stderr
    assert [line.split("  ")[1] for line in lifecycle.stdout.splitlines()] == ["downstream_start fx"]
    assert [json.loads(line)["exposed"] for line in latest.stdout.splitlines()] == ["fx__add"]


def test_audit_tail_follow_prints_each_new_event_as_one_line(tmp_path: Path, mcpmux_home: Path) -> None:
    calls(mcpmux_home)  # the log exists; -n 0 shows none of it
    process = subprocess.Popen(
        [str(installed_mcpmux()), "audit", "tail", "-f", "-n", "0"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        with AuditLog(mcpmux_home / "state" / "audit.jsonl") as log:
            # Written until the follower shows the first (it starts at the end of the log when it is ready).
            while not seen:
                log.write({"event": "tool_call", "exposed": "fx__echo", "outcome": "ok", "duration_ms": 1.0})
                ready, _, _ = select.select([process.stdout], [], [], 1.0)
                if ready:
                    seen.append(process.stdout.readline())
            log.write({"event": "downstream_exit", "server": "fx", "pid": 1, "exit_code": 3})
            while "downstream_exit" not in seen[-1]:
                ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
                assert ready, f"no line within {TIMEOUT} s after {seen!r}"
                seen.append(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in stderr
    assert all(re.fullmatch(r"\S+ \S+  fx__echo  ok  1\.0 ms\n", line) for line in seen[:-1]), seen
    assert re.fullmatch(r"\S+ \S+  downstream_exit fx  exit 3\n", seen[-1])


# ---- status ----------------------------------------------------------------------------------------------------

REFUSED = (
    "profile /home/someone/projects/a-rather-long-project-name/profiles/work.toml has changed since you trusted it\n"
    "Review it, then trust this exact content with:\n"
    "mcpmux profile trust /home/someone/projects/a-rather-long-project-name/profiles/work.toml"
)


@asynccontextmanager
async def one_serve(reply: dict[str, Any]) -> AsyncGenerator[None]:
    """A control endpoint answering `status` as a running serve would (this process's pid: it is alive)."""

    async def status(_params: dict[str, Any]) -> dict[str, Any]:
        return reply

    async with anyio.create_task_group() as tg:
        await tg.start(ControlServer({"status": status}).serve)
        yield
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_status_shows_the_whole_reason_a_profile_edit_was_refused_and_the_command_that_fixes_it(
    tmp_path: Path,
) -> None:
    reply = {"pid": os.getpid(), "profile": "work", "reload_error": REFUSED, "servers": [{"name": "git", "tools": 1}]}
    async with one_serve(reply):
        with anyio.fail_after(TIMEOUT):
            done = await anyio.to_thread.run_sync(lambda: mcpmux("status", cwd=tmp_path))
            as_json = await anyio.to_thread.run_sync(lambda: mcpmux("status", "--json", cwd=tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "profile change not applied (still serving the profile as it was):" in lines
    assert REFUSED.splitlines()[-1] in lines  # whole, to copy and run
    assert json_of(as_json)["serves"][0]["reload_error"] == REFUSED


# ---- one time syntax -------------------------------------------------------------------------------------------


def test_policy_explain_at_reads_times_as_since_does_and_names_the_option_when_it_cannot(
    tmp_path: Path, write_profile: WriteProfile
) -> None:
    path = write_profile('[policy]\ndefault = "allow"\n')
    before = datetime.now(UTC)
    ago = mcpmux("policy", "explain", "x__y", "--at", "2h", "-p", str(path), "--json", cwd=tmp_path)
    after = datetime.now(UTC)
    assert ago.returncode == 0, ago.stderr
    at = datetime.fromisoformat(json_of(ago)["at"])
    assert before - timedelta(hours=2) <= at <= after - timedelta(hours=2)
    bad = mcpmux("policy", "explain", "x__y", "--at", "noon", "-p", str(path), cwd=tmp_path)
    assert bad.returncode == 2
    said = " ".join(bad.stderr.replace("│", " ").split())  # typer's usage error, in a box 80 columns wide
    assert "Invalid value for --at: cannot read 'noon' as a time: use 30m, 1h, 2d or 1w (ago)" in said
    since = mcpmux("audit", "query", "--since", "2026-11-25T10:00:00+01:00", "--until", "+1h", cwd=tmp_path)
    assert since.returncode == 0, since.stderr


# ---- completion ------------------------------------------------------------------------------------------------


def test_shell_completion_installs_for_bash_and_completes_options_and_profile_names(
    tmp_path: Path, write_profile: WriteProfile
) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    home = tmp_path / "userhome"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    # Through bash, as a user types it: completion detects the shell it is run from.
    installed = subprocess.run(
        [bash, "-c", f"'{installed_mcpmux()}' --install-completion"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    assert "_MCPMUX_COMPLETE=complete_bash" in (home / ".bash_completions" / "mcpmux.sh").read_text()
    completing = {"_MCPMUX_COMPLETE": "complete_bash", "COMP_WORDS": "mcpmux audit tail --ev", "COMP_CWORD": "3"}
    words = mcpmux(env=completing, cwd=tmp_path)
    assert words.stdout.split() == ["--event"]
    fixture_profile(write_profile)  # ./profiles/fx.toml
    completing = {"_MCPMUX_COMPLETE": "complete_bash", "COMP_WORDS": "mcpmux tools -p f", "COMP_CWORD": "3"}
    assert mcpmux(env=completing, cwd=tmp_path).stdout.split() == ["fx"]


# ---- -p/--profile wherever a profile is meant -------------------------------------------------------------------


def test_commands_about_one_profile_take_it_with_dash_p(tmp_path: Path, write_profile: WriteProfile) -> None:
    path = str(fixture_profile(write_profile))
    for command in (("validate",), ("profile", "show"), ("secret", "check"), ("profile", "trust"), ("doctor",)):
        result = mcpmux(*command, "-p", path, "--json" if command != ("profile", "trust") else "--show", cwd=tmp_path)
        assert "No such option" not in result.stderr, (command, result.stderr)
    both = mcpmux("validate", "other", "-p", path, cwd=tmp_path)
    assert both.returncode == 2
    assert "two profiles given" in both.stderr


# ---- --json ----------------------------------------------------------------------------------------------------


def test_tools_json_gives_each_tools_input_schema_and_tools_name_shows_one_in_full(
    tmp_path: Path, write_profile: WriteProfile
) -> None:
    path = str(fixture_profile(write_profile))
    listed = json_of(mcpmux("tools", "-p", path, "--json", cwd=tmp_path))
    echo = next(tool for tool in listed["tools"] if tool["name"] == "fx__echo")
    assert (echo["server"], echo["original"], echo["allowed"]) == ("fx", "echo", True)
    assert echo["inputSchema"]["properties"]["text"]["type"] == "string"
    assert listed["profile"]["path"] == path and listed["servers_down"] == []
    one = json_of(mcpmux("tools", "fx__echo", "-p", path, "--json", cwd=tmp_path))
    assert one["tool"] == echo
    shown = mcpmux("tools", "fx__echo", "-p", path, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "inputSchema:" in shown.stdout and "Return the text unchanged." in shown.stdout
    broken = write_profile(f'[servers.gone]\ncommand = "{tmp_path / "no-such-program"}"\n', name="broken")
    down = mcpmux("tools", "-p", str(broken), "--json", cwd=tmp_path)
    assert down.returncode == 1
    assert [server["name"] for server in json_of(down)["servers_down"]] == ["gone"]
    unknown = mcpmux("tools", "fx__ecko", "-p", path, cwd=tmp_path)
    assert unknown.returncode == 1
    assert "no tool 'fx__ecko' in profile fx (did you mean fx__echo" in unknown.stderr
    pins = json_of(mcpmux("pin", "diff", "-p", path, "--json", cwd=tmp_path))
    assert {tool["status"] for tool in pins["tools"]} == {"unchanged"}


def test_profile_commands_print_json_with_their_problems_and_nothing_else_on_stdout(
    tmp_path: Path, write_profile: WriteProfile
) -> None:
    good = fixture_profile(write_profile)
    bad = good.with_name("bad.toml")  # not through `write_profile`: it cannot be trusted
    bad.write_text('[servers.x]\ncommand = "x"\nbogus = 1\n')
    valid = json_of(mcpmux("validate", str(good), "--json", cwd=tmp_path))
    assert (valid["ok"], valid["path"], valid["servers"], valid["problems"]) == (True, str(good), 1, [])
    invalid = mcpmux("validate", str(bad), "--json", cwd=tmp_path)
    assert invalid.returncode == 1
    [problem] = json_of(invalid)["problems"]
    assert (problem["file"], problem["line"], problem["key"]) == (str(bad), 3, "servers.x.bogus")
    listed = json_of(mcpmux("profile", "list", "--json", cwd=tmp_path))
    rows = {row["name"]: row for row in listed["profiles"]}
    assert rows["fx"]["servers"] == 1 and rows["bad"]["servers"] is None and rows["bad"]["problems"]
    shown = json_of(mcpmux("profile", "show", str(good), "--json", cwd=tmp_path))
    assert shown["servers"][0]["args"] == [str(FIXTURE_SERVER)]
    assert shown["trust"] == "trusted"
    [trusted] = json_of(mcpmux("profile", "trust", "--show", "--json", cwd=tmp_path))["trusted"]
    assert (trusted["path"], trusted["sha256"], trusted["matches"]) == (str(good), shown["sha256"], "yes")


def test_secret_doctor_and_audit_commands_print_one_versioned_json_object(
    tmp_path: Path, write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    path = write_profile('[servers.x]\ncommand = "x"\nenv = { TOKEN = "${secret:gh_token}" }\n')
    listed = json_of(mcpmux("secret", "list", "-p", str(path), "--json", cwd=tmp_path))
    assert listed["secrets"] == [{"name": "gh_token", "present": False, "referenced_by": ["test/x"]}]
    checked = mcpmux("secret", "check", "-p", str(path), "--json", cwd=tmp_path)
    assert checked.returncode == 1
    assert json_of(checked)["secrets"] == [{"name": "gh_token", "present": False, "used_by": ["test/x"]}]
    doctor = mcpmux("doctor", "-p", str(path), "--json", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert {"python", "keyring backend", "profile"} <= {check["name"] for check in json_of(doctor)["checks"]}
    calls(mcpmux_home, "fx__echo")
    stats = json_of(mcpmux("audit", "stats", "--json", cwd=tmp_path))
    assert (stats["by"], [g["key"] for g in stats["groups"]], stats["total"]["calls"]) == ("tool", ["fx__echo"], 1)
    assert json_of(mcpmux("audit", "verify", "--json", cwd=tmp_path))["events"] == 2
