"""The loopback redirect target of `auth login`: one tiny HTTP listener on 127.0.0.1 (RFC 8252 §7.3).

It answers only `GET /callback` carrying the `state` of the authorization URL mcpmux built
(`expect`), so another local process cannot end a sign-in with a forged or stray request:
such requests get an error page and are otherwise ignored. The first matching one (a code,
or the authorization server's `error`) is the result; the SDK then checks `state` again,
and `iss`. The request is read with a size bound and a deadline; nothing is logged.
"""

from __future__ import annotations

import html
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from mcp.shared.auth import AuthorizationCodeResult

from mcpmux.errors import MCPMuxError
from mcpmux.oauth.client import CALLBACK_PATH

MAX_REQUEST_BYTES = 16 * 1024
READ_SECONDS = 10.0


class SignInFailed(MCPMuxError):
    """The authorization server refused the sign-in, or it did not finish in time."""


@dataclass(slots=True)
class Callback:
    """The listener's state: the port it got, the `state` it accepts, and the result once it came."""

    port: int
    expect: str | None = None
    result: AuthorizationCodeResult | None = None
    error: str | None = None
    done: anyio.Event = field(default_factory=anyio.Event)

    async def wait(self, seconds: float) -> AuthorizationCodeResult:
        """The redirect's code and state; `SignInFailed` if the server sent an error or none came in time."""
        with anyio.move_on_after(seconds):
            await self.done.wait()
        if self.error is not None:
            raise SignInFailed(f"the authorization server refused the sign-in: {self.error}")
        if self.result is None:
            raise SignInFailed(f"no answer from the browser within {seconds:g} s; run the command again")
        return self.result

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(READ_SECONDS):
                request = b""
                while b"\r\n\r\n" not in request and len(request) < MAX_REQUEST_BYTES:
                    try:
                        request += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                        return
                status, page = self._answer(request.split(b"\r\n", 1)[0])
                body = f"<!doctype html><title>mcpmux</title><p>{html.escape(page)}</p>".encode()
                head = f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                head += f"Content-Length: {len(body)}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
                try:
                    await stream.send(head.encode() + body)
                except (anyio.BrokenResourceError, OSError):
                    return

    def _answer(self, line: bytes) -> tuple[str, str]:
        parts = line.decode("latin-1").split(" ")
        if len(parts) != 3 or parts[0] != "GET":
            return "400 Bad Request", "Not a sign-in redirect."
        target = urlsplit(parts[1])
        if target.path != CALLBACK_PATH:
            return "404 Not Found", "Not a sign-in redirect."
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        if self.done.is_set() or self.expect is None or query.get("state") != self.expect:
            return "400 Bad Request", "This is not the sign-in mcpmux is waiting for."
        if "error" in query:
            detail = query.get("error_description")
            self.error = query["error"] + (f" ({detail})" if detail else "")
            self.done.set()
            return "200 OK", f"Sign-in failed: {self.error}. You can close this window."
        if not query.get("code"):
            return "400 Bad Request", "The redirect carries no authorization code."
        self.result = AuthorizationCodeResult(code=query["code"], state=query["state"], iss=query.get("iss"))
        self.done.set()
        return "200 OK", "Signed in. You can close this window and return to mcpmux."


def state_of(authorization_url: str) -> str | None:
    """The `state` parameter of an authorization URL."""
    values = parse_qs(urlsplit(authorization_url).query).get("state")
    return values[0] if values else None


async def bind(port: int) -> anyio.abc.Listener[anyio.abc.SocketStream]:
    """A listener on 127.0.0.1:`port` (0: any free port); `OSError` if the port is taken."""
    return await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)


@asynccontextmanager
async def serve(listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> AsyncGenerator[Callback]:
    """Answer redirects on `listener` until the block ends, then close it."""
    async with listener, anyio.create_task_group() as tg:
        callback = Callback(port=listener.extra(SocketAttribute.local_port))
        tg.start_soon(listener.serve, callback.handle)
        try:
            yield callback
        finally:
            tg.cancel_scope.cancel()
