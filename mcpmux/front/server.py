"""The front: mcpmux's own MCP server, spoken to by the host over stdio.

mcpmux owns the host's wire. Each line from stdin is parsed once; a
`tools/call` (and the `notifications/cancelled` for one) goes straight to the
relay, in both eras (a 2026-07-28 call via front_modern.py), and everything else
is handed to the SDK's low-level `Server`, which serves the `initialize`
handshake, `server/discover`, listings and errors. Both write to one stdout
transport, whose writes are whole lines and never interleave.

In discovery mode (`expose = "search"`, front_discovery.py) the host lists the
three meta-tools instead; calls of them go to the SDK-served `_call_tool`, which
hands them to `Discovery`. Every other `tools/call` keeps the fast path.

fd 1 is the protocol wire: it is duplicated for the wire and then pointed at
stderr, so a stray print anywhere in the process cannot corrupt the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import stat
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import pydantic
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.message import SessionMessage
from mcp.shared.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)

from mcpmux import __version__, wire
from mcpmux.catalog.build import Catalog, host_view
from mcpmux.downstream import facts as server_facts
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.front import envelope as front_modern
from mcpmux.front.discovery import Discovery
from mcpmux.front.envelope import ModernCalls
from mcpmux.front.handlers import Handlers, make_server, page
from mcpmux.front.host_requests import ServerRequests
from mcpmux.front.input_rounds import InputBridge
from mcpmux.relay.relay import Relay
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

MODERN_ENVELOPE_KEY = "io.modelcontextprotocol/protocolVersion"
FIRST_START_WAIT_SECONDS = 2.0
"""How long the host's `initialize` may wait for servers never started before (their instructions)."""
_FACTS_METHODS = frozenset({"initialize", "server/discover"})


_LISTEN_EVENTS: dict[str, Callable[[], ServerEvent]] = {
    "tools": ToolsListChanged,
    "prompts": PromptsListChanged,
    "resources": ResourcesListChanged,
}
_LIST_CHANGED = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}


class Front:
    def __init__(self, supervisor: Supervisor, relay: Relay) -> None:
        self.supervisor = supervisor
        self.relay = relay
        self.handlers = Handlers(supervisor)
        self.discovery = Discovery(relay, self.handlers.catalog)
        self.bus = InMemorySubscriptionBus()
        self.server = make_server(
            "mcpmux",
            __version__,
            self.handlers,
            bus=self.bus,
            instructions=None,  # set per answer from the downstreams' own (server_facts.py)
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._handshake_era = False
        self.answered = anyio.Event()
        """Set once the first answer (to `initialize` or `server/discover`) has been written to the host."""
        self._write: Callable[[bytes], None] = lambda line: None
        self._to_sdk: MemoryObjectSendStream[SessionMessage | Exception] | None = None
        self._facts_ids: set[object] = set()
        """Ids of the host's `initialize` / `server/discover`: their answers carry the downstreams' facts."""
        self.requests = ServerRequests(supervisor, lambda line: self._write(line))
        self.bridge = InputBridge(relay)
        self.handlers.bridge = self.bridge
        self.modern = ModernCalls(self.server.server_info_stamp)
        supervisor.on_catalog = self._catalog_changed
        supervisor.listeners.append(self._downstream_notification)

    # --- SDK handlers (everything but the hot path) --------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if self.discovery.active:
            return types.ListToolsResult(tools=list(await self.discovery.list_tools()))
        catalog = await self.handlers.catalog()
        # Rules may name hosts: the listing is decided for this host (decisions are cached, so this is cheap).
        tools = host_view(catalog, self.supervisor.policy, self.relay.host_name, self.supervisor.profile.max_tools)
        items, cursor = page(tools, params and params.cursor)
        return types.ListToolsResult(tools=items, next_cursor=cursor)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if self.discovery.handles(params.name):
            result = await self.discovery.call(params.name, params.arguments)
        else:
            result = await self.relay.call(params.name, params.arguments)
        return types.CallToolResult.model_validate(result)

    def _catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        if self._handshake_era:
            for kind in sorted(kinds):
                self._write(wire.notification(_LIST_CHANGED[kind]))
        else:  # 2026-07-28: events go to the host's subscriptions/listen streams
            for kind in sorted(kinds):
                self._publish(_LISTEN_EVENTS[kind]())

    def _publish(self, event: ServerEvent) -> None:
        self.supervisor.start_soon(self.bus.publish, event)

    def _downstream_notification(self, ds: Downstream, method: str, msg: JSON, line: bytes) -> None:
        params = wire.as_object(msg.get("params")) or {}
        if method == "notifications/message" and (
            self._handshake_era or self.modern.wants_log(ds.name, params.get("level"))
        ):
            logger_name = params.get("logger")
            tagged = {**params, "logger": f"{ds.name}/{logger_name}" if logger_name else ds.name}
            self._write(self._redact(ds.name, wire.notification(method, tagged)))
        elif not self._handshake_era:
            if method == "notifications/resources/updated":
                uri = self.handlers.updated_uri(ds.name, params).get("uri")
                self._publish(ResourceUpdated(uri=str(uri)))
        elif method == "notifications/resources/updated":
            self._write(wire.notification(method, self.handlers.updated_uri(ds.name, params)))

    def _redact(self, server: str, line: bytes) -> bytes:
        state = self.supervisor.live(server)
        return state.redactor.redact_bytes(line) if state is not None and state.redactor else line

    # --- the wire -------------------------------------------------------------------------
    def on_line(self, line: bytes) -> None:
        try:
            message = wire.loads(line)
        except ValueError:
            self._write(wire.error_response(None, wire.PARSE_ERROR, "parse error: a line that is not JSON"))
            return
        try:
            self._dispatch(message)
        except Exception:  # a bug must cost one answer, never the host connection or a silent hang
            logger.exception("mcpmux failed to handle a message from the host")
            request_id = (wire.as_object(message) or {}).get("id")
            if request_id is not None:
                self._write(wire.error_response(request_id, wire.INTERNAL_ERROR, "mcpmux failed; see its stderr"))

    def _dispatch(self, message: object) -> None:
        msg = wire.as_object(message)
        if msg is not None:
            method = msg.get("method")
            params = wire.as_object(msg.get("params"))
            handshake = self._handshake_era or method == "initialize"  # even with an envelope stamped on it
            modern = front_modern.envelope(params) if params is not None and not handshake else None
            if modern is not None and self.requests.bridge is None:
                self._bind_modern_host(modern)
            # Meta-tools of search mode fall through to the SDK-served `_call_tool`.
            fast = method == "tools/call" and "id" in msg and params is not None
            if fast and params is not None and not self.discovery.handles(params.get("name")):
                if self._handshake_era:
                    self.relay.call_from_host(msg["id"], params, self._write, self._write)
                    return
                if modern is not None:
                    self._modern_call(msg["id"], params, modern)
                    return
            if (
                method == "notifications/cancelled"
                and params is not None
                and self.relay.cancel_from_host(params.get("requestId"), params.get("reason"))
            ):
                return
            if method is None and self.requests.from_host(msg):
                return
            if method in _FACTS_METHODS and "id" in msg:
                self._facts_ids.add(msg["id"])
            if method == "notifications/roots/list_changed":
                self.requests.roots_changed()
                return
            if method == "initialize" and params is not None and not _is_modern(params):
                self._handshake_era = True
                info = wire.as_object(params.get("clientInfo")) or {}
                self.relay.host_name = str(info.get("name"))
                self.relay.audit.bind(host=info.get("name"), host_version=info.get("version"))
                self.requests.host_capabilities = wire.as_object(params.get("capabilities")) or {}
        self._to_sdk_line(message)

    def _bind_modern_host(self, meta: JSON) -> None:
        """A 2026-07-28 host introduces itself on each request; the first one names it for policy and audit."""
        self.requests.bridge = self.bridge
        info = front_modern.client_info(meta)
        self.relay.host_name = str(info.get("name"))
        self.relay.audit.bind(host=info.get("name"), host_version=info.get("version"))

    def _modern_call(self, host_id: Any, params: JSON, meta: JSON) -> None:
        """The 2026-07-28 fast path: envelope off, relayed like a handshake-era call, answer stamped."""
        route = self.supervisor.catalog.routes.get(str(params.get("name")))
        if route is not None:
            self.modern.opt_in(host_id, route.server, meta)
        answer = self.modern.answer_writer(host_id, self._write)
        if self.bridge.resume(host_id, params, answer):  # a retry carrying answers for a parked call
            return
        forwarded = front_modern.for_downstream(params)
        caps = front_modern.client_capabilities(meta)
        self.relay.call_from_host(host_id, forwarded, answer, self._write, caps)

    def _to_sdk_line(self, message: Any) -> None:
        try:
            parsed = types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        except pydantic.ValidationError:
            request_id = (wire.as_object(message) or {}).get("id")
            self._write(wire.error_response(request_id, wire.INVALID_REQUEST, "invalid JSON-RPC message"))
            return
        if self._to_sdk is not None:
            self._to_sdk.send_nowait(SessionMessage(parsed))

    async def _pump_sdk(self, stream: MemoryObjectReceiveStream[SessionMessage]) -> None:
        async with stream:
            async for session_message in stream:
                message = session_message.message
                if isinstance(message, types.JSONRPCResponse) and message.id in self._facts_ids:
                    self._facts_ids.discard(message.id)
                    message = await self._with_facts(message)
                self._write(message.model_dump_json(by_alias=True, exclude_unset=True).encode())
                self.answered.set()

    async def _with_facts(self, response: types.JSONRPCResponse) -> types.JSONRPCResponse:
        """The handshake answer with the downstreams' instructions and capabilities merged in.

        A server never seen before (no cached facts) is waited for, up to
        FIRST_START_WAIT_SECONDS; later answers come from the cache at once.
        """
        if any(f is None for f in self.supervisor.facts.values()):
            with anyio.move_on_after(FIRST_START_WAIT_SECONDS):
                await self.supervisor.ready.wait()
        facts = self.supervisor.facts
        result = dict(response.result)
        result["instructions"] = server_facts.merged_instructions(self.supervisor.profile, facts)
        offered = wire.as_object(result.get("capabilities"))
        if offered is not None:
            result["capabilities"] = server_facts.merged_capabilities(offered, facts)
        return response.model_copy(update={"result": result})

    async def run(self, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
        """Serve the host until it closes stdin."""
        out = await _open_output(stdout_fd)
        self._write = out
        to_sdk, sdk_in = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
        sdk_out, from_sdk = anyio.create_memory_object_stream[SessionMessage](math.inf)
        self._to_sdk = to_sdk
        changes = NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True)
        options = self.server.create_initialization_options(changes)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.server.run, sdk_in, sdk_out, options)
            tg.start_soon(self._pump_sdk, from_sdk)
            await _read_lines(stdin_fd, self.on_line)
            tg.cancel_scope.cancel()


def _is_modern(params: JSON) -> bool:
    meta = wire.as_object(params.get("_meta"))
    return meta is not None and MODERN_ENVELOPE_KEY in meta


class _LineProtocol(asyncio.Protocol):
    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._lines = wire.LineBuffer()
        self._on_line = on_line
        self.eof = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        try:
            lines = self._lines.feed(data)
        except wire.LineTooLong:
            logger.error("the host sent a message larger than %d bytes; closing", wire.MAX_LINE_BYTES)
            self.eof.set()
            return
        for line in lines:
            self._on_line(line)

    def eof_received(self) -> bool | None:
        self.eof.set()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof.set()


async def _read_lines(fd: int, on_line: Callable[[bytes], None]) -> None:
    loop = asyncio.get_running_loop()
    protocol = _LineProtocol(on_line)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
        # A regular file or a device such as /dev/null (`nohup`, systemd's StandardInput=null): epoll
        # refuses them, and asyncio would only log that from a callback and never see the end of input.
        await _read_lines_blocking(fd, protocol)
        return
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: protocol, pipe)
    try:
        await protocol.eof.wait()
    finally:
        transport.close()


async def _read_lines_blocking(fd: int, protocol: _LineProtocol) -> None:
    while chunk := await anyio.to_thread.run_sync(os.read, fd, 1 << 16, abandon_on_cancel=True):
        protocol.data_received(chunk)


async def _open_output(fd: int) -> Callable[[bytes], None]:
    """A line writer on a private duplicate of `fd`; `fd` itself is then pointed at stderr."""
    wire_fd = os.dup(fd)
    if fd == 1:
        os.dup2(2, 1)
    pipe = os.fdopen(wire_fd, "wb", buffering=0)
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
    except ValueError:  # a regular file: write it directly; small and rare

        def write_blocking(line: bytes) -> None:
            pipe.write(line + b"\n")

        return write_blocking

    def write(line: bytes) -> None:
        if not transport.is_closing():
            transport.write(line + b"\n")

    return write
