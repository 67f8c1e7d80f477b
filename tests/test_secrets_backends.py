"""Secret stores besides the keyring (the environment, for CI), their chain, and `mcpmux secret check`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import keyring
import pytest
import typer
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from mcpmux.cli import secret_cmd
from mcpmux.errors import MCPMuxError, ReadOnlyStore, SecretError
from mcpmux.profile.model import SecretRef
from mcpmux.secrets.backends import ChainStore, EnvStore, default_store, env_var_name
from mcpmux.secrets.resolve import resolve_env
from mcpmux.secrets.store import SERVICE, KeyringStore
from tests.conftest import fixture_server_toml, host_session

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


@pytest.mark.parametrize(
    ("name", "variable"),
    [("gh", "MCPMUX_SECRET_GH"), ("gh-pat", "MCPMUX_SECRET_GH_PAT"), ("db.prod_pw", "MCPMUX_SECRET_DB_PROD_PW")],
)
def test_the_env_store_reads_a_secret_from_mcpmux_secret_and_the_upper_cased_name(name: str, variable: str) -> None:
    assert env_var_name(name) == variable


async def test_the_env_store_finds_a_set_variable_treats_an_empty_one_as_absent_and_cannot_be_written() -> None:
    store = EnvStore({"MCPMUX_SECRET_GH": "ghp_value", "MCPMUX_SECRET_EMPTY": ""})
    assert await store.get("gh") == "ghp_value"
    assert await store.get("empty") is None
    assert await store.get("other") is None
    with pytest.raises(ReadOnlyStore):
        await store.set("gh", "x")


async def test_a_chain_returns_the_first_store_that_has_the_secret_and_writes_to_the_first_writable(
    file_keyring: PlaintextKeyring,
) -> None:
    keyring.set_password(SERVICE, "both", "from-keyring")
    keyring.set_password(SERVICE, "keyring-only", "kr-value")
    chain = ChainStore([EnvStore({"MCPMUX_SECRET_BOTH": "from-env"}), KeyringStore()])
    with anyio.fail_after(10):
        assert await chain.get("both") == "from-env"
        assert await chain.get("keyring-only") == "kr-value"
        assert await chain.get("nowhere") is None
        await chain.set("new", "stored")
        assert await chain.delete("new") is True
    assert file_keyring.get_password(SERVICE, "new") is None


async def test_a_secret_missing_from_a_chain_names_every_place_looked_and_each_fix(
    file_keyring: PlaintextKeyring,
) -> None:
    chain = ChainStore([EnvStore({}), KeyringStore()])
    with anyio.fail_after(10), pytest.raises(SecretError) as caught:
        await resolve_env({"TOKEN": SecretRef("api-token")}, chain)
    assert str(caught.value) == (
        "secret 'api-token' is not set: export MCPMUX_SECRET_API_TOKEN in the environment that starts mcpmux; "
        "or not in the keyring (service 'mcpmux'); store it with: mcpmux secret set api-token"
    )


@pytest.mark.parametrize(
    ("setting", "kinds"),
    [
        (None, [KeyringStore]),
        ("keyring", [KeyringStore]),
        ("env", [EnvStore]),
        ("env,keyring", [EnvStore, KeyringStore]),
        (" ENV , keyring ,", [EnvStore, KeyringStore]),
    ],
)
def test_mcpmux_secrets_selects_the_stores_in_lookup_order(setting: str | None, kinds: list[type]) -> None:
    store = default_store({} if setting is None else {"MCPMUX_SECRETS": setting})
    stores = store.stores if isinstance(store, ChainStore) else (store,)
    assert [type(s) for s in stores] == kinds


def test_an_unknown_store_in_mcpmux_secrets_is_an_error_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(MCPMuxError, match="MCPMUX_SECRETS='vault' names an unknown secret store 'vault'; use"):
        default_store({"MCPMUX_SECRETS": "vault"})


async def test_a_secret_from_the_env_store_reaches_its_downstream_but_the_variable_itself_does_not(
    write_profile: WriteProfile,
) -> None:
    value = "ci-secret-value-0123"
    profile = write_profile(fixture_server_toml("alpha", env='{ API_TOKEN = { secret = "ci-token" } }'))
    env = {"MCPMUX_SECRETS": "env", "MCPMUX_SECRET_CI_TOKEN": value}
    with anyio.fail_after(60):
        async with host_session(profile, env=env) as host:
            names = await host.call_tool("alpha__env_names", {})
            seen = await host.call_tool("alpha__show_env", {"name": "API_TOKEN"})
    listed = names.model_dump()["structured_content"]["result"]
    assert "API_TOKEN" in listed
    assert not [n for n in listed if n.startswith("MCPMUX_SECRET")]
    assert seen.content[0].model_dump()["text"] == "[redacted:ci-token]"


# ---- mcpmux secret check ----------------------------------------------------------------------------------------

PROFILE = """
[servers.github]
command = "github-mcp"
env = { GITHUB_TOKEN = { secret = "gh" } }

[servers.remote]
url = "https://example.com/mcp"
headers = { Authorization = "Bearer {secret:remote-token}" }
"""


def _check(tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, str, BaseException | None]:
    path = tmp_path / "team.toml"
    path.write_text(PROFILE, encoding="utf-8")
    app = typer.Typer()
    secret_cmd.register(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["secret", "check", str(path)], env=env)
    return result.exit_code, result.stderr, result.exception


def test_secret_check_exits_1_naming_each_missing_secret_who_uses_it_and_the_command_that_stores_it(
    file_keyring: PlaintextKeyring, tmp_path: Path
) -> None:
    keyring.set_password(SERVICE, "gh", "ghp_value")
    code, stderr, exc = _check(tmp_path)
    assert code == 1
    assert isinstance(exc, MCPMuxError)
    assert "1 of 2 secrets" in str(exc)
    assert "missing: secret 'remote-token' is not in the keyring" in stderr
    assert "mcpmux secret set remote-token (used by team/remote)" in stderr
    assert "'gh'" not in stderr
    assert "ghp_value" not in stderr


def test_secret_check_passes_when_every_secret_is_found_in_the_stores_mcpmux_secrets_selects(
    file_keyring: PlaintextKeyring, tmp_path: Path
) -> None:
    keyring.set_password(SERVICE, "gh", "ghp_value")
    env = {"MCPMUX_SECRETS": "env,keyring", "MCPMUX_SECRET_REMOTE_TOKEN": "remote-value"}
    code, stderr, exc = _check(tmp_path, env)
    assert (code, exc) == (0, None)
    assert "all 2 secrets" in stderr
    assert "(env, keyring)" in stderr
