"""Discovery: project profiles from profiles/ folders up to the repository root, user profiles, `profile new`."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from mcpmux.cli import profile_cmd
from mcpmux.profile.load import load_profile
from mcpmux.profile.lookup import find_profile, list_profiles, project_dirs

SERVER = '[servers.t]\ncommand = "x"\n'


def write(folder: Path, name: str, text: str = SERVER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    return folder / f"{name}.toml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository (has .git) inside an outer folder that has profiles of its own."""
    root = tmp_path / "outer" / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "src" / "pkg").mkdir(parents=True)
    write(tmp_path / "outer" / "profiles", "outside")
    return root


def run(*args: str) -> Result:
    app = typer.Typer()
    profile_cmd.register(app)
    return CliRunner().invoke(app, list(args))


def test_the_walk_goes_from_the_working_directory_up_to_the_repository_root(repo: Path) -> None:
    assert project_dirs(repo / "src" / "pkg") == [
        repo / "src" / "pkg" / "profiles",
        repo / "src" / "profiles",
        repo / "profiles",
    ]


def test_the_walk_stops_below_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert project_dirs(tmp_path / "a") == [tmp_path / "a" / "profiles"]
    assert project_dirs(tmp_path) == []


def test_a_name_is_found_in_the_repository_root_from_a_subfolder_and_not_outside_the_repository(repo: Path) -> None:
    team = write(repo / "profiles", "team")
    assert find_profile("team", cwd=repo / "src" / "pkg") == team
    with pytest.raises(Exception, match="no profile named 'outside'"):
        find_profile("outside", cwd=repo / "src")


def test_a_nearer_profiles_folder_wins_and_list_shows_both_nearest_first(repo: Path, mcpmux_home: Path) -> None:
    near = write(repo / "src" / "profiles", "team")
    far = write(repo / "profiles", "team")
    user = write(mcpmux_home / "profiles", "team")
    assert find_profile("team", cwd=repo / "src") == near
    assert [(e.path, e.source) for e in list_profiles(cwd=repo / "src")] == [
        (near, "project"),
        (far, "project"),
        (user, "user"),
    ]


def test_profile_list_shows_trust_state_and_server_count(
    repo: Path, mcpmux_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "profiles", "team", SERVER + '[servers.u]\ncommand = "y"\n')
    write(mcpmux_home / "profiles", "mine")
    monkeypatch.chdir(repo / "src")
    result = run("profile", "list")
    assert result.exit_code == 0, result.output
    cells = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    rows = {c[0]: c for c in cells if len(c) > 3 and c[1] in ("project", "user")}
    assert rows["team"][1:4] == ["project", "untrusted", "2"]
    assert rows["mine"][1:4] == ["user", "user", "1"]


def test_profile_new_writes_a_commented_starter_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("profile", "new", "team").exit_code == 0
    path = tmp_path / "profiles" / "team.toml"
    assert path.read_text().startswith('# Profile "team"')
    profile = load_profile(path)
    assert profile.servers == () and profile.policy.default == "allow"


def test_profile_new_refuses_to_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    existing = write(tmp_path / "profiles", "team", "# mine\n")
    result = run("profile", "new", "team")
    assert result.exit_code == 1 and "already exists" in str(result.exception)
    assert existing.read_text() == "# mine\n"


def test_profile_new_from_copies_another_profile_into_the_user_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mcpmux_home: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "profiles", "team", "# team servers\n" + SERVER)
    assert run("profile", "new", "mine", "--from", "team", "--user").exit_code == 0
    copy = mcpmux_home / "profiles" / "mine.toml"
    assert "# team servers" in copy.read_text()
    assert [s.name for s in load_profile(copy).servers] == ["t"]
