from __future__ import annotations

import base64
import json
import os
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import keyring.core
import orjson
import pytest
import typer
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, fail, null
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from mcpmux.cli import secret_cmd
from mcpmux.errors import SecretError
from mcpmux.profile.model import EnvValue, SecretRef
from mcpmux.secrets.keyrings import backend_name, backend_warning
from mcpmux.secrets.redact import Redactor
from mcpmux.secrets.resolve import resolve_env
from mcpmux.secrets.store import SERVICE, KeyringStore
from tests.conftest_keyring import BlockingKeyring

pytestmark = pytest.mark.anyio


# ---- KeyringStore -----------------------------------------------------------------------------------------------


async def test_keyring_store_stores_reads_and_deletes_a_secret(file_keyring: PlaintextKeyring) -> None:
    store = KeyringStore()
    with anyio.fail_after(10):
        assert await store.get("gh-token") is None
        await store.set("gh-token", "ghp_value")
        assert await store.get("gh-token") == "ghp_value"
        assert file_keyring.get_password(SERVICE, "gh-token") == "ghp_value"
        assert await store.delete("gh-token") is True
        assert await store.delete("gh-token") is False
        assert await store.get("gh-token") is None


def test_backend_name_reports_the_backend_python_keyring_backend_selects(file_keyring: PlaintextKeyring) -> None:
    assert backend_name() == "keyrings.alt.file.PlaintextKeyring"


async def test_keyring_store_gives_up_on_a_keyring_that_does_not_answer() -> None:
    backend = BlockingKeyring()
    try:
        with anyio.fail_after(10), pytest.raises(SecretError) as caught:
            await KeyringStore(backend, timeout=0.05).get("api-key")
    finally:
        backend.release.set()
    assert caught.value.secret == "api-key"
    assert "did not answer within 0.05 s: is it locked?" in str(caught.value)


async def test_keyring_store_explains_the_options_when_no_keyring_is_usable() -> None:
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await KeyringStore(fail.Keyring()).get("api-key")
    assert caught.value.secret == "api-key"
    message = str(caught.value)
    assert "no usable keyring backend" in message
    assert "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring" in message
    assert "GNOME Keyring" in message


async def test_keyring_store_names_the_secret_but_not_the_value_when_the_keyring_fails() -> None:
    backend = BlockingKeyring(read_only=True)
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await KeyringStore(backend).set("api-key", "s3cr3t-value")
    assert caught.value.secret == "api-key"
    assert "read-only" in str(caught.value)
    assert "s3cr3t-value" not in str(caught.value)


async def test_keyring_store_names_a_python_keyring_backend_that_cannot_be_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no.such.Backend")
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # make keyring load it afresh
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await KeyringStore().get("api-key")
    assert "PYTHON_KEYRING_BACKEND=no.such.Backend could not be loaded" in str(caught.value)


def _secret_service_or_skip() -> KeyringBackend:
    required = os.environ.get("MCPMUX_REQUIRE_SECRET_SERVICE") == "1" or os.environ.get("MCPMUX_REQUIRE_ALL") == "1"
    reason = ""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        reason = "DBUS_SESSION_BUS_ADDRESS is not set"
    else:
        try:
            _ = SecretService.Keyring.priority
        except RuntimeError as exc:
            reason = f"the Secret Service is not usable: {exc}"
    if reason and required:
        pytest.fail(f"MCPMUX_REQUIRE_SECRET_SERVICE=1 but {reason}")
    if reason:
        pytest.skip(reason)
    return SecretService.Keyring()


async def test_keyring_store_round_trips_a_secret_through_the_real_secret_service() -> None:
    store = KeyringStore(_secret_service_or_skip())
    name = f"mcpmux-test-{uuid.uuid4().hex}"
    with anyio.fail_after(30):
        try:
            await store.set(name, "value from the test")
            assert await store.get(name) == "value from the test"
        finally:
            assert await store.delete(name) is True
        assert await store.get(name) is None


# ---- resolve_env ------------------------------------------------------------------------------------------------


async def test_resolve_env_replaces_secret_references_and_reports_the_secrets_used(
    file_keyring: PlaintextKeyring,
) -> None:
    keyring.set_password(SERVICE, "gh", "ghp_123456")
    spec: dict[str, EnvValue] = {"GITHUB_TOKEN": SecretRef("gh"), "GH_AGAIN": SecretRef("gh"), "LOG": "debug"}
    with anyio.fail_after(10):
        env, used = await resolve_env(spec, KeyringStore())
    assert env == {"GITHUB_TOKEN": "ghp_123456", "GH_AGAIN": "ghp_123456", "LOG": "debug"}
    assert used == {"gh": "ghp_123456"}


async def test_resolve_env_says_how_to_store_a_missing_secret(file_keyring: PlaintextKeyring) -> None:
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await resolve_env({"TOKEN": SecretRef("absent")}, KeyringStore())
    assert caught.value.secret == "absent"
    assert str(caught.value) == (
        "secret 'absent' is not in the keyring (service 'mcpmux'); store it with: mcpmux secret set absent"
    )


# ---- Redactor ---------------------------------------------------------------------------------------------------

SECRET = 'p@ss/w+rd?=ünï"\\x'  # every encoding differs from the value


def _forms(value: str) -> list[str]:
    raw = value.encode()
    b64 = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return [value, urllib.parse.quote(value, safe=""), *b64, *(b.rstrip("=") for b in b64)]


@pytest.mark.parametrize("form", _forms(SECRET))
def test_redactor_replaces_a_secret_and_its_encodings_in_text(form: str) -> None:
    redactor = Redactor({"db": SECRET})
    assert redactor.redact_text(f"before {form} after") == "before [redacted:db] after"


ENCODERS: list[Callable[[object], bytes]] = [orjson.dumps, lambda v: json.dumps(v).encode()]


@pytest.mark.parametrize("form", _forms(SECRET))
@pytest.mark.parametrize("encode", ENCODERS, ids=["orjson", "ascii-json"])
def test_redactor_replaces_a_secret_and_its_encodings_inside_json_strings(
    form: str, encode: Callable[[object], bytes]
) -> None:
    document = encode({"text": f"before {form} after"})
    redacted = Redactor({"db": SECRET}).redact_bytes(document)
    assert orjson.loads(redacted) == {"text": "before [redacted:db] after"}


def test_redactor_ignores_values_shorter_than_four_characters() -> None:
    redactor = Redactor({"pin": "123", "empty": ""})
    assert not redactor
    assert redactor.redact_text("call 123") == "call 123"
    assert redactor.redact_bytes(b'"123"') == b'"123"'


def test_redactor_redacts_the_longer_of_two_overlapping_secrets_whole() -> None:
    redactor = Redactor({"short": "abcd", "long": "xxabcdyy"})
    assert redactor.redact_text("xxabcdyy and abcd") == "[redacted:long] and [redacted:short]"
    assert redactor.redact_bytes(b'"xxabcdyy abcd"') == b'"[redacted:long] [redacted:short]"'


def test_redactor_without_secrets_returns_its_input_untouched() -> None:
    redactor = Redactor({})
    data = b"x" * 1024
    assert not redactor
    assert redactor.redact_bytes(data) is data
    assert Redactor({"a": "value"})


def test_redactor_handles_a_ten_megabyte_result() -> None:
    secrets = {f"s{i}": base64.b64encode(os.urandom(24)).decode() for i in range(5)}
    redactor = Redactor(secrets)
    filler = "lorem ipsum dolor sit amet " * 80_000  # about 2 MB
    text = "".join(f"{filler}{value}" for value in secrets.values())
    document = orjson.dumps({"content": [{"type": "text", "text": text}]})
    assert len(document) > 10_000_000
    redacted = orjson.loads(redactor.redact_bytes(document))
    expected = "".join(f"{filler}[redacted:{name}]" for name in secrets)
    assert redacted["content"][0]["text"] == expected


# ---- CLI --------------------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    secret_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `secret` a group
    return app


def test_secret_set_stores_the_value_from_stdin_without_its_trailing_newline(file_keyring: PlaintextKeyring) -> None:
    result = CliRunner().invoke(_app(), ["secret", "set", "gh"], input="ghp_value\n")
    assert result.exit_code == 0, result.output
    assert file_keyring.get_password(SERVICE, "gh") == "ghp_value"
    assert "ghp_value" not in result.output


def test_secret_set_names_the_backend_and_warns_loudly_that_a_file_backend_keeps_it_unencrypted(
    file_keyring: PlaintextKeyring,
) -> None:
    result = CliRunner().invoke(_app(), ["secret", "set", "gh"], input="ghp_value\n")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "stored secret 'gh' in keyrings.alt.file.PlaintextKeyring (service 'mcpmux')"
    assert lines[1].startswith(
        f"WARNING: keyrings.alt.file.PlaintextKeyring is not an OS keyring: "
        f"it keeps secrets UNENCRYPTED in {file_keyring.file_path}; for real credentials use the OS keyring"
    )
    assert "ghp_value" not in result.output


def test_an_os_keyring_gets_no_warning_and_a_plaintext_file_one_does(file_keyring: PlaintextKeyring) -> None:
    assert backend_warning(SecretService.Keyring()) is None
    warning = backend_warning(file_keyring)
    assert warning is not None and "UNENCRYPTED" in warning.problem


def test_secret_set_into_a_disabled_keyring_is_refused_instead_of_reported_as_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `keyring --disable` selects the null backend, which accepts every value and keeps none.
    monkeypatch.setattr(keyring.core, "_keyring_backend", null.Keyring())
    result = CliRunner().invoke(_app(), ["secret", "set", "gh"], input="ghp_value\n")
    assert isinstance(result.exception, SecretError)
    assert "keyring.backends.null.Keyring) accepted the value but does not return it" in str(result.exception)
    assert "stored secret" not in result.output


def test_secret_set_refuses_an_empty_value(file_keyring: PlaintextKeyring) -> None:
    result = CliRunner().invoke(_app(), ["secret", "set", "gh"], input="\n")
    assert isinstance(result.exception, SecretError)
    assert file_keyring.get_password(SERVICE, "gh") is None


def test_secret_set_refuses_a_name_profiles_cannot_reference(file_keyring: PlaintextKeyring) -> None:
    result = CliRunner().invoke(_app(), ["secret", "set", "has space"], input="value\n")
    assert isinstance(result.exception, SecretError)


def test_secret_delete_removes_a_stored_secret_and_refuses_an_absent_one(file_keyring: PlaintextKeyring) -> None:
    keyring.set_password(SERVICE, "gh", "ghp_value")
    assert CliRunner().invoke(_app(), ["secret", "delete", "gh"]).exit_code == 0
    assert file_keyring.get_password(SERVICE, "gh") is None
    again = CliRunner().invoke(_app(), ["secret", "delete", "gh"])
    assert isinstance(again.exception, SecretError)


PROFILE = """
[servers.github]
command = "github-mcp"
env = { GITHUB_TOKEN = { secret = "gh" }, LOG = "info" }

[servers.search]
command = "search-mcp"
env = { API_KEY = { secret = "search-key" } }
"""


def test_secret_list_shows_each_referenced_secret_whether_present_and_who_uses_it(
    file_keyring: PlaintextKeyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "team.toml").write_text(PROFILE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MCPMUX_HOME", str(tmp_path / "home"))
    keyring.set_password(SERVICE, "gh", "ghp_value")
    result = CliRunner().invoke(_app(), ["secret", "list", "--profile", "team"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line.split()[2:] for line in result.stdout.splitlines() if "team/" in line}
    assert rows == {"gh": ["│", "yes", "│", "team/github", "│"], "search-key": ["│", "no", "│", "team/search", "│"]}
    assert "ghp_value" not in result.output
