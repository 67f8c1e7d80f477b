"""Profile inheritance: `extends`, the merge rules, cycles, and problems reported in the file that holds them."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mcpmux.cli import profile_cmd
from mcpmux.errors import ProfileError
from mcpmux.profile.inherit import profile_sources
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import Profile, SecretRef, ServerSpec

BASE = """\
description = "base"
[servers.git]
command = "git-mcp"
args = ["--repo", "."]
cwd = "tools"
env = { GIT_AUTHOR = "base", GH_TOKEN = { secret = "gh" } }
aliases = { git_log = "log" }

[servers.time]
command = "time-mcp"

[policy]
default = "deny"
allow = ["git__*", "time__*"]
deny = ["*__delete_*"]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def child(tmp_path: Path, text: str, base: str = BASE) -> Path:
    write(tmp_path / "profiles", "base", base)
    return write(tmp_path / "profiles", "child", 'extends = ["base"]\n' + text)


def git_of(profile: Profile) -> ServerSpec:
    spec = profile.server("git")
    assert spec is not None
    return spec


MERGES: list[tuple[str, Callable[[Profile], object], object]] = [
    # child text, what to read from the merged profile, expected
    ("", lambda p: p.description, "base"),
    ('description = "child"\n', lambda p: p.description, "child"),
    (
        "[servers.git]\ntimeout_seconds = 5\n",
        lambda p: (git_of(p).command, git_of(p).timeout_seconds),
        ("git-mcp", 5.0),
    ),
    ('[servers.git]\nargs = ["--x"]\n', lambda p: git_of(p).args, ("--x",)),
    (
        '[servers.git]\nenv = { GIT_AUTHOR = "child", EXTRA = "1" }\n',
        lambda p: dict(git_of(p).env),
        {"GIT_AUTHOR": "child", "GH_TOKEN": SecretRef("gh"), "EXTRA": "1"},
    ),
    (
        '[servers.git]\naliases = { git_diff = "diff" }\n',
        lambda p: dict(git_of(p).aliases),
        {"git_log": "log", "git_diff": "diff"},
    ),
    ("[servers.time]\nenabled = false\n", lambda p: [s.name for s in p.enabled_servers], ["git"]),
    (
        '[servers.git]\nurl = "https://git.example/mcp"\n',
        lambda p: (git_of(p).command, git_of(p).env, git_of(p).url),
        (None, {}, "https://git.example/mcp"),
    ),
    ('[servers.new]\ncommand = "new-mcp"\n', lambda p: [s.name for s in p.servers], ["git", "time", "new"]),
    ('[policy]\nallow = ["new__*", "git__*"]\n', lambda p: p.policy.allow, ("git__*", "time__*", "new__*")),
    ('[policy]\ndefault = "allow"\n', lambda p: (p.policy.default, p.policy.deny), ("allow", ("*__delete_*",))),
]


@pytest.mark.parametrize(("text", "read", "expected"), MERGES)
def test_a_child_merges_over_its_parent_by_the_documented_rules(
    tmp_path: Path, text: str, read: Callable[[Profile], object], expected: object
) -> None:
    profile = load_profile(child(tmp_path, text))
    assert read(profile) == expected


def test_an_inherited_relative_cwd_resolves_against_the_parents_folder(tmp_path: Path) -> None:
    write(tmp_path / "shared", "base", BASE)
    path = write(tmp_path / "team" / "profiles", "child", 'extends = ["../../shared/base.toml"]\n')
    git = load_profile(path).server("git")
    assert git is not None and git.cwd == (tmp_path / "shared" / "tools").resolve()


def test_a_diamond_merges_the_shared_base_once_and_sources_list_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    base = write(folder, "base", '[policy]\nallow = ["a__*"]\n')
    left = write(folder, "left", 'extends = ["base"]\n[policy]\nallow = ["l__*"]\n')
    right = write(folder, "right", 'extends = ["base"]\n[policy]\nallow = ["r__*"]\n')
    top = write(folder, "top", 'extends = ["left", "right"]\n')
    profile = load_profile(top)
    assert profile.policy.allow == ("a__*", "l__*", "r__*")
    assert profile.extends == (base, left, right)
    assert profile_sources(profile) == [top, right, left, base]


@pytest.mark.parametrize(
    ("files", "chain"),
    [
        ({"a": ["a"]}, "a.toml → a.toml"),
        ({"a": ["b"], "b": ["a"]}, "a.toml → b.toml → a.toml"),
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, "b.toml → c.toml → b.toml"),
    ],
)
def test_an_inheritance_cycle_is_a_problem_naming_the_chain(
    tmp_path: Path, files: dict[str, list[str]], chain: str
) -> None:
    for name, parents in files.items():
        write(tmp_path, name, f"extends = {parents!r}\n".replace("'", '"'))
    with pytest.raises(ProfileError) as caught:
        load_profile(tmp_path / "a.toml")
    (problem,) = caught.value.problems
    assert f"inheritance cycle: {chain}" in problem.message
    assert problem.key == "extends" and problem.line == 1


def test_a_problem_in_a_parent_names_the_parents_file_and_line(tmp_path: Path) -> None:
    path = child(
        tmp_path, "[servers.git]\ntimout_seconds = 3\n", base=BASE.replace('command = "time-mcp"', "comand = 1")
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    base = tmp_path / "profiles" / "base.toml"
    found = {(p.path, p.line, p.key) for p in caught.value.problems}
    assert (base, 10, "servers.time.comand") in found
    assert (path.resolve(), 3, "servers.git.timout_seconds") in found


def test_a_missing_parent_says_where_it_looked(tmp_path: Path) -> None:
    path = write(tmp_path, "a", 'description = "x"\nextends = ["nope"]\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line, problem.key) == (path, 2, "extends")
    assert str(tmp_path / "nope.toml") in problem.message


def test_a_parent_with_a_syntax_error_is_reported_in_the_parent(tmp_path: Path) -> None:
    path = child(tmp_path, "", base="[servers\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.problems[0].path == tmp_path / "profiles" / "base.toml"


def test_profile_show_resolved_prints_the_effective_profile_as_toml_with_secret_names_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = child(tmp_path, '[servers.time]\nenabled = false\n[policy]\ndeny = ["x"]\n')
    monkeypatch.chdir(tmp_path)
    app = typer.Typer()
    profile_cmd.register(app)
    result = CliRunner().invoke(app, ["profile", "show", str(path), "--resolved"])
    assert result.exit_code == 0, result.output
    data = tomllib.loads(result.stdout)
    assert "extends" not in data
    assert data["servers"]["time"] == {"command": "time-mcp", "enabled": False}
    assert data["servers"]["git"]["env"]["GH_TOKEN"] == {"secret": "gh"}
    assert data["policy"]["deny"] == ["*__delete_*", "x"]
    assert f"# merged from: {tmp_path / 'profiles' / 'base.toml'}" in result.stdout
