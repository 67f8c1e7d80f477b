"""The CLI's error boundary as a user meets it: the installed `mcpmux` console script, run as a subprocess.

Every run asserts the exit code and that no traceback reaches the terminal, whatever goes wrong.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mcpmux import __version__

TIMEOUT = 60.0


def installed_mcpmux() -> Path:
    """The console script `pip install` made for this venv (not `python -m mcpmux`: the entry point is under test)."""
    beside = Path(sys.executable).parent / "mcpmux"
    found = beside if beside.is_file() else Path(shutil.which("mcpmux") or beside)
    assert found.is_file(), f"the mcpmux console script is not installed beside {sys.executable}: pip install -e ."
    return found


def mcpmux(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(installed_mcpmux()), *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A working folder with no profiles in it."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_mcpmux_with_no_arguments_prints_the_help_and_exits_2(folder: Path) -> None:
    result = mcpmux(cwd=folder)
    assert result.returncode == 2
    assert "Usage: mcpmux" in result.stdout + result.stderr
    assert "serve" in result.stdout + result.stderr


def test_version_prints_mcpmux_and_its_version_on_stdout(folder: Path) -> None:
    result = mcpmux("--version", cwd=folder)
    assert result.returncode == 0
    assert result.stdout == f"mcpmux {__version__}\n"


def test_help_lists_the_commands_and_exits_0(folder: Path) -> None:
    result = mcpmux("--help", cwd=folder)
    assert result.returncode == 0
    for command in ("serve", "tools", "profile", "secret", "--version"):
        assert command in result.stdout


def test_an_unknown_command_is_a_usage_error_naming_it(folder: Path) -> None:
    result = mcpmux("no-such-command", cwd=folder)
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "mcpmux --help" in result.stderr


def test_a_missing_argument_is_a_usage_error_naming_it(folder: Path) -> None:
    result = mcpmux("logs", cwd=folder)
    assert result.returncode == 2
    assert "Usage: mcpmux logs" in result.stderr
    assert "Missing argument" in result.stderr


def test_a_bad_since_is_a_usage_error_that_shows_the_accepted_times(folder: Path) -> None:
    result = mcpmux("audit", "query", "--since", "not-a-time", cwd=folder)
    assert result.returncode == 2
    assert "--since" in result.stderr
    assert "cannot read 'not-a-time' as a time" in result.stderr


def test_a_missing_profile_file_is_one_error_line_naming_it_and_exits_1(folder: Path) -> None:
    result = mcpmux("tools", "--profile", "nowhere/missing.toml", cwd=folder)
    assert result.returncode == 1
    missing = folder / "nowhere" / "missing.toml"
    assert result.stderr == f"error: {missing}: no such profile file (check the path)\n"


def test_an_unforeseen_failure_exits_3_naming_a_private_report_that_holds_the_traceback(
    folder: Path, mcpmux_home: Path
) -> None:
    # A folder where a log file should be: `logs` does not expect that (no mocking: a real OSError).
    (mcpmux_home / "state" / "logs" / "p-00000000" / "time.1.log").mkdir(parents=True)
    result = mcpmux("logs", "time", cwd=folder)
    assert result.returncode == 3
    assert result.stderr.startswith("mcpmux: unexpected error (IsADirectoryError:")
    assert len(result.stderr.splitlines()) == 1
    [report] = (mcpmux_home / "state" / "logs").glob("mcpmux-crash-*.txt")
    assert str(report) in result.stderr
    assert report.stat().st_mode & 0o777 == 0o600
    text = report.read_text()
    assert f"mcpmux {__version__} crash report" in text
    assert "Traceback (most recent call last)" in text
    assert "IsADirectoryError" in text


def test_an_unforeseen_failure_with_an_unusable_state_folder_reports_into_the_temp_folder(tmp_path: Path) -> None:
    # MCPMUX_HOME is a file: nothing can be written under it, so the report goes to TMPDIR instead.
    home, temp = tmp_path / "home-file", tmp_path / "temp"
    home.write_text("")
    temp.mkdir()
    result = mcpmux("status", cwd=tmp_path, env={"MCPMUX_HOME": str(home), "TMPDIR": str(temp)})
    assert result.returncode == 3
    [report] = temp.glob("mcpmux-crash-*.txt")
    assert f"the details are in {report}" in result.stderr
    assert "NotADirectoryError" in report.read_text()


def test_ctrl_c_exits_130_without_a_traceback(folder: Path, mcpmux_home: Path) -> None:
    log = mcpmux_home / "state" / "logs" / "p-00000000" / "time.1.log"
    log.parent.mkdir(parents=True)
    log.write_text("started\n")
    process = subprocess.Popen(
        [str(installed_mcpmux()), "logs", "time", "--follow"],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready, f"no output within {TIMEOUT} s"
        assert process.stdout.readline() == "started\n"  # it is following the log now
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in stderr


def test_ctrl_c_at_a_prompt_exits_130_too(folder: Path) -> None:
    # A pseudo-terminal as stdin makes `secret set` prompt; it is not the controlling terminal
    # (new session), so the hidden prompt reads it as a plain stream.
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(installed_mcpmux()), "secret", "set", "gh"],
        cwd=folder,
        stdin=terminal,
        stdout=terminal,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=True,
    )
    os.close(terminal)
    try:
        seen = b""
        while b"Value for secret 'gh'" not in seen:
            ready, _, _ = select.select([controller], [], [], TIMEOUT)  # wakes when the prompt is written
            assert ready, f"no prompt within {TIMEOUT} s: {seen!r}"
            seen += os.read(controller, 1024)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in stderr
