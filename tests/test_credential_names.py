"""Which env and header names count as credentials (a literal value there is refused), and the override."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpmux.errors import Problem, ProfileError
from mcpmux.profile.credentials import is_credential_name, words
from mcpmux.profile.load import load_profile


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return caught.value.problems


@pytest.mark.parametrize(
    "name",
    [
        *("GITHUB_TOKEN", "OPENAI_API_KEY", "APIKEY", "apiKey", "ApiKey", "X-API-Key", "CLIENT_SECRET"),
        *("AWS_SECRET_ACCESS_KEY", "SECRET_KEY", "PRIVATE_KEY", "ACCESS_KEY", "GITLAB_PAT", "db-password"),
        *("PGPASSWORD", "githubToken", "Authorization", "GOOGLE_APPLICATION_CREDENTIALS", "SIGNING_KEY"),
    ],
)
def test_a_name_that_holds_a_credential_is_flagged(name: str) -> None:
    assert is_credential_name(name)


@pytest.mark.parametrize(
    "name",
    [
        *("MONKEY", "SORT_KEY", "sortKey", "CACHE_KEY", "PUBLIC_KEY", "KEY", "PRIMARY_KEY", "KEYBOARD_LAYOUT"),
        *("PATH", "PYTHONPATH", "SSH_KEY_PATH", "GITHUB_TOKEN_FILE", "API_KEY_ID", "LOG_LEVEL", "MAX_TOKENS"),
        *("TOKENIZER", "COMPATIBILITY", "SPATIAL_INDEX"),
    ],
)
def test_a_name_that_only_contains_a_credential_word_is_not_flagged(name: str) -> None:
    assert not is_credential_name(name)


def test_names_are_cut_into_words_at_separators_and_camel_case_humps() -> None:
    assert words("OPENAI_API_KEY") == ["OPENAI", "API", "KEY"]
    assert words("apiKey") == ["API", "KEY"]
    assert words("APIKey") == ["API", "KEY"]
    assert words("x-api.key") == ["X", "API", "KEY"]
    assert words("MONKEY") == ["MONKEY"]


@pytest.mark.parametrize("name", ["MONKEY", "SORT_KEY"])
def test_a_profile_may_set_a_name_that_merely_ends_in_key_literally(tmp_path: Path, name: str) -> None:
    profile = load_profile(write(tmp_path, f'[servers.t]\ncommand = "x"\nenv = {{ {name} = "banana" }}\n'))
    assert profile.servers[0].env == {name: "banana"}


def test_a_flagged_name_is_refused_with_both_fixes_named(tmp_path: Path) -> None:
    (problem,) = problems_of(write(tmp_path, '[servers.t]\ncommand = "x"\nenv = { NEXT_TOKEN = "abc" }\n'))
    assert problem.key == "servers.t.env.NEXT_TOKEN"
    assert "looks like a credential" in problem.message
    assert 'write { secret = "next_token" }' in problem.fix
    assert 'list "NEXT_TOKEN" in servers.t.not_credentials' in problem.fix


def test_not_credentials_lets_a_listed_literal_through_in_env_and_headers(tmp_path: Path) -> None:
    local = '[servers.t]\ncommand = "x"\nenv = { NEXT_TOKEN = "abc", GITHUB_TOKEN = "" }\n'
    local += 'not_credentials = ["NEXT_TOKEN"]\n'
    remote = (
        '[servers.r]\nurl = "https://h/mcp"\nheaders = { "X-Page-Token" = "1" }\nnot_credentials = ["X-Page-Token"]\n'
    )
    profile = load_profile(write(tmp_path, local + remote))
    assert profile.servers[0].env == {"NEXT_TOKEN": "abc", "GITHUB_TOKEN": ""}
    assert profile.servers[1].headers == {"X-Page-Token": "1"}


def test_not_credentials_covers_only_the_names_it_lists(tmp_path: Path) -> None:
    text = '[servers.t]\ncommand = "x"\nenv = { NEXT_TOKEN = "abc", GITHUB_TOKEN = "ghp_x" }\n'
    text += 'not_credentials = ["NEXT_TOKEN"]\n'
    (problem,) = problems_of(write(tmp_path, text))
    assert problem.key == "servers.t.env.GITHUB_TOKEN"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('["NEXT_TOKN"]', "'NEXT_TOKN' is not in this server's env or headers"),
        ('"NEXT_TOKEN"', "must be an array of strings"),
        ("[1]", "item 0 must be a string"),
    ],
)
def test_not_credentials_is_validated_against_the_servers_own_names(tmp_path: Path, value: str, fragment: str) -> None:
    text = f'[servers.t]\ncommand = "x"\nenv = {{ NEXT_TOKEN = {{ secret = "t" }} }}\nnot_credentials = {value}\n'
    problems = problems_of(write(tmp_path, text))
    assert [p.key for p in problems] == ["servers.t.not_credentials"]
    assert fragment in problems[0].message
    assert problems[0].line == 4


def test_a_misspelt_not_credentials_name_gets_a_did_you_mean(tmp_path: Path) -> None:
    text = '[servers.t]\ncommand = "x"\nenv = { NEXT_TOKEN = "abc" }\nnot_credentials = ["NEXT_TOKN"]\n'
    problems = problems_of(write(tmp_path, text))
    assert "did you mean 'NEXT_TOKEN'?" in next(p.fix for p in problems if p.key == "servers.t.not_credentials")
