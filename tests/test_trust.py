"""Trust, like direnv's allow: a profile from outside the user's own folder runs once its exact content is trusted."""

from __future__ import annotations

import hashlib
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


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _user_profile_extending(base: Path) -> Path:
    """A profile in the user's own folder that extends `base` (a file of a repository) by its path."""
    path = state_paths().profiles_dir / "mine.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'extends = ["{base}"]\ndescription = "mine"\n', encoding="utf-8")
    return path


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


def test_a_user_profile_that_extends_a_repository_file_runs_only_once_trusted_together_with_that_file(
    project: Path,
) -> None:
    mine = _user_profile_extending(project)
    with pytest.raises(TrustError) as caught:
        require_trusted(load_profile(mine))
    message = str(caught.value)
    assert message.startswith(f"profile {mine} extends {project}, from outside your profiles folder, and is not")
    assert "server 'gh': runs npx -y @acme/gh-mcp --read-only" in message
    assert message.endswith(f"trust this exact content with: mcpmux profile trust {mine}")
    record = trust_profile(mine)
    assert record.files == {mine: _sha(mine), project: _sha(project)}
    require_trusted(load_profile(mine))
    _edit_one_byte(project)  # a `git pull` in the repository
    with pytest.raises(TrustError) as changed:
        require_trusted(load_profile(mine))
    assert f"profile {mine} has changed since you trusted it ({record.trusted_at}: {project}), so it" in str(
        changed.value
    )
    assert str(changed.value).endswith(f"mcpmux profile trust {mine}")
    assert trust_status(load_profile(mine)) == "changed"
    trust_profile(mine)
    require_trusted(load_profile(mine))


def test_a_user_profile_extending_only_the_users_own_profiles_needs_no_record() -> None:
    folder = state_paths().profiles_dir
    folder.mkdir(parents=True)
    (folder / "base.toml").write_text(TEAM, encoding="utf-8")
    (folder / "mine.toml").write_text('extends = ["base"]\n', encoding="utf-8")
    assert trust_status(load_profile(folder / "mine.toml")) == "user"
    assert run("profile", "trust", str(folder / "mine.toml")).exit_code == 0
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
    sha = load_records()[project].sha256
    assert trusted.stderr.startswith(f"trusted {project}, this exact content of each file it is read from")
    assert f"\n  {sha}  {project}\nit runs:\n  server 'gh': runs npx -y @acme/gh-mcp" in trusted.stderr
    shown = run("profile", "trust", "--show")
    row = next(line for line in shown.stdout.splitlines() if str(project) in line)
    assert [c.strip() for c in row.strip("│").split("│")][1::2] == [sha[:12], "yes"]
    _edit_one_byte(project)
    assert "changed" in run("profile", "trust", "--show").stdout


def test_profile_trust_lists_every_file_it_trusts_with_the_sha256_of_its_content(project: Path) -> None:
    base = project.parent / "base.toml"
    base.write_text('[servers.base]\ncommand = "base-mcp"\n', encoding="utf-8")
    project.write_text('extends = ["base"]\n' + TEAM, encoding="utf-8")
    trusted = run("profile", "trust", "team")
    assert trusted.exit_code == 0, trusted.output
    files = trusted.stderr.split("(sha256, file):\n")[1].split("it runs:")[0]
    assert files == f"  {_sha(project)}  {project}\n  {_sha(base)}  {base}\n"
    shown = run("profile", "trust", "--show").stdout
    assert f"extends {base}" in shown and _sha(base)[:12] in shown


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


def test_serve_and_tools_refuse_a_user_profile_once_the_repository_file_it_extends_changes(tmp_path: Path) -> None:
    base = tmp_path / "repo" / "profiles" / "base.toml"
    base.parent.mkdir(parents=True)
    base.write_text(fixture_server_toml("alpha"), encoding="utf-8")
    mine = _user_profile_extending(base)
    trust_profile(mine)
    listed = mcpmux("tools", "--profile", str(mine))
    assert listed.returncode == 0, listed.stderr
    assert "alpha__echo" in listed.stdout
    base.write_text(fixture_server_toml("alpha") + fixture_server_toml("beta"), encoding="utf-8")  # a `git pull`
    for command in ("serve", "tools"):
        done = mcpmux(command, "--profile", str(mine))
        assert done.returncode == 1, done.stderr
        assert done.stdout == ""
        assert f"error: profile {mine} has changed since you trusted it (" in done.stderr
        assert f": {base}), so it will not run" in done.stderr
        assert "server 'beta': runs" in done.stderr
        assert done.stderr.endswith(f"trust this exact content with: mcpmux profile trust {mine}\n")


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
