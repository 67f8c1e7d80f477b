"""One HTTP session as one host: the SDK transport's message streams bridged to a front's line interface.

The front (front/server.py) speaks lines, the transport SessionMessages; each incoming message becomes
one line, and each line the front writes becomes a message again. Which SSE stream a message takes is
the transport's choice (mcp.server.streamable_http, `message_router`): a response goes to the stream
of the POST that carried its request (by id); anything else goes to the stream of the request named
by its `related_request_id`, else to the session's GET stream (dropped when none is open). So:

- progress goes to the request whose progress token it carries;
- a server's request or notification for this host (elicitation, sampling, a log message, a list
  change) goes to a request of this host still in flight, if any, else to the GET stream. Every stream
  of a session reaches the same host, so this picks a stream that is open, never another host.

When the session ends (DELETE, or idle per the SDK) its input ends: the front is stopped at once,
without waiting for the answers still owed, and the caller detaches it, which cancels its calls in
flight downstream.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import anyio
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.message import ServerMessageMetadata, SessionMessage
from mcp_types import (
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

from mcpmux.front.server import Front

logger = logging.getLogger("mcpmux")


class Routes:
    """This host's requests in flight, and their progress tokens: where the front's messages belong."""

    def __init__(self) -> None:
        self._in_flight: dict[str, RequestId] = {}  # keyed as the transport keys its streams: str(id)
        self._tokens: dict[str, RequestId] = {}
        self._token_of: dict[str, str] = {}

    def received(self, message: JSONRPCMessage) -> None:
        if not isinstance(message, JSONRPCRequest):
            return
        key = str(message.id)
        self._in_flight[key] = message.id
        meta = (message.params or {}).get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(token, str | int) and not isinstance(token, bool):
            self._tokens[str(token)] = message.id
            self._token_of[key] = str(token)

    def related(self, message: JSONRPCMessage) -> RequestId | None:
        """The request `message` goes with (None: the session's GET stream); a response settles its request."""
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            if message.id is not None:
                key = str(message.id)
                self._in_flight.pop(key, None)
                if (token := self._token_of.pop(key, None)) is not None:
                    self._tokens.pop(token, None)
            return None  # the transport routes a response by its id
        if isinstance(message, JSONRPCNotification) and message.method == "notifications/progress":
            token = (message.params or {}).get("progressToken")
            return self._tokens.get(str(token)) if isinstance(token, str | int) else None
        return next(iter(self._in_flight.values()), None)  # the oldest: open longest, and this host's own


def to_line(message: JSONRPCMessage) -> bytes:
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode()


def from_line(line: bytes) -> JSONRPCMessage | None:
    try:
        return jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:  # the front writes JSON-RPC only: this is a bug, not the host's doing
        logger.error("a message for an HTTP host is not JSON-RPC; dropped it (%s)", exc.errors()[:1])
        return None


async def bridge(
    front: Front, read_stream: ReadStream[SessionMessage | Exception], write_stream: WriteStream[SessionMessage]
) -> None:
    """Serve one session's host with `front` until the session's input ends; then stop at once."""
    routes = Routes()
    lines_out, lines_in = anyio.create_memory_object_stream[bytes](math.inf)  # the front writes without waiting
    ended = anyio.Event()

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):  # the session's end closes the stream under us
            async for item in read_stream:
                if isinstance(item, Exception):  # the transport's own trouble with a request, answered there
                    logger.info("an HTTP host's request failed in the transport: %s", type(item).__name__)
                    continue
                routes.received(item.message)
                on_line(to_line(item.message))
        ended.set()
        await anyio.sleep_forever()  # returning would make the front wait for its answers: nobody reads them

    async def write_out() -> None:
        async for line in lines_in:
            message = from_line(line)
            if message is None:
                continue
            metadata = ServerMessageMetadata(related_request_id=routes.related(message))
            try:
                await write_stream.send(SessionMessage(message, metadata=metadata))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                ended.set()
                return

    def write(line: bytes) -> None:
        lines_out.send_nowait(line)

    async with anyio.create_task_group() as tg:
        tg.start_soon(write_out)
        tg.start_soon(front.serve, read_lines, write)
        await ended.wait()
        tg.cancel_scope.cancel()
