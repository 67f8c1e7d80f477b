"""The front `serve` puts up when it cannot start: it answers the host, in either era, with why and the fix.

A host shows a server that exits before answering `initialize` only as "Connection
closed". So when the profile is missing, invalid or untrusted, or the state folder is
unsafe, `serve` runs this instead of the gateway: the SDK's own `Server` answers the
handshake (`initialize`, `server/discover`, 2026-07-28 envelopes: the SDK decides the era),
with the problem as its instructions, and then says it on every channel a host shows:

- a `notifications/message` at level error: once the handshake host is initialized, and
  with each request of a 2026-07-28 host that opted in to log messages (that era's rule);
- `tools/list` answers a JSON-RPC error naming the problem (an empty list would look like
  a healthy server with no tools; an error is what hosts put in front of the user);
- every `tools/call` gets an error result with the same text.

Nothing else is offered (no prompts, resources or completions). It reads the host until
stdin closes, answers what it already received (boundedly), and returns.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import mcp_types as types
import pydantic
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server import Server
from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpmux import __version__, wire
from mcpmux.front import output, stdio

EOF_DRAIN_SECONDS = 2.0
"""Once the host's input ends, how long its requests already received may take to be answered."""

RESTART = "Once fixed, restart mcpmux from your MCP host (reconnect the server, or restart the host)."
"""mcpmux does not retry: the host starts a new serve."""

Ctx = ServerRequestContext[Any]


class Degraded:
    """An MCP server whose every answer is `problem` (one text: what is wrong and the command that fixes it)."""

    def __init__(self, problem: str) -> None:
        self.problem = f"{problem}\n{RESTART}"
        self.server: Server[Any] = Server(
            "mcpmux",
            version=__version__,
            instructions=f"mcpmux could not start, so it serves no tools: {self.problem}",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        # Declares the logging capability (the messages below need it) without the SDK's deprecated keyword.
        self.server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        self.server.add_notification_handler("notifications/initialized", types.NotificationParams, self._initialized)

    async def _set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()  # level error is sent whatever the host asks for: it is the one message

    async def _initialized(self, ctx: Ctx, params: types.NotificationParams) -> None:
        await self._tell(ctx)

    async def _list_tools(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await self._tell(ctx)  # a handshake host was told once it was initialized
        raise MCPError(wire.INTERNAL_ERROR, f"mcpmux could not start: {self.problem}")

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await self._tell(ctx)
        text = f"tool '{params.name}' is unavailable: mcpmux could not start: {self.problem}"
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)

    async def _tell(self, ctx: Ctx) -> None:
        """The problem as a log message, where this request's era lets one go (the SDK's rule, connection.py)."""
        if "error" not in allowed_log_levels(ctx.protocol_version, ctx.meta):
            return
        message = types.LoggingMessageNotification(
            params=types.LoggingMessageNotificationParams(level="error", logger="mcpmux", data=self.problem)
        )
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        # A 2026-07-28 message rides the request's own answer stream; a handshake one the session.
        await ctx.session.send_notification(message, related_request_id=ctx.request_id if modern else None)

    async def run(self, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
        """Serve the host on its stdio until it closes stdin; what it already asked is answered first."""
        out = await output.open_output(stdout_fd)
        to_sdk, sdk_in = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
        sdk_out, from_sdk = anyio.create_memory_object_stream[SessionMessage](math.inf)
        owed: set[types.RequestId] = set()
        answered = anyio.Event()

        def on_line(line: bytes) -> None:
            try:
                message = types.jsonrpc_message_adapter.validate_python(wire.loads(line), by_name=False)
            except (ValueError, pydantic.ValidationError, RecursionError):
                out.write(wire.error_response(None, wire.PARSE_ERROR, "parse error: not a JSON-RPC message"))
                return
            if isinstance(message, types.JSONRPCRequest):
                owed.add(message.id)
            to_sdk.send_nowait(SessionMessage(message))

        async def write_answers(stream: MemoryObjectReceiveStream[SessionMessage]) -> None:
            nonlocal answered
            async with stream:
                async for session_message in stream:
                    message = session_message.message
                    if isinstance(message, types.JSONRPCResponse | types.JSONRPCError):
                        owed.discard(message.id)
                    out.write(message.model_dump_json(by_alias=True, exclude_unset=True).encode())
                    answered.set()
                    answered = anyio.Event()

        with to_sdk:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.server.run, sdk_in, sdk_out, self.server.create_initialization_options())
                tg.start_soon(write_answers, from_sdk)
                await stdio.read_lines(stdin_fd, on_line)
                with anyio.move_on_after(EOF_DRAIN_SECONDS):
                    while owed:
                        await answered.wait()
                tg.cancel_scope.cancel()
        await out.close(EOF_DRAIN_SECONDS)
