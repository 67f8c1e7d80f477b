"""The shared gateway served by URL: MCP streamable HTTP on loopback, each HTTP session one attached host.

Every request passes the guard first (`Guard`): the Host header must name the loopback address the
gateway listens on (a DNS-rebound name does not), an Origin header must be a loopback origin (a page on
the web is refused even where the browser would send the request), and the user's bearer token
(shared/token.py) must be presented; only then does the SDK's transport see it. A session is opened
by `initialize` and is served by a front of its own from `Hosts.attach` (http_bridge.py), so policy,
secrets, redaction and audit are the front's, exactly as for a stdio host. A session that ends (DELETE,
or idle for `SESSION_IDLE_SECONDS`) detaches its host, cancelling its calls in flight.

2026-07-28 requests (no session, `server/discover`) are answered -32022 naming the 2025 versions: the
SDK's server transport serves that era only through a lowlevel `Server`, not a line-speaking front. A
host in "auto" mode then falls back to `initialize`; a host that speaks only 2026-07-28 attaches by
stdio (`serve --shared`) instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import anyio
import orjson
import uvicorn
from anyio.abc import TaskStatus
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcpmux import wire
from mcpmux.errors import MCPMuxError
from mcpmux.front.hosts import Hosts
from mcpmux.front.server import Front
from mcpmux.shared import loopback
from mcpmux.shared import token as tokens
from mcpmux.shared.http_bridge import bridge
from mcpmux.shared.loopback import Address
from mcpmux.shared.rows import host_row

logger = logging.getLogger("mcpmux")

PATH = "/mcp"
SESSION_IDLE_SECONDS = 30 * 60.0
"""A session with no request in flight and no GET stream open for this long is ended (the SDK's default);
`MCPMUX_HTTP_SESSION_IDLE_SECONDS` overrides it."""
MAX_SESSIONS = 256
SHUTDOWN_SECONDS = 3.0
"""How long open streams and connections get to close when the gateway stops."""


@dataclass(slots=True, eq=False)
class HttpHost:
    """One HTTP session's host, as `mcpmux status` shows it."""

    front: Front
    session: str
    since: float


def session_idle_seconds() -> float:
    try:
        seconds = float(os.environ.get("MCPMUX_HTTP_SESSION_IDLE_SECONDS", SESSION_IDLE_SECONDS))
    except ValueError:
        return SESSION_IDLE_SECONDS
    return seconds if math.isfinite(seconds) and seconds > 0 else SESSION_IDLE_SECONDS


class Sessions:
    """The HTTP sessions: each one a transport, a front from `hosts`, and the bridge between them."""

    def __init__(self, hosts: Hosts, address: Address) -> None:
        self.hosts = hosts
        self.address = address
        self.attached: list[HttpHost] = []
        self._transports: dict[str, StreamableHTTPServerTransport] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._idle = session_idle_seconds()
        self._security = TransportSecuritySettings(  # the guard checked these already; the transport checks again
            enable_dns_rebinding_protection=True,
            allowed_hosts=sorted(loopback.allowed_hosts(address)),
            allowed_origins=loopback.loopback_origins(),
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncGenerator[None]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield
            finally:
                with anyio.CancelScope(shield=True):  # every session ends, every host detaches
                    await self.close()
                tg.cancel_scope.cancel()
                self._tg = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await _unsupported_era(version, scope, receive, send)
            return
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        if session_id is None:
            await self._open(scope, receive, send)
            return
        transport = self._transports.get(session_id)
        if transport is None:
            await _error(404, "Session not found", scope, receive, send)
            return
        await transport.handle_request(scope, receive, send)
        if transport.is_terminated:  # DELETE: forget it now, not when its task winds down
            self._transports.pop(session_id, None)

    async def _open(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._tg is None or len(self._transports) >= MAX_SESSIONS:
            await _error(503, "Too many open sessions", scope, receive, send)
            return
        session_id = uuid4().hex
        transport = StreamableHTTPServerTransport(
            mcp_session_id=session_id,
            security_settings=self._security,
            idle_timeout=self._idle,
        )
        self._transports[session_id] = transport
        established = False
        try:
            await self._tg.start(self._serve, session_id, transport)
            status: list[int] = []

            async def watched(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])
                await send(message)

            await transport.handle_request(scope, receive, watched)
            established = bool(status) and status[0] < 400  # only an initialize opens a session
        finally:
            if not established:
                self._transports.pop(session_id, None)
                with anyio.CancelScope(shield=True):
                    await transport.terminate()

    async def _serve(
        self, session_id: str, transport: StreamableHTTPServerTransport, *, task_status: TaskStatus[None]
    ) -> None:
        async with transport.connect() as (read_stream, write_stream):
            task_status.started()
            front = self.hosts.attach(transport="http")
            entry = HttpHost(front, session_id, time.time())
            self.attached.append(entry)
            try:
                with transport.idle_scope or anyio.CancelScope():
                    await bridge(front, read_stream, write_stream)
            except Exception:  # one host's session failing must not end the others' (they share this task group)
                logger.exception("an HTTP host's session failed; detaching it")
            finally:
                self.attached.remove(entry)
                self.hosts.detach(front)
                self._transports.pop(session_id, None)
                with anyio.CancelScope(shield=True):
                    await transport.terminate()

    async def close(self) -> None:
        for transport in list(self._transports.values()):
            await transport.terminate()

    def status(self) -> list[dict[str, Any]]:
        return [host_row(self.hosts, e.front, e.since, transport="http", pipe_pid=None) for e in self.attached]


class Guard:
    """Host, Origin and bearer token, checked on every request before anything else sees it."""

    def __init__(self, app: Any, address: Address, token: str) -> None:
        self._app = app
        self._hosts = loopback.allowed_hosts(address)
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = Headers(scope=scope)
        host, origin = headers.get("host"), headers.get("origin")
        if not loopback.host_allowed(host, self._hosts):  # a rebound name, or another address of this machine
            logger.warning("refused an HTTP request for host %s (not this gateway's address)", wire_safe(host))
            await _plain(421, "the Host header does not name this gateway's loopback address", scope, receive, send)
        elif not loopback.origin_allowed(origin):  # a web page (CSRF): only loopback pages may call
            logger.warning("refused an HTTP request from origin %s", wire_safe(origin))
            await _plain(403, "requests from web pages other than loopback ones are refused", scope, receive, send)
        elif not tokens.matches(headers.get("authorization"), self._token):  # never logged: it may be a near miss
            logger.warning("refused an HTTP request without the gateway's bearer token")
            response = Response(
                "a bearer token is required: `mcpmux gateway token` prints it",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="mcpmux"'},
            )
            await response(scope, receive, send)
        elif scope.get("path") != PATH:
            await _plain(404, f"mcpmux serves MCP at {PATH}", scope, receive, send)
        else:
            await self._app(scope, receive, send)


def wire_safe(value: str | None) -> str:
    return repr(value[:100]) if value is not None else "(none)"


async def _plain(status: int, text: str, scope: Scope, receive: Receive, send: Send) -> None:
    await Response(text, status_code=status)(scope, receive, send)


async def _error(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}})
    await Response(body, status_code=status, media_type="application/json")(scope, receive, send)


async def _unsupported_era(version: str, scope: Scope, receive: Receive, send: Send) -> None:
    """-32022 naming the versions served here: an auto-mode host falls back to `initialize` (module docstring)."""
    request_id: Any = None
    with contextlib.suppress(orjson.JSONDecodeError, ValueError):
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        request_id = (wire.as_object(orjson.loads(b"".join(chunks))) or {}).get("id")
    error = {
        "code": UNSUPPORTED_PROTOCOL_VERSION,
        "message": "mcpmux serves protocol 2026-07-28 over stdio only; over HTTP it speaks the 2025 versions",
        "data": {"supported": list(HANDSHAKE_PROTOCOL_VERSIONS), "requested": version},
    }
    body = {"jsonrpc": "2.0", "id": request_id if wire.valid_id(request_id) else None, "error": error}
    await Response(orjson.dumps(body), status_code=400, media_type="application/json")(scope, receive, send)


def bind(address: Address) -> tuple[socket.socket, Address]:
    """A listening socket on `address` (port 0: a free one), and the address it got."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address.host, address.port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError as exc:
        listener.close()
        raise MCPMuxError(
            f"cannot listen on {address.netloc} ({loopback.FLAG}): {exc.strerror or exc}; pick another port, or 0"
        ) from None
    return listener, address.with_port(listener.getsockname()[1])


async def serve_http(sessions: Sessions, listener: socket.socket, token: str, *, task_status: TaskStatus[None]) -> None:
    """Serve MCP by URL on `listener` until cancelled; then end every session and the server."""
    app = Guard(RequestBodyLimitMiddleware(sessions, wire.MAX_LINE_BYTES), sessions.address, token)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(SHUTDOWN_SECONDS),
    )
    server = uvicorn.Server(config)  # run by its parts: its serve() would take over SIGINT and SIGTERM
    config.load()
    server.lifespan = config.lifespan_class(config)
    async with sessions.running():
        await server.startup(sockets=[listener])
        task_status.started()
        try:
            await server.main_loop()  # until cancelled (the gateway's signal handling, serve.watch_signals)
        finally:
            server.should_exit = True
            with anyio.move_on_after(SHUTDOWN_SECONDS, shield=True):
                await sessions.close()  # their open streams end, so the server's shutdown has nothing to wait for
                await server.shutdown(sockets=[listener])


class HttpServing:
    """What the shared gateway needs to serve by URL: a socket already listening, the token, whom to tell."""

    def __init__(self, listener: socket.socket, address: Address, token: str, announce: Callable[[str], None]) -> None:
        self._listener = listener
        self.address = address
        self._token = token
        self._announce = announce
        self._sessions: Sessions | None = None

    @property
    def url(self) -> str:
        return self.address.url

    async def serve(self, hosts: Hosts, *, task_status: TaskStatus[None]) -> None:
        self._sessions = Sessions(hosts, self.address)
        async with anyio.create_task_group() as tg:
            await tg.start(serve_http, self._sessions, self._listener, self._token)
            self._announce(self.url)
            task_status.started()

    def status(self) -> list[dict[str, Any]]:
        return self._sessions.status() if self._sessions else []
