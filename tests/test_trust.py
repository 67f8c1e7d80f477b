"""Trust, like direnv's allow: a profile from outside the user's own folder runs once its exact content is trusted."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mcpmux.cli import profile_cmd, trust_cmd
from mcpmux.errors import MCPMuxError, TrustError
from mcpmux.paths import check_private, state_paths
from mcpmux.profile.load import load_profile
from mcpmux.profile.lookup import active_profile_name
from mcpmux.profile.trust import load_records, require_trusted, trust_file, trust_profile, trust_status, untrust_profile
from tests.conftest import REPO, fixture_server_toml

TEAM = """
[servers.gh]
command = "npx"
args = ["-y", "@acme/gh-mcp", "--read-only"]
env = { GH_TOKEN = { secret = "gh-pat" }, AUTH = "Bearer {secret:remote-token}", LOG = "info" }
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cloned repository's profiles folder (not the user's own), as the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "team.toml").write_text(TEAM, encoding="utf-8")
    return tmp_path / "profiles" / "team.toml"


def _edit_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[data.index(b"info")] = ord("I")
    path.write_bytes(bytes(data))


def test_an_untrusted_profile_is_refused_showing_what_it_would_run_and_the_command_that_trusts_it(
    project: Path,
) -> None:
    with pytest.raises(TrustError) as caught:
        require_trusted(load_profile(project))
    message = str(caught.value)
    assert caught.value.path == project
    assert message.startswith(f"profile {project} is not trusted yet, so it will not run.")
    assert (
        "  server 'gh': runs npx -y @acme/gh-mcp --read-only; env: GH_TOKEN='{secret:gh-pat}' "
        "AUTH='Bearer {secret:remote-token}' LOG=info; reads secrets: gh-pat, remote-token"
    ) in message
    assert message.endswith(f"then trust this exact content with: mcpmux profile trust {project}")


def test_a_trusted_profile_runs_until_one_byte_changes_and_then_needs_trust_again(project: Path) -> None:
    trust_profile(project)
    require_trusted(load_profile(project))
    _edit_one_byte(project)
    with pytest.raises(TrustError, match="has changed since you trusted it"):
        require_trusted(load_profile(project))
    trust_profile(project)
    require_trusted(load_profile(project))


def test_a_change_to_a_file_the_profile_extends_needs_trust_again_and_is_named(project: Path) -> None:
    base = project.parent / "base.toml"
    base.write_text('[servers.base]\ncommand = "base-mcp"\n', encoding="utf-8")
    project.write_text('extends = ["base"]\n' + TEAM, encoding="utf-8")
    trust_profile(project)
    require_trusted(load_profile(project))
    base.write_text('[servers.base]\ncommand = "evil-mcp"\n', encoding="utf-8")
    with pytest.raises(TrustError) as caught:
        require_trusted(load_profile(project))
    assert f": {base}), so it will not run" in str(caught.value)
    assert "runs evil-mcp" in str(caught.value)


def test_a_profile_in_the_users_own_folder_is_trusted_without_a_record() -> None:
    path = state_paths().profiles_dir / "mine.toml"
    path.parent.mkdir(parents=True)
    path.write_text(TEAM, encoding="utf-8")
    assert trust_status(load_profile(path)) == "user"
    require_trusted(load_profile(path))
    assert load_records() == {}


def test_untrust_forgets_a_profile_and_says_whether_it_was_trusted(project: Path) -> None:
    trust_profile(project)
    assert untrust_profile(project) is True
    assert untrust_profile(project) is False
    assert trust_status(load_profile(project)) == "untrusted"


def test_the_trust_file_is_owner_only_and_refused_once_others_can_write_it(project: Path) -> None:
    trust_profile(project)
    assert stat.S_IMODE(trust_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(trust_file().parent.stat().st_mode) == 0o700
    trust_file().chmod(0o666)
    with pytest.raises(MCPMuxError, match=f"make it yours alone with: chmod go-w {trust_file()}"):
        require_trusted(load_profile(project))


@pytest.mark.parametrize(("mode", "refused"), [(0o700, False), (0o755, False), (0o770, True), (0o702, True)])
def test_check_private_refuses_a_folder_that_group_or_others_can_write(
    tmp_path: Path, mode: int, refused: bool
) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(mode)
    if refused:
        with pytest.raises(MCPMuxError, match=f"writable by other users .*chmod go-w {folder}"):
            check_private(folder)
    else:
        check_private(folder)
    check_private(tmp_path / "missing")  # created owner-only later


# ---- CLI --------------------------------------------------------------------------------------------------------


def run(*args: str) -> Result:
    app = typer.Typer()
    profile_cmd.register(app)
    trust_cmd.register(app)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def test_profile_trust_prints_what_the_profile_runs_and_show_lists_it_with_whether_it_still_matches(
    project: Path,
) -> None:
    trusted = run("profile", "trust", "team")
    assert trusted.exit_code == 0, trusted.output
    assert f"trusted {project} (sha256 " in trusted.stderr
    assert "server 'gh': runs npx -y @acme/gh-mcp" in trusted.stderr
    sha = load_records()[project].sha256
    shown = run("profile", "trust", "--show")
    row = next(line for line in shown.stdout.splitlines() if str(project) in line)
    assert [c.strip() for c in row.strip("│").split("│")][1::2] == [sha[:12], "yes"]
    _edit_one_byte(project)
    assert "changed" in run("profile", "trust", "--show").stdout


def test_profile_use_refuses_an_untrusted_profile_and_keeps_the_active_one(project: Path) -> None:
    refused = run("profile", "use", "team")
    assert refused.exit_code == 1
    assert isinstance(refused.exception, TrustError)
    assert f"mcpmux profile trust {project}" in str(refused.exception)
    assert active_profile_name() is None
    assert run("profile", "trust", str(project)).exit_code == 0
    assert run("profile", "use", "team").exit_code == 0
    assert active_profile_name() == str(project)


def test_profile_untrust_of_a_profile_that_is_not_trusted_says_how_to_list_trusted_ones(project: Path) -> None:
    result = run("profile", "untrust", "team")
    assert result.exit_code == 1
    assert "mcpmux profile trust --show" in str(result.exception)


# ---- mcpmux serve / tools, as a host or user runs them --------------------------------------------------------------


def mcpmux(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpmux", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_serve_refuses_a_trusted_profile_after_one_byte_changed_printing_nothing_on_stdout(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(fixture_server_toml("alpha", env='{ LOG = "info" }'), encoding="utf-8")
    trust_profile(path)
    _edit_one_byte(path)
    done = mcpmux("serve", "--profile", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"error: profile {path} has changed since you trusted it" in done.stderr
    assert f"mcpmux profile trust {path}" in done.stderr


def test_tools_with_trust_trusts_the_profile_after_printing_what_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(fixture_server_toml("alpha"), encoding="utf-8")
    refused = mcpmux("tools", "--profile", str(path))
    assert refused.returncode == 1
    assert "is not trusted yet" in refused.stderr
    done = mcpmux("tools", "--profile", str(path), "--trust")
    assert done.returncode == 0, done.stderr
    assert f"trusting {path}" in done.stderr
    assert "alpha__echo" in done.stdout
    assert trust_status(load_profile(path)) == "trusted"


def test_serve_refuses_a_state_folder_that_others_can_write(tmp_path: Path, mcpmux_home: Path) -> None:
    path = tmp_path / "team.toml"
    path.write_text(fixture_server_toml("alpha"), encoding="utf-8")
    trust_profile(path)
    os.chmod(mcpmux_home, 0o777)  # noqa: PTH101  # the mode is the point of the test
    done = mcpmux("serve", "--profile", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert f"chmod go-w {mcpmux_home}" in done.stderr
