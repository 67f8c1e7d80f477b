"""Newline-delimited JSON-RPC framing, owned by mcpmux on the hot path.

The SDK's stdio transports cost about a millisecond per message (a model per
message, memory streams, a task per message, worker threads), and its client
reassembles long lines in quadratic time. mcpmux frames lines itself: bytes in,
lines out, in linear time, parsed with orjson only where a decision needs it.
"""

from __future__ import annotations

from typing import Any, Final, cast

import orjson

from mcpmux.errors import LineTooLong

JSON = dict[str, Any]

MAX_LINE_BYTES: Final = 256 * 1024 * 1024
"""A line longer than this is a broken peer, not a message (real results run to tens of MB)."""

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603


class LineBuffer:
    """Splits a byte stream into lines; each byte is scanned once, whatever the line length."""

    __slots__ = ("_buf", "_limit", "_scanned")

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._buf = bytearray()
        self._scanned = 0
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        if not buf and data.endswith(b"\n"):
            # The common case: whole lines arrived together.
            return [line for line in data.split(b"\n") if line.strip()]
        buf += data
        lines: list[bytes] = []
        start = 0
        pos = self._scanned
        while (end := buf.find(b"\n", pos)) >= 0:
            line = bytes(buf[start:end])
            if line.strip():
                lines.append(line)
            start = pos = end + 1
        if start:
            del buf[:start]
        self._scanned = len(buf)
        if self._scanned > self._limit:
            raise LineTooLong(f"a message exceeded {self._limit} bytes without a newline")
        return lines


def as_object(value: object) -> JSON | None:
    """`value` as a JSON object, or None: the typed door from parsed JSON into mcpmux's code."""
    return cast(JSON, value) if isinstance(value, dict) else None


def dumps(message: JSON) -> bytes:
    return orjson.dumps(message)


def loads(line: bytes) -> Any:
    return orjson.loads(line)


def error_response(request_id: Any, code: int, message: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def result_response(request_id: Any, result: JSON) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def notification(method: str, params: JSON | None = None) -> bytes:
    message: JSON = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return orjson.dumps(message)


def tool_error_result(text: str) -> JSON:
    """A `CallToolResult` the model can read, for failures that are not protocol errors."""
    return {"content": [{"type": "text", "text": text}], "isError": True}


def with_id(line: bytes, message: JSON, old_id: str, new_id: Any) -> bytes:
    """Re-address a response line to `new_id` without re-serialising it when the layout allows.

    Downstreams built on the SDKs write `{"jsonrpc":"2.0","id":...` first; then the id
    is spliced in place (a 10 MB result is not dumped again). Any other layout is
    re-serialised from the parsed message.
    """
    prefix = b'{"jsonrpc":"2.0","id":"' + old_id.encode() + b'"'
    if line.startswith(prefix):
        return b'{"jsonrpc":"2.0","id":' + orjson.dumps(new_id) + line[len(prefix) :]
    message = dict(message)
    message["id"] = new_id
    return orjson.dumps(message)
