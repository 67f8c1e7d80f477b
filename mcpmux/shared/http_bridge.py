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
from collections.abc import Awaitable, Callable

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


Unanswered = Callable[[], Awaitable[None]]
"""How the transport ends the stream of a request that gets no response (its `on_request_unanswered`)."""


class Routes:
    """This host's requests in flight, and their progress tokens: where the front's messages belong."""

    def __init__(self) -> None:
        self._in_flight: dict[str, RequestId] = {}  # keyed as the transport keys its streams: str(id)
        self._tokens: dict[str, RequestId] = {}
        self._token_of: dict[str, str] = {}
        self._unanswered: dict[str, Unanswered] = {}

    def received(self, message: JSONRPCMessage, unanswered: Unanswered | None = None) -> Unanswered | None:
        """Note a request of the host; for its cancellation of one, what ends that request's stream (if anything).

        A cancelled request gets no response (the front forwards the cancellation), so its stream would stay
        open, and messages routed to it would be lost: it is settled here instead."""
        if isinstance(message, JSONRPCNotification) and message.method == "notifications/cancelled":
            cancelled = (message.params or {}).get("requestId")
            if isinstance(cancelled, str | int) and str(cancelled) in self._in_flight:
                return self._settle(str(cancelled))
            return None
        if not isinstance(message, JSONRPCRequest):
            return None
        key = str(message.id)
        self._in_flight[key] = message.id
        if unanswered is not None:
            self._unanswered[key] = unanswered
        meta = (message.params or {}).get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(token, str | int) and not isinstance(token, bool):
            self._tokens[str(token)] = message.id
            self._token_of[key] = str(token)
        return None

    def _settle(self, key: str) -> Unanswered | None:
        self._in_flight.pop(key, None)
        if (token := self._token_of.pop(key, None)) is not None:
            self._tokens.pop(token, None)
        return self._unanswered.pop(key, None)

    def related(self, message: JSONRPCMessage) -> RequestId | None:
        """The request `message` goes with (None: the session's GET stream); a response settles its request."""
        if isinstance(message, JSONRPCResponse | JSONRPCError):
            if message.id is not None:
                self._settle(str(message.id))
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
    settle_out, settle_in = anyio.create_memory_object_stream[Unanswered](math.inf)

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        with contextlib.suppress(anyio.ClosedResourceError):  # the session's end closes the stream under us
            async for item in read_stream:
                if isinstance(item, Exception):  # the transport's own trouble with a request, answered there
                    logger.info("an HTTP host's request failed in the transport: %s", type(item).__name__)
                    continue
                meta = item.metadata
                unanswered = meta.on_request_unanswered if isinstance(meta, ServerMessageMetadata) else None
                if (settle := routes.received(item.message, unanswered)) is not None:
                    settle_out.send_nowait(settle)
                on_line(to_line(item.message))
        ended.set()
        await anyio.sleep_forever()  # returning would make the front wait for its answers: nobody reads them

    async def settle_cancelled() -> None:
        async for settle in settle_in:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await settle()

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
        tg.start_soon(settle_cancelled)
        tg.start_soon(front.serve, read_lines, write)
        await ended.wait()
        tg.cancel_scope.cancel()
