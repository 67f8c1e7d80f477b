"""`[servers.NAME.oauth]` → an `OAuthSpec` (or None: the server never signs in), with problems keyed by path.

`oauth` may be absent (sign in when the server asks, unless the profile sends its own
`Authorization` header), `false` (never), `true` (sign in, registering dynamically), or a
table for a client registered beforehand: `client_id`, `client_secret = { secret = "NAME" }`,
`scopes`, `callback_port`, `client_metadata_url`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol, TypeVar, cast
from urllib.parse import urlparse

from mcpmux.profile.model import EnvValue, OAuthSpec, SecretRef

T = TypeVar("T")
Key = tuple[str, ...]

OAUTH_KEYS = ("client_id", "client_secret", "scopes", "callback_port", "client_metadata_url")
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token
_CLIENT_ID = re.compile(r"[\x20-\x7e]{1,512}")  # RFC 6749 VSCHAR, bounded
_SECRET_FIX = 'write client_secret = { secret = "NAME" } and store it with `mcpmux secret set NAME`'


class Checker(Protocol):
    """What `parse_oauth` needs of profile/load.py's `_Checker`."""

    def problem(self, key: Key, message: str, fix: str = "") -> None: ...
    def unknown_keys(self, table: Mapping[str, object], known: tuple[str, ...], where: Key) -> None: ...
    def typed(self, table: Mapping[str, object], name: str, where: Key, kind: type[T], what: str) -> T | None: ...
    def string_list(self, table: Mapping[str, object], name: str, where: Key) -> tuple[str, ...]: ...
    def secret_ref(self, value: Mapping[str, object], key: Key) -> SecretRef | None: ...


def parse_oauth(
    c: Checker, server: Mapping[str, object], where: Key, headers: Mapping[str, EnvValue]
) -> OAuthSpec | None:
    """The server's OAuth settings; None for a local server, `oauth = false`, or one sending its own credentials."""
    key = (*where, "oauth")
    raw = server.get("oauth")
    own_credentials = any(name.lower() == "authorization" for name in headers)
    if "url" not in server or raw is False:
        return None
    if raw is None:
        return None if own_credentials else OAuthSpec()
    if own_credentials:
        c.problem(
            key,
            "an 'Authorization' header and 'oauth' both set the server's credentials",
            "remove the header to sign in with `mcpmux auth login`, or remove 'oauth' to send the header",
        )
        return None
    if raw is True:
        return OAuthSpec()
    if not isinstance(raw, dict):
        c.problem(key, "must be true, false or a table", 'write oauth = { client_id = "...", callback_port = 33418 }')
        return None
    return _parse_table(c, cast(dict[str, object], raw), key)


def _parse_table(c: Checker, table: Mapping[str, object], key: Key) -> OAuthSpec | None:
    c.unknown_keys(table, OAUTH_KEYS, key)
    ok = True
    client_id = c.typed(table, "client_id", key, str, "a string")
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        c.problem((*key, "client_id"), "must be 1-512 printable ASCII characters", "copy it from the server's console")
        ok = False
    secret: SecretRef | None = None
    raw_secret = table.get("client_secret")
    if isinstance(raw_secret, dict):
        secret = c.secret_ref(cast(dict[str, object], raw_secret), (*key, "client_secret"))
        ok = ok and secret is not None
    elif raw_secret is not None:
        c.problem((*key, "client_secret"), "must be a secret reference; secrets never sit in the profile", _SECRET_FIX)
        ok = False
    if secret is not None and client_id is None:
        c.problem((*key, "client_secret"), "a client secret needs the 'client_id' it belongs to", "add client_id")
        ok = False
    scopes = c.string_list(table, "scopes", key)
    for scope in scopes:
        if not _SCOPE.fullmatch(scope):
            c.problem((*key, "scopes"), f"'{scope}' is not a scope", 'write each scope alone, e.g. ["read", "write"]')
            ok = False
    port = c.typed(table, "callback_port", key, int, "an integer")
    if port is not None and not 1024 <= port <= 65535:
        c.problem((*key, "callback_port"), f"must be a port from 1024 to 65535, not {port}", "write e.g. 33418")
        ok = False
    metadata_url = c.typed(table, "client_metadata_url", key, str, "a string")
    parsed = urlparse(metadata_url or "")  # urlparse, as the SDK's own check (is_valid_client_metadata_url) does
    if metadata_url is not None and (parsed.scheme != "https" or not parsed.netloc or parsed.path in ("", "/")):
        c.problem(
            (*key, "client_metadata_url"),
            f"'{metadata_url}' is not an https URL with a path",
            "write the URL of your client ID metadata document, e.g. https://example.com/mcpmux.json",
        )
        ok = False
    if not ok:
        return None
    return OAuthSpec(client_id, secret, scopes, port, metadata_url)
