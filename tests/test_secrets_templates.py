"""Secret references inside strings (`"Bearer {secret:NAME}"`): parsing, profile validation, resolution."""

from __future__ import annotations

from pathlib import Path

import anyio
import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from mcpmux.errors import ProfileError, SecretError, TemplateError
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import SecretRef, SecretTemplate, ServerSpec
from mcpmux.profile.templates import parse_secret_template
from mcpmux.secrets.resolve import resolve_env
from mcpmux.secrets.store import SERVICE, KeyringStore

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("plain value", "plain value"),
        ('{"json": "stays as written"}', '{"json": "stays as written"}'),
        ("{{ not a template }}", "{{ not a template }}"),
        ("Bearer {secret:remote-token}", SecretTemplate(("Bearer ", SecretRef("remote-token")))),
        ("{secret:a}", SecretTemplate((SecretRef("a"),))),
        ("{secret:user}:{secret:pw}@host", SecretTemplate((SecretRef("user"), ":", SecretRef("pw"), "@host"))),
        ("{{{secret:x}}}", SecretTemplate(("{", SecretRef("x"), "}"))),
        ("{{secret:x}} is how you write it", "{secret:x} is how you write it"),
    ],
)
def test_a_string_with_secret_references_parses_into_literal_and_reference_parts(
    text: str, parsed: str | SecretTemplate
) -> None:
    assert parse_secret_template(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Bearer {secret:tok", "a lone '{' at character 8"),
        ("{secret:tok} }", "a lone '}' at character 14"),
        ("{secret:has space}", "'{secret:has space}' does not name a secret"),
        ("{secret:}", "'{secret:}' does not name a secret"),
    ],
)
def test_a_malformed_secret_template_is_an_error_with_a_fix(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_secret_template(text)
    assert str(caught.value).startswith(message)
    assert caught.value.fix


def _profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "team.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_a_profile_may_put_secret_references_inside_env_values_and_headers(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        """
[servers.local]
command = "x"
env = { AUTH_HEADER = "Bearer {secret:local-token}", DSN = "postgres://app:{secret:db-pw}@db/app" }

[servers.remote]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer {secret:remote-token}" }
""",
    )
    profile = load_profile(path)
    local, remote = profile.servers
    assert local.env["AUTH_HEADER"] == SecretTemplate(("Bearer ", SecretRef("local-token")))
    assert local.secret_names == ("db-pw", "local-token")
    assert remote.secret_names == ("remote-token",)


def test_a_literal_credential_stays_an_error_and_a_bad_template_names_file_line_and_key(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        """[servers.remote]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer abc123", X-Other = "{secret:bad name}" }
""",
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    lines = [str(p) for p in caught.value.problems]
    assert lines == [
        f"{path}:3: servers.remote.headers.Authorization: looks like a credential; secrets never sit in the profile "
        '(write { secret = "authorization" } and run `mcpmux secret set authorization`; '
        'if it is no credential, list "Authorization" in servers.remote.not_credentials)',
        f"{path}:3: servers.remote.headers.X-Other: '{{secret:bad name}}' does not name a secret "
        "(write {secret:NAME} with NAME of [A-Za-z0-9._-], 1-128 chars)",
    ]


async def test_resolve_env_fills_templates_and_reports_each_secret_used_once(file_keyring: PlaintextKeyring) -> None:
    keyring.set_password(SERVICE, "user", "app-user")
    keyring.set_password(SERVICE, "pw", "p@ss-word")
    spec = ServerSpec(
        "db",
        command="x",
        env={
            "DSN": SecretTemplate(("postgres://", SecretRef("user"), ":", SecretRef("pw"), "@db")),
            "PASSWORD": SecretRef("pw"),
            "MODE": "ro",
        },
    )
    with anyio.fail_after(10):
        env, used = await resolve_env(spec.env, KeyringStore())
    assert env == {"DSN": "postgres://app-user:p@ss-word@db", "PASSWORD": "p@ss-word", "MODE": "ro"}
    assert used == {"user": "app-user", "pw": "p@ss-word"}
    assert spec.secret_names == ("pw", "user")


async def test_a_missing_secret_inside_a_template_names_the_secret_and_the_command_that_stores_it(
    file_keyring: PlaintextKeyring,
) -> None:
    env = {"AUTH": SecretTemplate(("Bearer ", SecretRef("remote-token")))}
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await resolve_env(env, KeyringStore())
    assert caught.value.secret == "remote-token"
    assert "mcpmux secret set remote-token" in str(caught.value)
