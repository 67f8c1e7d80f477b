"""The SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`) set up for one profile server.

The SDK does discovery (protected-resource and authorization-server metadata), dynamic
registration or a client ID metadata document, PKCE, the token exchange and refreshes.
mcpmux adds what a gateway needs around it:

- tokens live in the keyring (`storage.py`), with their absolute expiry and the
  authorization server's metadata, so a restarted `serve` refreshes instead of failing;
- a client registered beforehand (`client_id`, `client_secret` from the profile) is used
  as is, and the profile's `scopes` are what sign-in asks for;
- in `serve` (`interactive=False`) nothing ever waits for a person: where the SDK would
  open the authorization page, or when there is no token at all and the server answers
  401, the request fails at once with `LoginRequired`, naming the command that fixes it.
  Nor does serve ever register a client (the SDK would, for a stored token without a
  registration, or one bound to another authorization server): that is `auth login`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import NoReturn
from urllib.parse import urljoin

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata
from pydantic import AnyUrl

from mcpmux.errors import SecretError, StartFailed
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.profile.model import OAuthSpec

CALLBACK_PATH = "/callback"
CLIENT_NAME = "mcpmux"
GRANT_TYPES = ["authorization_code", "refresh_token"]


class _NoFlowTraceback(logging.Filter):
    """The SDK logs each failed flow with a traceback; mcpmux reports it in one sentence with the fix instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "OAuth flow error"


logging.getLogger("mcp.client.auth.oauth2").addFilter(_NoFlowTraceback())


class LoginRequired(StartFailed):
    """The server wants a sign-in that only a person can give (`mcpmux auth login`)."""


def login_required(server: str, why: str) -> LoginRequired:
    return LoginRequired(server, f"server '{server}' {why}; sign in with: mcpmux auth login {server}")


def redirect_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def client_metadata(spec: OAuthSpec, redirect: str, *, confidential: bool) -> OAuthClientMetadata:
    """What mcpmux registers as: a native app with a loopback redirect (RFC 8252), public unless given a secret."""
    return OAuthClientMetadata(
        client_name=CLIENT_NAME,
        redirect_uris=[AnyUrl(redirect)],
        grant_types=list(GRANT_TYPES),
        response_types=["code"],
        scope=" ".join(spec.scopes) or None,
        token_endpoint_auth_method="client_secret_basic" if confidential else "none",
    )


def preregistered_client(spec: OAuthSpec, redirect: str, secret: str | None) -> OAuthClientInformationFull | None:
    """The profile's own client (`client_id`, its secret's value), or None when the client registers itself."""
    if spec.client_id is None:
        return None
    return OAuthClientInformationFull(
        client_id=spec.client_id,
        client_secret=secret,
        redirect_uris=[AnyUrl(redirect)],
        grant_types=list(GRANT_TYPES),
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
        scope=" ".join(spec.scopes) or None,
    )


class MuxOAuth(OAuthClientProvider):
    """`OAuthClientProvider` with the keyring storage, the profile's client and scopes; see the module docstring."""

    def __init__(
        self,
        *,
        server: str,
        url: str,
        spec: OAuthSpec,
        storage: KeyringTokenStorage,
        redirect: str,
        interactive: bool,
        redirect_handler: Callable[[str], Awaitable[None]] | None = None,
        callback_handler: Callable[[], Awaitable[AuthorizationCodeResult]] | None = None,
    ) -> None:
        self.server, self._spec, self._storage = server, spec, storage
        self._interactive = interactive
        confidential = spec.client_secret is not None
        super().__init__(
            server_url=url,
            client_metadata=client_metadata(spec, redirect, confidential=confidential),
            storage=storage,
            redirect_handler=redirect_handler if interactive else self._refuse,
            callback_handler=callback_handler if interactive else self._refuse,
            client_metadata_url=spec.client_metadata_url,
        )
        storage.metadata_source = lambda: (self.context.oauth_metadata, self.context.protected_resource_metadata)

    async def _refuse(self, *_: object) -> NoReturn:
        """Where the SDK would wait for a person: serve has none, so the request fails with the fix."""
        raise login_required(self.server, "needs you to sign in again (its token was refused)")

    async def _initialize(self) -> None:
        """The SDK's load, plus what it does not keep: the token's expiry and the authorization server."""
        await super()._initialize()
        storage = self._storage
        self.context.token_expiry_time = storage.expires_at
        if self.context.oauth_metadata is None:
            self.context.oauth_metadata = storage.auth_metadata
        if self.context.protected_resource_metadata is None and storage.resource_metadata is not None:
            self.context.protected_resource_metadata = storage.resource_metadata
            self.context.auth_server_url = str(storage.resource_metadata.authorization_servers[0])

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        if self._spec.scopes:  # the profile's choice wins over the scopes the server advertises
            self.context.client_metadata.scope = " ".join(self._spec.scopes)
        return await super()._perform_authorization_code_grant()

    async def _adopt_stored(self) -> None:
        """Before refreshing an expired token, take the keyring's if it holds another one.

        Another `serve` on the same profile (or `auth login`) may have refreshed since this one
        loaded: where the server rotates refresh tokens, ours is then spent, and refreshing with
        it would fail a sign-in that is in fact fine.
        """
        held = self.context.current_tokens
        if self._interactive or held is None or self.context.is_token_valid():
            return
        try:
            await self._storage.load()
        except SecretError:
            return  # the keyring is unavailable: refresh with what is held
        stored = self._storage.tokens
        if stored is not None and stored.access_token != held.access_token:
            self.context.current_tokens, self.context.token_expiry_time = stored, self._storage.expires_at

    def _registers(self, request: httpx2.Request) -> bool:
        """Whether `request` registers a client (at the advertised endpoint, or the SDK's `/register` fallback)."""
        metadata = self.context.oauth_metadata
        if metadata is not None and metadata.registration_endpoint is not None:
            target = str(metadata.registration_endpoint)
        else:
            target = urljoin(self.context.get_authorization_base_url(self.context.server_url), "/register")
        return request.method == "POST" and str(request.url) == target

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if self._interactive or self._storage.signed_in:
            async with self.context.lock:
                await self._adopt_stored()
            flow = super()._auth_flow(request)
            try:
                outgoing = await flow.__anext__()
                while True:
                    if not self._interactive and self._registers(outgoing):
                        raise login_required(self.server, "needs you to sign in again (it has no client registration)")
                    response = yield outgoing
                    outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return
            finally:
                await flow.aclose()
        # Never signed in: the request goes out bare (a public server needs nothing) and a challenge ends it.
        response = yield request
        if response.status_code == 401:
            raise login_required(self.server, "requires you to sign in (HTTP 401)")
