"""`mcpmux validate` and `mcpmux profile list|use|show`, run through typer's CliRunner on an app of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mcpmux.cli import profile_cmd
from mcpmux.errors import MCPMuxError
from mcpmux.profile.lookup import active_profile_name
from mcpmux.profile.trust import trust_profile

GOOD = """
[servers.time]
command = "mcp-server-time"

[servers.gh]
command = "gh-mcp"
env = { GH_TOKEN = { secret = "gh-pat" }, GH_HOST = "ghe.example.com" }
enabled = false
"""
BAD = '[servers.time]\ncomand = "mcp-server-time"\ntimeout_seconds = 0\n'


@pytest.fixture(autouse=True)
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as the working directory, with its own mcpmux state folder."""
    monkeypatch.setenv("MCPMUX_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "good.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "profiles" / "bad.toml").write_text(BAD, encoding="utf-8")
    trust_profile(tmp_path / "profiles" / "good.toml")  # a project profile is used only once trusted
    return tmp_path


def run(*args: str) -> Result:
    app = typer.Typer()
    profile_cmd.register(app)
    return CliRunner().invoke(app, list(args))


def test_validate_of_a_good_profile_exits_0_and_counts_its_servers(project: Path) -> None:
    result = run("validate", "good")
    assert result.exit_code == 0
    assert result.stderr == f"ok: {project / 'profiles' / 'good.toml'} (2 servers)\n"
    assert result.stdout == ""


def test_validate_of_a_bad_profile_exits_1_printing_every_problem_as_file_line_key_message_fix(project: Path) -> None:
    result = run("validate", "profiles/bad.toml")
    assert result.exit_code == 1
    assert isinstance(result.exception, MCPMuxError)
    assert "3 problems" in str(result.exception)
    path = project / "profiles" / "bad.toml"
    assert result.stderr.splitlines() == [
        f"{path}:1: servers.time: needs exactly one of 'command' or 'url' "
        "(set 'command' for a local server, 'url' for HTTP)",
        f"{path}:2: servers.time.comand: unknown key 'comand' (did you mean 'command'?)",
        f"{path}:3: servers.time.timeout_seconds: must be a number of seconds above 0, not 0 (write e.g. 30)",
    ]


def test_validate_without_an_argument_checks_the_active_profile(project: Path) -> None:
    assert run("profile", "use", "good").exit_code == 0
    result = run("validate")
    assert result.exit_code == 0
    assert "good.toml (2 servers)" in result.stderr


def test_validate_of_an_unknown_name_exits_1_and_points_at_profile_list() -> None:
    result = run("validate", "nope")
    assert result.exit_code == 1
    assert "no profile named 'nope'" in result.stderr
    assert "mcpmux profile list" in result.stderr


def test_profile_list_shows_each_profile_and_marks_a_broken_one_invalid() -> None:
    run("profile", "use", "good")
    result = run("profile", "list")
    assert result.exit_code == 0
    rows = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if line.count("│") > 4}
    assert set(rows) == {"bad", "good"}
    assert "invalid" in rows["bad"]
    assert "*" not in rows["bad"]
    assert "*" in rows["good"]
    assert " 2 " in rows["good"]


def test_profile_list_with_no_profiles_says_so(project: Path) -> None:
    for path in (project / "profiles").iterdir():
        path.unlink()
    result = run("profile", "list")
    assert result.exit_code == 0
    assert "no profiles found" in result.stderr


def test_profile_use_records_the_profiles_path_and_says_which_became_active(project: Path) -> None:
    result = run("profile", "use", "good")
    assert result.exit_code == 0
    path = project / "profiles" / "good.toml"
    assert result.stderr.strip() == f"active profile: good ({path})"
    assert active_profile_name() == str(path)


def test_profile_use_in_a_project_then_validate_and_list_in_another_folder_find_that_profile(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("profile", "use", "good").exit_code == 0
    elsewhere = project / "home" / "elsewhere"  # under MCPMUX_HOME: no profiles/ folder on the way up
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    path = project / "profiles" / "good.toml"
    validated = run("validate")
    assert validated.exit_code == 0, validated.output
    assert validated.stderr == f"ok: {path} (2 servers)\n"
    listed = run("profile", "list")
    assert f"active profile: good ({path})" in listed.stderr


def test_profile_list_says_when_the_active_profile_no_longer_resolves(project: Path) -> None:
    assert run("profile", "use", "good").exit_code == 0
    path = project / "profiles" / "good.toml"
    path.unlink()
    listed = run("profile", "list")
    assert f"active profile: {path} does not resolve (no such profile file)" in listed.stderr
    assert "mcpmux profile use NAME" in listed.stderr


def test_profile_use_of_a_broken_profile_exits_1_and_changes_nothing(project: Path) -> None:
    run("profile", "use", "good")
    result = run("profile", "use", "bad")
    assert result.exit_code == 1
    assert isinstance(result.exception, MCPMuxError)
    assert active_profile_name() == str(project / "profiles" / "good.toml")


def test_profile_show_prints_the_source_and_secret_names_but_no_values() -> None:
    result = run("profile", "show", "good")
    assert result.exit_code == 0
    assert 'command = "mcp-server-time"' in result.stdout
    summary = result.stdout.split("┏")[-1]  # the table after the highlighted source
    gh_row = next(line for line in summary.splitlines() if " gh " in line)
    assert [cell.strip() for cell in gh_row.strip("│").split("│")] == ["gh", "gh-mcp", "gh-pat", "no"]
    assert "ghe.example.com" not in summary


def test_profile_show_of_a_broken_profile_prints_its_source_then_fails() -> None:
    result = run("profile", "show", "bad")
    assert 'comand = "mcp-server-time"' in result.stdout
    assert result.exit_code == 1
