"""One downstream: a spawned MCP server spoken to as raw JSON-RPC lines.

mcpmux is a relay, so it speaks to downstreams below the SDK's session layer:
requests are addressed with ids of its own (`mx-N`, disjoint from anything a
host sends) and replies are handed to a `ReplySink` straight from the pipe
callback, without a task, a memory stream or a model per message. The SDK's
types still validate what mcpmux itself consumes (the handshake, catalogs).

The transport is a seam: `Downstream` itself is the stdio one (an asyncio
subprocess protocol); http.py's `RemoteDownstream` carries the same lines over
streamable HTTP and memory.py's `MemoryDownstream` to a peer in the same process
(tests). Each provides `alive`, `write`, `kill` and `close`, and hands what
arrives to `_on_line`; the request table and the handshake are shared.

Which era a downstream speaks is found by era.py (the 2026-07-28 probe, with
`initialize` as the fallback). A modern downstream gets its `envelope` merged
into the `_meta` of every request mcpmux sends it; a handshake one gets none.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio
import mcp_types as types
import pydantic

from mcpmux import __version__, wire
from mcpmux.downstream.process import terminate
from mcpmux.errors import DownstreamError, DownstreamUnavailable, LineTooLong, StartFailed
from mcpmux.paths import open_private
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

HANDSHAKE_VERSION = "2025-11-25"

ListKind = Literal["tools", "prompts", "resources", "resource_templates"]
LISTINGS: dict[ListKind, tuple[str, str, type[pydantic.BaseModel]]] = {
    "tools": ("tools/list", "tools", types.Tool),
    "prompts": ("prompts/list", "prompts", types.Prompt),
    "resources": ("resources/list", "resources", types.Resource),
    "resource_templates": ("resources/templates/list", "resourceTemplates", types.ResourceTemplate),
}

CLIENT_CAPABILITIES: JSON = {
    # Offered to every downstream; a request the host cannot serve gets a clean error (see server_requests.py).
    "roots": {"listChanged": True},
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
}
MAX_LIST_PAGES = 1000


class Refused(DownstreamError):
    """The downstream answered a request of mcpmux's own with a JSON-RPC error (kept whole, as `error`)."""

    def __init__(self, server: str, message: str, error: JSON) -> None:
        super().__init__(server, message)
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data")


class ReplySink(Protocol):
    """Receives the one answer to a request: the reply line, or the failure that means none will come."""

    def reply(self, line: bytes, message: JSON) -> None: ...

    def fail(self, error: DownstreamError) -> None: ...


def with_envelope(params: JSON | None, envelope: JSON) -> JSON:
    """`params` with the envelope's keys in its `_meta` (the envelope's win: the era is mcpmux's to state)."""
    if params is None:
        return {"_meta": envelope}
    meta = wire.as_object(params.get("_meta"))
    return {**params, "_meta": {**meta, **envelope} if meta else envelope}


class _FutureSink:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()

    def reply(self, line: bytes, message: JSON) -> None:
        if not self.future.done():
            self.future.set_result(message)

    def fail(self, error: DownstreamError) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(slots=True)
class Hooks:
    """What a downstream's own messages are handed to (the supervisor and relay wire these)."""

    on_notification: Callable[[Downstream, str, JSON, bytes], None] = lambda ds, method, msg, line: None
    on_request: Callable[[Downstream, JSON], None] | None = None
    on_secrets: Callable[[str, dict[str, str]], None] | None = None
    """Called with a server's name and every secret it holds, when they change while it runs (a refreshed token)."""


@dataclass(slots=True, eq=False)
class Downstream(asyncio.SubprocessProtocol):
    """The protocol object of one downstream process and its request table."""

    name: str
    log_path: Path
    hooks: Hooks = field(default_factory=Hooks)
    pid: int | None = None
    exit_code: int | None = None
    initialize_result: types.InitializeResult | None = None
    """The handshake's answer; for a modern downstream, its discover answer in the same shape (era.adopt)."""
    era: Literal["handshake", "modern"] = "handshake"
    envelope: JSON | None = None
    """The `_meta` keys every request carries (modern era only)."""
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    fatal: StartFailed | None = None
    """Why it ended, when starting it again cannot help (a remote server that needs a sign-in): not restarted."""
    _transport: asyncio.SubprocessTransport | None = None
    _stdin: asyncio.WriteTransport | None = None
    _lines: wire.LineBuffer = field(default_factory=wire.LineBuffer)
    _pending: dict[str, ReplySink] = field(default_factory=dict[str, ReplySink])
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _closing_reason: str | None = None

    # --- asyncio.SubprocessProtocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._transport = transport
        self.pid = transport.get_pid()
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        self._stdin = stdin

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        try:
            lines = self._lines.feed(data)
        except LineTooLong as exc:
            self._broken(str(exc))
            return
        for line in lines:
            self._on_line(line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._fail_pending(f"server '{self.name}' closed its stdout")

    def process_exited(self) -> None:
        assert self._transport is not None
        self.exit_code = self._transport.get_returncode()
        self._fail_pending(f"server '{self.name}' exited with code {self.exit_code}")
        self.exited.set()

    # --- inbound --------------------------------------------------------------------
    def _on_line(self, line: bytes) -> None:
        try:
            message = wire.loads(line)
        except ValueError:
            self._log(b"mcpmux: ignored a line that is not JSON: " + line[:200])
            return
        msg = wire.as_object(message)
        if msg is None:
            return
        try:
            method = msg.get("method")
            if method is None:
                rid = msg.get("id")
                sink = self._pending.pop(rid, None) if isinstance(rid, str) else None
                if sink is not None:
                    sink.reply(line, msg)
                return
            if "id" in msg:
                self._on_request(msg)
            elif isinstance(method, str):
                self.hooks.on_notification(self, method, msg, line)
        except Exception:  # a bug must cost this message, not the pipe (asyncio closes it on an exception)
            logger.exception("mcpmux failed to handle a message from server '%s'", self.name)

    def _on_request(self, msg: JSON) -> None:
        if msg.get("method") == "ping":
            self.write(wire.result_response(msg["id"], {}))
        elif self.hooks.on_request is not None:
            self.hooks.on_request(self, msg)
        else:
            self.write(wire.error_response(msg["id"], wire.METHOD_NOT_FOUND, "mcpmux does not relay this request"))

    # --- outbound -------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._stdin is not None and not self.exited.is_set() and self._closing_reason is None

    def write(self, line: bytes) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(line + b"\n")

    def send_request(self, method: str, params: JSON | None, sink: ReplySink) -> str:
        """Send a request now; `sink` gets exactly one reply or failure. Returns mcpmux's request id.

        Raises `wire.Unencodable` (and `sink` hears nothing) when `params` nest deeper than mcpmux writes."""
        if not self.alive:
            sink.fail(self.unavailable())
            return ""
        rid = f"mx-{next(self._ids)}"
        message: JSON = {"jsonrpc": "2.0", "id": rid, "method": method}
        if self.envelope is not None:
            params = with_envelope(params, self.envelope)
        if params is not None:
            message["params"] = params
        line = wire.dumps(message)  # raises wire.Unencodable before anything is registered or sent
        self._pending[rid] = sink
        self.write(line)
        return rid

    def abandon(self, rid: str, reason: str) -> None:
        """Stop waiting for `rid` and tell the downstream to cancel it."""
        if self._pending.pop(rid, None) is not None:
            self.write(wire.notification("notifications/cancelled", {"requestId": rid, "reason": reason}))

    async def request(self, method: str, params: JSON | None, wait_seconds: float) -> JSON:
        """Send a request and wait for its result; JSON-RPC errors raise `DownstreamError`."""
        sink = _FutureSink()
        rid = self.send_request(method, params, sink)
        try:
            with anyio.fail_after(wait_seconds):
                message = await sink.future
        except TimeoutError:
            self.abandon(rid, "timed out")
            raise DownstreamError(
                self.name, f"server '{self.name}' did not answer {method} within {wait_seconds:g} s"
            ) from None
        except BaseException:
            self.abandon(rid, "cancelled")
            raise
        if "error" in message:
            err: JSON = wire.as_object(message["error"]) or {}
            text = f"server '{self.name}' answered {method} with error: {err.get('message')}"
            raise Refused(self.name, text, err)
        return wire.as_object(message.get("result")) or {}

    async def initialize(self, wait_seconds: float) -> types.InitializeResult:
        params: JSON = {
            "protocolVersion": HANDSHAKE_VERSION,
            "capabilities": CLIENT_CAPABILITIES,
            "clientInfo": {"name": "mcpmux", "version": __version__},
        }
        raw = await self.request("initialize", params, wait_seconds)
        try:
            result = types.InitializeResult.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise DownstreamError(self.name, f"server '{self.name}' sent an invalid initialize result: {exc}") from exc
        self.write(wire.notification("notifications/initialized"))
        self.initialize_result = result
        return result

    async def list_all(self, kind: ListKind, wait_seconds: float) -> list[Any]:
        """Every item of one listing, following `nextCursor` to the end; invalid items are logged and skipped."""
        method, key, model = LISTINGS[kind]
        items: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await self.request(method, {"cursor": cursor} if cursor else None, wait_seconds)
            raw_items = page.get(key)
            for raw in raw_items if isinstance(raw_items, list) else []:  # pyright: ignore[reportUnknownVariableType]
                try:
                    items.append(model.model_validate(raw))
                except pydantic.ValidationError as exc:
                    self._log(f"mcpmux: skipped an invalid {kind} entry: {exc}".encode())
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return items

    async def list_tools(self, wait_seconds: float) -> list[types.Tool]:
        return await self.list_all("tools", wait_seconds)

    def supports(self, kind: ListKind) -> bool:
        """Whether the downstream advertised the capability behind a listing."""
        caps = self.initialize_result.capabilities if self.initialize_result else None
        if caps is None:
            return False
        if kind == "tools":
            return caps.tools is not None
        if kind == "prompts":
            return caps.prompts is not None
        return caps.resources is not None

    # --- failure --------------------------------------------------------------------
    def unavailable(self) -> DownstreamUnavailable:
        reason = self._closing_reason or (
            f"exited with code {self.exit_code}" if self.exited.is_set() else "is not connected"
        )
        return DownstreamUnavailable(
            self.name, f"server '{self.name}' is unavailable: {reason} (log: {self.log_path})", self.log_path
        )

    def _fail_pending(self, reason: str) -> None:
        if self._closing_reason is None:
            self._closing_reason = reason
        pending, self._pending = self._pending, {}
        error = DownstreamUnavailable(self.name, f"{reason} (log: {self.log_path})", self.log_path)
        for sink in pending.values():
            sink.fail(error)

    def _broken(self, reason: str) -> None:
        self._log(f"mcpmux: {reason}; stopping the server".encode())
        self._fail_pending(f"server '{self.name}' broke the protocol: {reason}")
        if self._transport is not None:
            self._transport.kill()

    def _log(self, text: bytes) -> None:
        with open_private(self.log_path) as f:
            f.write(text + b"\n")

    @property
    def busy(self) -> bool:
        """Whether any request to this downstream is waiting for its answer."""
        return bool(self._pending)

    def pause_reading(self) -> None:
        """Stop reading the server's stdout (the host is not keeping up): the server blocks on its writes."""
        if (out := self._stdout()) is not None:
            out.pause_reading()

    def resume_reading(self) -> None:
        if (out := self._stdout()) is not None:
            out.resume_reading()

    def _stdout(self) -> asyncio.ReadTransport | None:
        pipe = self._transport.get_pipe_transport(1) if self._transport is not None else None
        return pipe if isinstance(pipe, asyncio.ReadTransport) else None

    def kill(self) -> None:
        if self._transport is not None and not self.exited.is_set():
            self._transport.kill()

    async def close(self) -> None:
        """End the downstream for good (its whole process group: stdin EOF → SIGTERM → SIGKILL, bounded)."""
        if self._transport is not None:
            await terminate(self._transport, self.exited)

    def begin_close(self, reason: str) -> None:
        self._fail_pending(reason)

    @property
    def transport(self) -> asyncio.SubprocessTransport | None:
        return self._transport
