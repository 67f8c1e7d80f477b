"""The OAuth side of connecting to one remote server in `serve`: its auth and the secrets redaction must know."""

from __future__ import annotations

from collections.abc import Callable

from mcp.shared.auth import OAuthToken

from mcpmux.errors import SecretError
from mcpmux.oauth.client import MuxOAuth, preregistered_client, redirect_uri
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.profile.model import OAuthSpec, ServerSpec
from mcpmux.secrets.resolve import missing_message
from mcpmux.secrets.store import KeyringStore, SecretStore


def token_secrets(server: str, tokens: OAuthToken) -> dict[str, str]:
    """A server's tokens as named secrets, for the `Redactor` (`[redacted:oauth-access.NAME]`)."""
    found = {f"oauth-access.{server}": tokens.access_token}
    if tokens.refresh_token:
        found[f"oauth-refresh.{server}"] = tokens.refresh_token
    return found


async def client_secret(spec: OAuthSpec, store: SecretStore) -> str | None:
    """The value of the profile's `client_secret` reference; `SecretError` naming the fix when it is missing."""
    if spec.client_secret is None:
        return None
    name = spec.client_secret.name
    value = await store.get(name)
    if value is None:
        raise SecretError(name, missing_message(store, name))
    return value


async def serve_auth(
    spec: ServerSpec,
    store: SecretStore,
    note: Callable[[str], None],
    on_secrets: Callable[[str, dict[str, str]], None] | None = None,
) -> tuple[MuxOAuth, dict[str, str]]:
    """The non-interactive auth for `spec` (see client.py) and the secrets it holds now (client secret, tokens).

    `on_secrets` hears of every secret again whenever a refresh brings a new token, so redaction keeps up.

    A token entry the keyring cannot give (locked, unreadable) counts as none: the server is then
    reached without a token, which is enough for a server that needs none and otherwise ends in
    `LoginRequired`. `note` gets a line for the server's log; never a value.
    """
    assert spec.oauth is not None and spec.url is not None
    secret = await client_secret(spec.oauth, store)  # a missing one is the profile's to fix: raised
    redirect = redirect_uri(spec.oauth.callback_port or 0)
    used: dict[str, str] = {}
    if secret is not None and spec.oauth.client_secret is not None:
        used[spec.oauth.client_secret.name] = secret
    loading = True

    def learned(secrets: dict[str, str]) -> None:
        used.update(secrets)
        if on_secrets is not None and not loading:
            on_secrets(spec.name, dict(used))

    storage = KeyringTokenStorage(
        KeyringStore(),
        spec.name,
        spec.url,
        preregistered=preregistered_client(spec.oauth, redirect, secret),
        on_tokens=lambda tokens: learned(token_secrets(spec.name, tokens)),
    )
    try:
        found = await storage.load()
    except SecretError as exc:
        note(f"mcpmux: OAuth tokens of '{spec.name}' could not be read: {exc}")
    else:
        note(f"mcpmux: {'using the stored OAuth sign-in' if found else 'not signed in with OAuth'} for {spec.url}")
    loading = False  # what load found is returned below; from now on a new token is news
    auth = MuxOAuth(
        server=spec.name,
        url=spec.url,
        spec=spec.oauth,
        storage=storage,
        redirect=redirect,
        interactive=False,
    )
    return auth, used
