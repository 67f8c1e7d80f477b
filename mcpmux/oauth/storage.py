"""Where one server's OAuth state lives: a single keyring entry (service `mcpmux`), never a file.

The entry's name is `oauth.<server>.<hash of its URL>`: a profile that points the same
server name at another URL can never be handed tokens issued for the first one. Its value
is JSON holding the SDK's `OAuthToken` and client registration, the absolute expiry time
(the SDK keeps only the relative `expires_in`, which a restarted process cannot use, so it
would send an expired token instead of refreshing it) and the authorization server's
metadata (without it the SDK refreshes at `<server origin>/token`, which is wrong for
any authorization server of its own).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson
import pydantic
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken, ProtectedResourceMetadata
from mcp.shared.auth_utils import calculate_token_expiry

from mcpmux.secrets.store import SecretStore


def entry_name(server: str, url: str) -> str:
    """The keyring entry holding `server`'s OAuth state for `url` (a valid secret name: see secrets/store.py)."""
    return f"oauth.{server}.{hashlib.sha256(url.encode()).hexdigest()[:16]}"


class KeyringTokenStorage:
    """The SDK's `TokenStorage` over one keyring entry, with the expiry and metadata it does not keep.

    `preregistered`, when the profile names a `client_id`, is the client record used instead of a stored
    one (and never stored). `on_tokens` is called with each new token, so redaction learns it at once.
    """

    def __init__(
        self,
        store: SecretStore,
        server: str,
        url: str,
        *,
        preregistered: OAuthClientInformationFull | None = None,
        on_tokens: Callable[[OAuthToken], None] | None = None,
    ) -> None:
        self._store, self.server, self.url = store, server, url
        self.name = entry_name(server, url)
        self.preregistered = preregistered
        self._on_tokens = on_tokens
        self.tokens: OAuthToken | None = None
        self.expires_at: float | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.auth_metadata: OAuthMetadata | None = None
        self.resource_metadata: ProtectedResourceMetadata | None = None
        self.metadata_source: Callable[[], tuple[OAuthMetadata | None, ProtectedResourceMetadata | None]] | None = None
        """Set by the provider: the metadata it discovered, saved along with each new token."""

    async def load(self) -> bool:
        """Read the entry; False if there is none (an unreadable one counts as none: signing in replaces it)."""
        raw = await self._store.get(self.name)
        if raw is None:
            return False
        try:
            data: dict[str, Any] = orjson.loads(raw)
            tokens = data.get("tokens")
            self.tokens = None if tokens is None else OAuthToken.model_validate(tokens)
            expires_at = data.get("expires_at")
            self.expires_at = float(expires_at) if isinstance(expires_at, int | float) else None
            client = data.get("client_info")
            self.client_info = None if client is None else OAuthClientInformationFull.model_validate(client)
            auth = data.get("auth_metadata")
            self.auth_metadata = None if auth is None else OAuthMetadata.model_validate(auth)
            resource = data.get("resource_metadata")
            self.resource_metadata = None if resource is None else ProtectedResourceMetadata.model_validate(resource)
        except (orjson.JSONDecodeError, pydantic.ValidationError, TypeError, ValueError, AttributeError):
            self.tokens = self.client_info = self.auth_metadata = self.resource_metadata = None
            self.expires_at = None
            return False
        if self.tokens is not None and self._on_tokens is not None:
            self._on_tokens(self.tokens)
        return True

    @property
    def signed_in(self) -> bool:
        return self.tokens is not None

    def seconds_left(self) -> float | None:
        """Seconds until the access token expires (negative once it has); None if it never does or is absent."""
        return None if self.expires_at is None else self.expires_at - time.time()

    async def forget(self) -> bool:
        """Delete the entry; False if there was none."""
        self.tokens = self.client_info = None
        self.expires_at = None
        return await self._store.delete(self.name)

    # --- the SDK's TokenStorage ----------------------------------------------------
    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens, self.expires_at = tokens, calculate_token_expiry(tokens.expires_in)
        if self.metadata_source is not None:
            auth, resource = self.metadata_source()
            self.auth_metadata = auth or self.auth_metadata
            self.resource_metadata = resource or self.resource_metadata
        if self._on_tokens is not None:
            self._on_tokens(tokens)
        await self._save()

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.preregistered or self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        if self.preregistered is not None:
            return  # the profile's client is the one to use; a registration is never kept in its place
        self.client_info = client_info
        await self._save()

    async def _save(self) -> None:
        def dump(model: pydantic.BaseModel | None) -> Any:
            return None if model is None else model.model_dump(mode="json", exclude_none=True)

        data = {
            "url": self.url,
            "tokens": dump(self.tokens),
            "expires_at": self.expires_at,
            "client_info": dump(self.client_info),
            "auth_metadata": dump(self.auth_metadata),
            "resource_metadata": dump(self.resource_metadata),
        }
        await self._store.set(self.name, orjson.dumps(data).decode())
