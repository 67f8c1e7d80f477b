"""`mcpmux doctor` on a good and a bad profile, with a real file keyring and sample host configs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import keyring
import pytest
import typer
from keyrings.alt.file import PlaintextKeyring
from mcp.shared.auth import OAuthToken
from typer.testing import CliRunner, Result

from mcpmux.cli import doctor_cmd
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.secrets.store import KeyringStore

SECRET_VALUE = "s3cr3t-value-never-printed"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_keyring: PlaintextKeyring) -> Path:
    """Own home (so only the sample host configs below are read) and working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "userhome" / ".config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, so `doctor` stays a subcommand as in the real CLI
    doctor_cmd.register(app)
    return CliRunner().invoke(app, ["doctor", *args], env={"COLUMNS": "250"})


def user_profile(home: Path, text: str) -> Path:
    path = home / "profiles" / "p.toml"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    home.chmod(0o700)
    path.write_text(text, encoding="utf-8")
    return path


def cursor_config(tmp_path: Path, command: str) -> Path:
    path = tmp_path / "userhome" / ".cursor" / "mcp.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mcpServers": {"mcpmux": {"command": command, "args": ["serve"]}}}))
    return path


def test_doctor_on_a_good_profile_passes_and_never_prints_a_secret_value(
    tmp_path: Path, mcpmux_home: Path, file_keyring: PlaintextKeyring
) -> None:
    user_profile(
        mcpmux_home,
        f'[servers.ok]\ncommand = "{sys.executable}"\nenv = {{ API_TOKEN = {{ secret = "tok" }} }}\n',
    )
    keyring.set_password("mcpmux", "tok", SECRET_VALUE)
    launcher = tmp_path / "bin" / "mcpmux"
    launcher.parent.mkdir()
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    cursor_config(tmp_path, str(launcher))
    result = run("--profile", "p")
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.stderr
    assert f"command {sys.executable}" in result.stdout
    assert "present in the keyring" in result.stdout
    assert "'mcpmux' runs" in result.stdout
    assert SECRET_VALUE not in result.output


def test_doctor_on_a_bad_profile_exits_1_listing_each_problem_with_its_fix(tmp_path: Path, mcpmux_home: Path) -> None:
    user_profile(
        mcpmux_home,
        '[servers.gone]\ncommand = "no-such-mcp-server"\nenv = { API_TOKEN = { secret = "missing" } }\n',
    )
    cursor_config(tmp_path, str(tmp_path / "old-venv" / "bin" / "mcpmux"))
    result = run("--profile", "p")
    assert result.exit_code == 1
    assert "command 'no-such-mcp-server' not found" in result.stdout
    assert "mcpmux secret set missing" in result.stdout
    assert "runs missing" in result.stdout and "mcpmux install cursor" in result.stdout
    assert "3 problems found" in result.stderr


def test_doctor_reports_an_invalid_profile_and_an_untrusted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "profiles"
    project.mkdir()
    (project / "broken.toml").write_text('[servers.x]\ncomand = "x"\n')
    (project / "team.toml").write_text(f'[servers.x]\ncommand = "{sys.executable}"\n')
    broken = run("--profile", "broken")
    assert broken.exit_code == 1 and "unknown key 'comand'" in broken.stdout
    team = run("--profile", "team")
    assert team.exit_code == 1 and "not trusted yet" in team.stdout and "mcpmux profile trust" in team.stdout


def test_doctor_flags_state_folders_others_can_read(mcpmux_home: Path) -> None:
    user_profile(mcpmux_home, f'[servers.ok]\ncommand = "{sys.executable}"\n')
    mcpmux_home.chmod(0o755)
    result = run("--profile", "p")
    assert result.exit_code == 1
    assert f"chmod 700 {mcpmux_home}" in result.stdout


def test_doctor_says_which_remote_servers_are_signed_in_without_showing_a_token(mcpmux_home: Path) -> None:
    user_profile(
        mcpmux_home, '[servers.in]\nurl = "https://in.example/mcp"\n[servers.out]\nurl = "https://out.example/mcp"\n'
    )
    storage = KeyringTokenStorage(KeyringStore(), "in", "https://in.example/mcp")
    anyio.run(storage.set_tokens, OAuthToken(access_token=SECRET_VALUE, expires_in=600))
    result = run("--profile", "p")
    assert "signed in with OAuth (for 5" in result.stdout
    assert "not signed in with OAuth" in result.stdout and "mcpmux auth login out" in result.stdout
    assert SECRET_VALUE not in result.output
