"""Profiles: parsing and validation (every problem, with its line and key path), discovery, the active profile."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from mcpmux.errors import Problem, ProfileError
from mcpmux.profile.load import load_profile
from mcpmux.profile.lookup import (
    ActiveProfile,
    active_profile,
    active_profile_name,
    find_profile,
    list_profiles,
    profile_hash,
    resolve_profile,
    resolve_profile_path,
    set_active_profile,
)
from mcpmux.profile.model import DEFAULT_MAX_NAME_LENGTH, PolicySpec, SecretRef, ServerSpec

REPO = Path(__file__).resolve().parent.parent
SERVER = '[servers.t]\ncommand = "x"\n'


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own mcpmux state folder, so none reads or writes the real one."""
    monkeypatch.setenv("MCPMUX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write(folder: Path, text: str, name: str = "p.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return caught.value.problems


# (profile text, key path of the problem, its line, a fragment of message or fix)
BAD_PROFILES = [
    ('descripton = "x"', "descripton", 1, "did you mean 'description'?"),
    (SERVER + "timout_seconds = 3", "servers.t.timout_seconds", 3, "did you mean 'timeout_seconds'?"),
    ("[policy]\nrulez = []", "policy.rulez", 2, "unknown key 'rulez'"),
    ("[servers.t]\nargs = []", "servers.t", 1, "exactly one of 'command' or 'url'"),
    ('[servers.t]\nenabled = true\ncomand = "x"', "servers.t.comand", 3, "did you mean 'command'?"),
    ('[servers.t]\ncommand = "x"\nurl = "https://h/mcp"', "servers.t", 1, "exactly one of 'command' or 'url'"),
    ('[servers.t]\nurl = "ftp://h/mcp"', "servers.t.url", 2, "not an http(s) URL"),
    (
        '[servers.t]\nurl = "https://h/mcp"\nargs = ["a"]',
        "servers.t.args",
        3,
        "only applies to a server with 'command'",
    ),
    ('[servers.t]\nurl = "https://h/mcp"\ncwd = "."', "servers.t.cwd", 3, "only applies to a server with 'command'"),
    (SERVER + 'headers = { A = "b" }', "servers.t.headers", 3, "only applies to a server with 'url'"),
    ("[servers.t]\ncommand = 3", "servers.t.command", 2, "must be a string, not an integer"),
    (SERVER + 'args = "a b"', "servers.t.args", 3, "must be an array of strings"),
    (SERVER + 'args = ["a", 2]', "servers.t.args", 3, "item 1 must be a string"),
    (SERVER + "timeout_seconds = 0", "servers.t.timeout_seconds", 3, "above 0"),
    (SERVER + "startup_timeout_seconds = true", "servers.t.startup_timeout_seconds", 3, "above 0"),
    (SERVER + 'enabled = "yes"', "servers.t.enabled", 3, "must be true or false, not a string"),
    ('[servers.a__b]\ncommand = "x"', "servers.a__b", 1, "no '__'"),
    (f'[servers.{"s" * 33}]\ncommand = "x"', f"servers.{'s' * 33}", 1, "at most 32 chars"),
    ('[servers."a b"]\ncommand = "x"', "servers.a b", 1, "is invalid"),
    ('[servers.t]\ncommand = "x"\n\nenv = { \'1X\' = "v" }', "servers.t.env.1X", 4, "environment variable name"),
    (SERVER + 'env = { OPENAI_API_KEY = "sk-123" }', "servers.t.env.OPENAI_API_KEY", 3, "mcpmux secret set"),
    (SERVER + 'env = { A = { secret = "no spaces" } }', "servers.t.env.A.secret", 3, "needs a secret name"),
    (SERVER + 'env = { A = { secrt = "gh" } }', "servers.t.env.A.secrt", 3, "did you mean 'secret'?"),
    (SERVER + "env = { A = 1 }", "servers.t.env.A", 3, "must be a string or"),
    (SERVER + "env = 1", "servers.t.env", 3, "must be a table"),
    (SERVER + '\n[servers.t.env]\nHOME = "/h"\nDB_PASSWORD = "hunter2"', "servers.t.env.DB_PASSWORD", 6, "secret"),
    ('[servers.t]\nurl = "https://h/mcp"\nheaders = { "a b" = "c" }', "servers.t.headers.a b", 3, "HTTP header name"),
    (
        '[servers.t]\nurl = "https://h/mcp"\nheaders = { Authorization = "Bearer x" }',
        "servers.t.headers.Authorization",
        3,
        "secret",
    ),
    (SERVER + 'aliases = { get = "no spaces" }', "servers.t.aliases.get", 3, "not a valid exposed name"),
    (SERVER + 'aliases = { a = "x", b = "x" }', "servers.t.aliases.b", 3, "already the alias"),
    ("servers = 3", "servers", 1, "must be a table of [servers.NAME] tables"),
    ('servers.t.command = "x"\nservers.t.cwd = 2', "servers.t.cwd", 2, "must be a string"),
    ("[servers]\nt = 3", "servers.t", 2, "must be a table, not an integer"),
    ('policy = "deny"', "policy", 1, "must be a [policy] table"),
    ('[policy]\ndefault = "maybe"', "policy.default", 2, "'allow' or 'deny'"),
    ('[policy]\nallow = "git__*"', "policy.allow", 2, "must be an array of strings"),
    ('[policy]\n\ndeny = ["ok", ""]', "policy.deny", 3, "empty pattern"),
    ("max_name_length = 200", "max_name_length", 1, "between 16 and 128"),
    ('max_name_length = "51"', "max_name_length", 1, "must be an integer"),
    ("description = 1", "description", 1, "must be a string"),
]


@pytest.mark.parametrize(("text", "key", "line", "fragment"), BAD_PROFILES)
def test_each_mistake_is_reported_with_its_key_path_line_and_fix(
    tmp_path: Path, text: str, key: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    found = [p for p in problems_of(path) if p.key == key]
    assert found, [str(p) for p in problems_of(path)]
    assert found[0].line == line
    assert found[0].path == path
    assert fragment in f"{found[0].message} ({found[0].fix})"
    assert found[0].fix


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = 'descripton = "x"\n[servers.a]\ncomand = "x"\n[servers.b]\ncommand = "y"\ntimeout_seconds = -1\n'
    path = write(tmp_path, text + '[policy]\ndefault = "nope"\n')
    found = {(p.key, p.line) for p in problems_of(path)}
    assert {
        ("descripton", 1),
        ("servers.a.comand", 3),
        ("servers.b.timeout_seconds", 6),
        ("policy.default", 8),
    } <= found


def test_problems_render_as_file_line_key_message_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, SERVER + "timout_seconds = 3")
    assert str(problems_of(path)[0]) == (
        f"{path}:3: servers.t.timout_seconds: unknown key 'timout_seconds' (did you mean 'timeout_seconds'?)"
    )


def test_a_toml_syntax_error_is_reported_with_tomllibs_line(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[servers.t]\ncommand = "x"\nargs = [1,, 2]\n'))
    assert problem.line == 3
    assert "TOML syntax error" in problem.message
    assert "line 3" in problem.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "cannot read the profile"), (b"description = '\xff'", "not UTF-8")],
)
def test_an_unreadable_profile_is_one_problem_naming_the_file(
    tmp_path: Path, content: bytes | None, fragment: str
) -> None:
    path = tmp_path / "p.toml"
    if content is not None:
        path.write_bytes(content)
    (problem,) = problems_of(path)
    assert problem.path == path
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("name", "flagged"),
    [
        ("GITHUB_TOKEN", True),
        ("OPENAI_API_KEY", True),
        ("APIKEY", True),
        ("CLIENT_SECRET", True),
        ("GITLAB_PAT", True),
        ("db-password", True),
        ("PATH", False),
        ("PYTHONPATH", False),
        ("SSH_KEY_PATH", False),
        ("GITHUB_TOKEN_FILE", False),
        ("LOG_LEVEL", False),
    ],
)
def test_only_credential_looking_names_with_literal_values_are_refused(
    tmp_path: Path, name: str, flagged: bool
) -> None:
    path = write(tmp_path, f'[servers.t]\nurl = "https://h/mcp"\nheaders = {{ "{name}" = "literal" }}')
    if flagged:
        assert "secrets never sit in the profile" in problems_of(path)[0].message
    else:
        load_profile(path)


def test_a_credential_name_may_be_empty_or_a_secret_reference(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, SERVER + 'env = { GITHUB_TOKEN = "", API_KEY = { secret = "api.key" } }'))
    assert profile.servers[0].env == {"GITHUB_TOKEN": "", "API_KEY": SecretRef("api.key")}


def test_a_full_profile_parses_into_the_frozen_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    text = """
description = "all keys"
max_name_length = 40

[servers.local]
command = "srv"
args = ["--a", "b"]
cwd = "sub/dir"
env = { PLAIN = "v", TOKEN = { secret = "gh-pat" } }
timeout_seconds = 5
startup_timeout_seconds = 2.5
enabled = false
aliases = { get_thing = "thing" }

[servers.home]
command = "srv"
cwd = "~/work"

[servers.remote]
url = "https://example.com/mcp"
headers = { Authorization = { secret = "remote.token" }, X-Client = "mcpmux" }

[policy]
default = "deny"
allow = ["local__*"]
deny = ["local__delete_*"]
"""
    path = write(tmp_path / "profiles", text, "full.toml")
    profile = load_profile(path)
    assert (profile.name, profile.path, profile.description, profile.max_name_length) == ("full", path, "all keys", 40)
    assert profile.servers[0] == ServerSpec(
        name="local",
        command="srv",
        args=("--a", "b"),
        cwd=tmp_path / "profiles" / "sub" / "dir",
        env={"PLAIN": "v", "TOKEN": SecretRef("gh-pat")},
        timeout_seconds=5.0,
        startup_timeout_seconds=2.5,
        enabled=False,
        aliases={"get_thing": "thing"},
    )
    assert profile.servers[1].cwd == tmp_path / "user" / "work"
    remote = profile.servers[2]
    assert (remote.url, remote.command, remote.secret_names) == ("https://example.com/mcp", None, ("remote.token",))
    assert remote.headers["X-Client"] == "mcpmux"
    assert profile.policy == PolicySpec(default="deny", allow=("local__*",), deny=("local__delete_*",))


def test_omitted_keys_take_the_models_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, SERVER))
    assert profile.servers == (ServerSpec(name="t", command="x"),)
    assert (profile.policy, profile.max_name_length, profile.description) == (PolicySpec(), DEFAULT_MAX_NAME_LENGTH, "")


def test_the_demo_profile_loads_with_time_git_and_git_writes_denied() -> None:
    profile = load_profile(REPO / "profiles" / "demo.toml")
    time, git = profile.servers
    assert (time.command, time.args) == ("mcp-server-time", ("--local-timezone", "UTC"))
    assert (git.command, git.args, git.cwd) == ("mcp-server-git", ("--repository", "."), REPO)
    assert profile.policy.default == "allow"
    assert {"git__git_commit", "git__git_add", "git__git_reset"} <= set(profile.policy.deny)


def test_the_example_team_profile_loads_with_secret_references_and_deny_by_default() -> None:
    profile = load_profile(REPO / "profiles" / "example-team.toml")
    assert profile.policy.default == "deny"
    assert {name for s in profile.servers for name in s.secret_names} == {"github-pat", "docs-api-token"}
    assert [s.name for s in profile.enabled_servers] == ["time"]


def test_profile_hash_is_the_sha256_of_the_exact_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, SERVER)
    before = profile_hash(path)
    assert before == hashlib.sha256(SERVER.encode()).hexdigest()
    path.write_text(SERVER + "\n", encoding="utf-8")
    assert profile_hash(path) != before


# ---- discovery ----------------------------------------------------------------------------------------------


def test_a_name_is_looked_up_in_the_project_before_the_user_folder(tmp_path: Path, home: Path) -> None:
    project = write(tmp_path / "profiles", SERVER, "both.toml")
    write(home / "profiles", SERVER, "both.toml")
    user_only = write(home / "profiles", SERVER, "mine.toml")
    assert find_profile("both", cwd=tmp_path) == project
    assert find_profile("mine", cwd=tmp_path) == user_only


@pytest.mark.parametrize("arg", ["elsewhere/p.toml", "p.toml", "plain"])
def test_a_value_with_a_slash_or_toml_suffix_or_an_existing_file_is_a_path(tmp_path: Path, arg: str) -> None:
    target = write(tmp_path / Path(arg).parent, SERVER, Path(arg).name)
    write(tmp_path / "profiles", SERVER, "plain.toml")  # the name lookup would find this one instead
    assert find_profile(arg, cwd=tmp_path) == target


def test_a_missing_path_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        find_profile("nope/p.toml", cwd=tmp_path)
    assert caught.value.problems[0].path == tmp_path / "nope" / "p.toml"


def test_an_unknown_name_says_where_it_looked_and_what_exists(tmp_path: Path, home: Path) -> None:
    write(tmp_path / "profiles", SERVER, "demo.toml")
    write(home / "profiles", SERVER, "mine.toml")
    with pytest.raises(ProfileError) as caught:
        find_profile("dmeo", cwd=tmp_path)
    (problem,) = caught.value.problems
    assert str(tmp_path / "profiles" / "dmeo.toml") in problem.message
    assert str(home / "profiles" / "dmeo.toml") in problem.message
    assert "available: demo, mine" in problem.message
    assert "mcpmux profile list" in problem.fix


def test_list_shows_project_profiles_first_and_a_shadowed_name_twice(tmp_path: Path, home: Path) -> None:
    write(tmp_path / "profiles", SERVER, "b.toml")
    write(tmp_path / "profiles", SERVER, "a.toml")
    write(home / "profiles", SERVER, "a.toml")
    entries = list_profiles(cwd=tmp_path)
    assert [(e.name, e.source) for e in entries] == [("a", "project"), ("b", "project"), ("a", "user")]
    assert not any(e.active for e in entries)


def test_list_marks_only_the_entry_the_active_name_resolves_to(tmp_path: Path, home: Path) -> None:
    write(tmp_path / "profiles", SERVER, "a.toml")
    write(home / "profiles", SERVER, "a.toml")
    set_active_profile("a", cwd=tmp_path)
    assert [(e.source, e.active) for e in list_profiles(cwd=tmp_path)] == [("project", True), ("user", False)]


def test_list_is_empty_when_no_profile_folder_exists(tmp_path: Path) -> None:
    assert list_profiles(cwd=tmp_path) == []


# ---- the active profile -------------------------------------------------------------------------------------


def test_no_profile_is_active_until_one_is_used(tmp_path: Path) -> None:
    assert active_profile_name() is None


def test_using_a_name_records_the_profiles_absolute_path_in_a_private_folder(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path / "profiles", SERVER, "demo.toml")
    assert set_active_profile("demo", cwd=tmp_path) == path
    assert active_profile_name() == str(path)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert sorted(p.name for p in home.iterdir()) == ["active-profile"]  # no temp file left behind


def test_using_a_path_records_the_absolute_path(tmp_path: Path) -> None:
    path = write(tmp_path / "elsewhere", SERVER, "team.toml")
    set_active_profile("elsewhere/team.toml", cwd=tmp_path)
    assert active_profile_name() == str(path)


def test_a_project_profile_made_active_by_name_resolves_from_any_other_folder(tmp_path: Path) -> None:
    # A host starts `mcpmux serve` in a folder of its own choosing, not in the project.
    path = write(tmp_path / "project" / "profiles", SERVER, "demo.toml")
    set_active_profile("demo", cwd=tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert resolve_profile_path(None, cwd=elsewhere) == path
    assert active_profile(cwd=elsewhere) == ActiveProfile(str(path), path)


def test_an_active_user_profile_is_not_replaced_by_a_same_named_profile_of_the_folder_serve_starts_in(
    tmp_path: Path, home: Path
) -> None:
    mine = write(home / "profiles", SERVER, "work.toml")
    set_active_profile("work", cwd=tmp_path)
    other_project = tmp_path / "repo"
    write(other_project / "profiles", SERVER, "work.toml")
    assert resolve_profile_path(None, cwd=other_project) == mine


def test_an_active_profile_recorded_by_name_by_an_older_mcpmux_still_resolves_and_says_so(
    tmp_path: Path, home: Path
) -> None:
    path = write(tmp_path / "project" / "profiles", SERVER, "demo.toml")
    home.mkdir()
    (home / "active-profile").write_text("demo\n")
    here = active_profile(cwd=tmp_path / "project")
    assert here is not None and here.by_name and here.path == path
    elsewhere = active_profile(cwd=home)
    assert elsewhere is not None and elsewhere.path is None
    assert "no profile named 'demo'" in elsewhere.problem


def test_an_invalid_profile_is_not_made_active(tmp_path: Path) -> None:
    good = write(tmp_path / "profiles", SERVER, "good.toml")
    write(tmp_path / "profiles", SERVER + "typo = 1", "bad.toml")
    set_active_profile("good", cwd=tmp_path)
    with pytest.raises(ProfileError):
        set_active_profile("bad", cwd=tmp_path)
    assert active_profile_name() == str(good)


def test_resolve_prefers_the_argument_then_the_active_profile_then_demo(tmp_path: Path) -> None:
    write(tmp_path / "profiles", SERVER, "demo.toml")
    write(tmp_path / "profiles", SERVER, "team.toml")
    write(tmp_path / "profiles", SERVER, "other.toml")
    assert resolve_profile(None, cwd=tmp_path).name == "demo"
    set_active_profile("team", cwd=tmp_path)
    assert resolve_profile(None, cwd=tmp_path).name == "team"
    assert resolve_profile("other", cwd=tmp_path).name == "other"


def test_resolve_without_any_profile_explains_how_to_choose_one(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_profile(None, cwd=tmp_path)
    assert "mcpmux profile use NAME" in caught.value.problems[0].fix
    assert "--profile" in caught.value.problems[0].fix
