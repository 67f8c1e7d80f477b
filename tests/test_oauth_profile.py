"""`[servers.NAME.oauth]`: what a profile may say about signing in to a remote server, and `validate`'s errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcpmux.errors import Problem, ProfileError
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import OAuthSpec, SecretRef

REPO = Path(__file__).resolve().parent.parent
REMOTE = '[servers.r]\nurl = "https://mcp.example/mcp"\n'


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCPMUX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write(folder: Path, text: str) -> Path:
    path = folder / "p.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    return caught.value.problems


def test_a_remote_server_signs_in_when_asked_unless_it_sends_its_own_credentials(tmp_path: Path) -> None:
    text = REMOTE + '[servers.h]\nurl = "https://h/mcp"\nheaders = { authorization = "Bearer {secret:h-token}" }\n'
    text += '[servers.off]\nurl = "https://o/mcp"\noauth = false\n[servers.local]\ncommand = "x"\n'
    profile = load_profile(write(tmp_path, text))
    assert [(s.name, s.oauth) for s in profile.servers] == [
        ("r", OAuthSpec()),
        ("h", None),
        ("off", None),
        ("local", None),
    ]


def test_a_preregistered_client_is_read_with_its_secret_as_a_reference(tmp_path: Path) -> None:
    oauth = (
        'oauth = { client_id = "mcpmux-desktop", client_secret = { secret = "r-client" }, '
        'scopes = ["repo", "read:org"], callback_port = 33418 }\n'
    )
    profile = load_profile(write(tmp_path, REMOTE + oauth))
    (server,) = profile.servers
    assert server.oauth == OAuthSpec("mcpmux-desktop", SecretRef("r-client"), ("repo", "read:org"), 33418)
    assert server.secret_names == ("r-client",)


BAD = [
    ('oauth = { client_secret = "hunter22" , client_id = "c" }', "servers.r.oauth.client_secret", "secret reference"),
    ('oauth = { client_secret = { secret = "s" } }', "servers.r.oauth.client_secret", "add client_id"),
    ("oauth = { callback_port = 80 }", "servers.r.oauth.callback_port", "1024 to 65535"),
    ('oauth = { callback_port = "33418" }', "servers.r.oauth.callback_port", "must be an integer"),
    ('oauth = { scopes = "repo" }', "servers.r.oauth.scopes", "array of strings"),
    ('oauth = { scopes = ["a b"] }', "servers.r.oauth.scopes", "not a scope"),
    ('oauth = { client_id = "c", calback_port = 1 }', "servers.r.oauth.calback_port", "did you mean 'callback_port'"),
    ('oauth = { client_metadata_url = "http://x/c.json" }', "servers.r.oauth.client_metadata_url", "https URL"),
    ('oauth = { client_metadata_url = "https://x/;c" }', "servers.r.oauth.client_metadata_url", "https URL"),
    ('oauth = "yes"', "servers.r.oauth", "true, false or a table"),
    (
        'headers = { Authorization = "Bearer {secret:t}" }\noauth = { client_id = "c" }',
        "servers.r.oauth",
        "remove the header",
    ),
]


@pytest.mark.parametrize(("line", "key", "fragment"), BAD)
def test_each_oauth_mistake_names_its_key_and_the_fix(tmp_path: Path, line: str, key: str, fragment: str) -> None:
    path = write(tmp_path, REMOTE + line + "\n")
    found = [p for p in problems_of(path) if p.key == key]
    assert found, [str(p) for p in problems_of(path)]
    assert found[0].path == path and found[0].fix
    assert fragment in f"{found[0].message} ({found[0].fix})"


def test_oauth_on_a_local_server_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[servers.l]\ncommand = "x"\noauth = true\n')
    (problem,) = [p for p in problems_of(path) if p.key == "servers.l.oauth"]
    assert "only applies to a server with 'url'" in problem.message


def test_validate_reports_an_oauth_mistake_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, REMOTE + "oauth = { callback_port = 70000 }\n")
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", "validate", str(path)], cwd=REPO, capture_output=True, check=False
    )
    assert done.returncode != 0
    err = done.stderr.decode()
    assert f"{path}:3" in err and "servers.r.oauth.callback_port" in err and "1024 to 65535" in err
