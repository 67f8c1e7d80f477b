"""`mcpmux auth login`: sign in to one remote server with a person at the browser, and keep the tokens.

The flow is the SDK's, driven by a real MCP handshake with the server: its 401 starts
discovery, registration (unless the profile names a client), the authorization request
with PKCE, and the token exchange. mcpmux supplies the browser (`webbrowser`, or the URL
printed for a person to open elsewhere) and the loopback callback (`callback.py`).

A client registered dynamically keeps the callback port it registered with: the next
sign-in listens there again, or registers afresh when that port is taken.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx2
from mcp.client.auth import OAuthFlowError
from mcp.shared.auth import AuthorizationCodeResult

from mcpmux import __version__
from mcpmux.errors import MCPMuxError
from mcpmux.oauth import callback
from mcpmux.oauth.client import MuxOAuth, preregistered_client, redirect_uri
from mcpmux.oauth.session import client_secret
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.profile.model import ServerSpec
from mcpmux.secrets.store import KeyringStore, SecretStore

DEFAULT_WAIT_SECONDS = 300.0
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=60.0)
HANDSHAKE_VERSION = "2025-11-25"  # the last version whose servers all answer `initialize`
CLIENT_INFO = {"name": "mcpmux-auth-login", "version": __version__}


class LoginError(MCPMuxError):
    """Signing in to a server failed; the message says where and what to do."""


async def _bind(spec: ServerSpec, port: int) -> anyio.abc.Listener[anyio.abc.SocketStream]:
    """The callback listener: on `port`, or when a dynamically registered client's port is taken, on a new one."""
    try:
        return await callback.bind(port)
    except OSError as exc:
        if spec.oauth is not None and spec.oauth.callback_port is not None:
            raise LoginError(
                f"server '{spec.name}': callback port {port} on 127.0.0.1 is in use ({exc.strerror}); close what "
                "holds it, or change oauth.callback_port (and the redirect URI registered for the client)"
            ) from None
        return await callback.bind(0)  # the client registers again, with the new port


def _has_browser() -> bool:
    """Whether `webbrowser` can show a page without taking over this terminal (a console browser would)."""
    if os.environ.get("BROWSER") or not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _stored_port(storage: KeyringTokenStorage) -> int:
    """The callback port of a dynamically registered client (0: none stored)."""
    uris = storage.client_info.redirect_uris if storage.client_info else None
    port = urlsplit(str(uris[0])).port if uris else None
    return port or 0


async def login(
    spec: ServerSpec,
    store: SecretStore,
    *,
    say: Callable[[str], None],
    open_browser: bool = True,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
) -> KeyringTokenStorage:
    """Sign in to `spec` and store its tokens; returns the storage (for what was granted). See the module docstring."""
    if spec.url is None or spec.oauth is None:
        why = "is a local server" if spec.url is None else "does not sign in with OAuth (its profile entry says so)"
        raise LoginError(f"server '{spec.name}' {why}; `auth login` is for remote servers that use OAuth")
    oauth = spec.oauth
    secret = await client_secret(oauth, store)
    storage = KeyringTokenStorage(KeyringStore(), spec.name, spec.url)
    await storage.load()  # a stored registration: its callback port, and the client to reuse
    port = oauth.callback_port or (0 if oauth.client_id else _stored_port(storage))
    listener = await _bind(spec, port)
    try:
        async with callback.serve(listener) as cb:
            await _sign_in(spec, storage, cb, secret, say=say, open_browser=open_browser, wait_seconds=wait_seconds)
    except Exception as exc:  # raised inside the listener's task group: reported by its innermost cause
        raise _explain(spec, exc) from None
    if not storage.signed_in:
        raise LoginError(f"server '{spec.name}' at {spec.url} did not ask for a sign-in; nothing was stored")
    return storage


async def _sign_in(
    spec: ServerSpec,
    storage: KeyringTokenStorage,
    cb: callback.Callback,
    secret: str | None,
    *,
    say: Callable[[str], None],
    open_browser: bool,
    wait_seconds: float,
) -> None:
    """The SDK's flow with the browser and the callback `cb` as its two handlers; the tokens end in `storage`."""
    assert spec.url is not None and spec.oauth is not None
    oauth = spec.oauth
    redirect = redirect_uri(cb.port)
    storage.preregistered = preregistered_client(oauth, redirect, secret)
    if storage.client_info is not None and redirect not in {str(u) for u in storage.client_info.redirect_uris or []}:
        storage.client_info = None  # registered for another callback port: register again
    storage.tokens = None  # sign in afresh, whatever is stored; the keyring entry is replaced once it succeeds

    async def open_page(url: str) -> None:
        cb.expect = callback.state_of(url)
        opened = open_browser and _has_browser() and webbrowser.open(url)
        say(
            f"{'Opened your browser to sign in' if opened else 'Open this URL in a browser to sign in'} "
            f"to server '{spec.name}':\n{url}"
        )

    async def wait_for_redirect() -> AuthorizationCodeResult:
        return await cb.wait(wait_seconds)

    auth = MuxOAuth(
        server=spec.name,
        url=spec.url,
        spec=oauth,
        storage=storage,
        redirect=redirect,
        interactive=True,
        redirect_handler=open_page,
        callback_handler=wait_for_redirect,
    )
    await _handshake(spec.url, auth, wait_seconds)


async def _handshake(url: str, auth: httpx2.Auth, wait_seconds: float) -> None:
    """One request the server protects, through `auth`: its challenge runs the whole sign-in inside it.

    For streamable HTTP an `initialize`, for legacy SSE opening the stream; only that one
    request, so the sign-in ends with the tokens as the server issued them (a full session
    would go on to refresh a short-lived token, and to leave a session behind).
    """
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    with anyio.fail_after(wait_seconds + 60):
        async with httpx2.AsyncClient(auth=auth, timeout=HTTP_TIMEOUT) as client:
            if urlsplit(url).path.rstrip("/").endswith("/sse"):
                request = client.build_request("GET", url, headers={"Accept": "text/event-stream"})
            else:
                request = client.build_request("POST", url, json=initialize, headers=accept)
            response = await client.send(request, stream=True)
            await response.aclose()
    if response.status_code in (401, 403):  # any other answer came from past the token check: the sign-in worked
        raise LoginError(f"server at {url} still refused the token after signing in (HTTP {response.status_code})")


def _explain(spec: ServerSpec, exc: BaseException) -> MCPMuxError:
    """One sentence for what went wrong, from the innermost cause of a (grouped) failure."""
    while isinstance(exc, BaseExceptionGroup):
        group = cast(BaseExceptionGroup[BaseException], exc)
        exc = group.exceptions[0]
    if isinstance(exc, MCPMuxError):
        return exc
    if isinstance(exc, TimeoutError):
        return LoginError(f"signing in to server '{spec.name}' did not finish in time; run the command again")
    if isinstance(exc, OAuthFlowError):
        return LoginError(f"signing in to server '{spec.name}' at {spec.url} failed: {exc}")
    if isinstance(exc, httpx2.HTTPError):
        return LoginError(f"server '{spec.name}' is unreachable at {spec.url}: {type(exc).__name__}: {exc}")
    return LoginError(f"signing in to server '{spec.name}' failed: {type(exc).__name__}: {exc}")
