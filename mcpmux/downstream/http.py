"""One remote downstream: an MCP server reached over streamable HTTP instead of a spawned process.

The SDK's `streamable_http_client` is used for the transport only. What mcpmux
writes is still a JSON-RPC line (validated into a `SessionMessage` on the way
out), and every message the server sends is turned back into a line and fed to
the same dispatch as a stdio downstream's stdout: ids, pending requests,
notifications and server requests work unchanged.

There is no process: `pid` and `exit_code` stay None. The "connection" is the
SDK client's lifetime; it ends when a request cannot reach the server (refused,
reset), when mcpmux kills it (a failed health check) or when the gateway stops
it. Ending sets `exited`, so the supervisor restarts it with backoff like a
crashed process. A 401 or 403 answer to the handshake is a `StartFailed`: the
credentials must change, retrying cannot help.

A server that signs in with OAuth gets an `httpx2.Auth` (mcpmux.oauth) that adds its
token, refreshes it, and raises `LoginRequired` when only a person can help; that ends
the connection at once, failing what is pending with the sign-in command to run.

Header values (usually secrets) are handed to the HTTP client and never logged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import mcp_types as types
import pydantic
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams, WriteStream
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from mcpmux import wire
from mcpmux.downstream.connection import Downstream, Hooks
from mcpmux.errors import DownstreamError, StartFailed
from mcpmux.oauth.client import LoginRequired

CLOSE_WAIT_SECONDS = 5.0
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)  # the SDK's defaults: a response stream may stay open
AUTH_REJECTED = (401, 403)


@dataclass(slots=True, eq=False)
class RemoteDownstream(Downstream):
    """A `Downstream` whose lines travel over streamable HTTP; see the module docstring."""

    url: str = ""
    _outbox: MemoryObjectSendStream[types.JSONRPCMessage] | None = None
    _scope: anyio.CancelScope | None = None
    _task: asyncio.Task[None] | None = None
    _auth_status: int | None = None
    auth: httpx2.Auth | None = None

    def connect(self, headers: dict[str, str]) -> None:
        """Start the client in a task of its own; messages may be written at once (they queue)."""
        outbox, inbox = anyio.create_memory_object_stream[types.JSONRPCMessage](math.inf)
        self._outbox, self._scope = outbox, anyio.CancelScope()
        self._task = asyncio.get_running_loop().create_task(self._run(headers, inbox, self._scope))

    async def _run(
        self, headers: dict[str, str], inbox: MemoryObjectReceiveStream[types.JSONRPCMessage], scope: anyio.CancelScope
    ) -> None:
        reason = f"server '{self.name}' closed the connection"
        try:
            with scope, inbox:
                async with self._open(headers) as (read, write), anyio.create_task_group() as tg:
                    tg.start_soon(self._pump_out, inbox, write)
                    async for item in read:
                        if isinstance(item, Exception):
                            self._log(f"mcpmux: transport error from {self.url}: {item!r}".encode())
                            continue
                        self._on_line(
                            wire.dumps(item.message.model_dump(by_alias=True, mode="json", exclude_unset=True))
                        )
                    tg.cancel_scope.cancel()
            if scope.cancel_called:
                reason = f"server '{self.name}' was disconnected by mcpmux"
        except Exception as exc:  # any transport failure ends this connection; the supervisor reconnects
            self.fatal = _login_required(exc)
            reason = (
                str(self.fatal)
                if self.fatal
                else f"server '{self.name}' is unreachable at {self.url}: {_describe(exc)}"
            )
        self._log(f"mcpmux: {reason}".encode())
        self._fail_pending(reason)
        self._outbox = None
        self.exited.set()

    @asynccontextmanager
    async def _open(self, headers: dict[str, str]) -> AsyncGenerator[TransportStreams]:
        """The SDK client: legacy SSE when the URL's path ends in `/sse`, streamable HTTP otherwise."""

        def client_factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            client = httpx2.AsyncClient(headers=headers, timeout=timeout or HTTP_TIMEOUT, auth=auth)
            client.event_hooks["response"].append(self._note_response)
            return client

        if urlsplit(self.url).path.rstrip("/").endswith("/sse"):
            async with sse_client(
                self.url, headers=headers, httpx_client_factory=client_factory, auth=self.auth
            ) as streams:
                yield streams
        else:
            async with (
                client_factory(headers, auth=self.auth) as client,
                streamable_http_client(self.url, http_client=client) as streams,
            ):
                yield streams

    @staticmethod
    async def _pump_out(
        inbox: MemoryObjectReceiveStream[types.JSONRPCMessage], write: WriteStream[SessionMessage]
    ) -> None:
        async for message in inbox:
            await write.send(SessionMessage(message))

    async def _note_response(self, response: httpx2.Response) -> None:
        if response.status_code in AUTH_REJECTED:
            self._auth_status = response.status_code
            self._log(f"mcpmux: {self.url} answered HTTP {response.status_code} (credentials rejected)".encode())

    # --- Downstream's transport seam -----------------------------------------------
    @property
    def alive(self) -> bool:
        return self._outbox is not None and not self.exited.is_set() and self._closing_reason is None

    def write(self, line: bytes) -> None:
        if self._outbox is None:
            return
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except pydantic.ValidationError as exc:
            self._log(f"mcpmux: did not send an invalid JSON-RPC message: {exc}".encode())
            return
        self._outbox.send_nowait(message)

    def kill(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def close(self) -> None:
        """End the connection (the SDK client ends its HTTP session) and wait, bounded, for it to be gone."""
        self.kill()
        if self._task is not None:
            with anyio.move_on_after(CLOSE_WAIT_SECONDS):
                await asyncio.shield(self._task)

    async def initialize(self, wait_seconds: float) -> types.InitializeResult:
        try:
            return await Downstream.initialize(self, wait_seconds)
        except DownstreamError:
            if self.fatal is not None:
                raise self.fatal from None
            if self._auth_status is None:
                raise
            raise StartFailed(
                self.name,
                f"server '{self.name}' rejected mcpmux's credentials (HTTP {self._auth_status}) at {self.url}; "
                "check the secrets in its 'headers' (mcpmux secret set NAME)",
            ) from None


def connect(
    name: str, url: str, headers: dict[str, str], log_path: Path, hooks: Hooks, auth: httpx2.Auth | None = None
) -> RemoteDownstream:
    """A remote downstream, connecting (not yet initialized); `auth` signs its requests (OAuth)."""
    ds = RemoteDownstream(name, log_path, hooks, url=url, auth=auth)
    ds.connect(headers)
    return ds


def _login_required(exc: BaseException) -> LoginRequired | None:
    """The `LoginRequired` that ended a (possibly grouped) transport failure, if one did."""
    if isinstance(exc, LoginRequired):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType]
            if (found := _login_required(inner)) is not None:  # pyright: ignore[reportUnknownArgumentType]
                return found
    return None


def _describe(exc: BaseException) -> str:
    """The innermost causes of a (possibly grouped) transport failure, without any request headers."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)  # pyright: ignore[reportUnknownVariableType, reportUnknownMemberType, reportUnknownArgumentType]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
