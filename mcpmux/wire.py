"""Newline-delimited JSON-RPC framing, owned by mcpmux on the hot path.

The SDK's stdio transports cost about a millisecond per message (a model per
message, memory streams, a task per message, worker threads), and its client
reassembles long lines in quadratic time. mcpmux frames lines itself: bytes in,
lines out, in linear time, parsed with orjson only where a decision needs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import sys
from typing import Any, Final, cast

import orjson

from mcpmux.errors import LineTooLong, TooDeep, Unencodable

JSON = dict[str, Any]

MAX_LINE_BYTES: Final = 256 * 1024 * 1024
"""A line longer than this is a broken peer, not a message (real results run to tens of MB)."""
MAX_DEPTH: Final = 254
"""The deepest nesting of arrays and objects in a message mcpmux relays: orjson writes no deeper
(it parses up to 1024 levels; `loads` raises `TooDeep` past that, `dumps` raises `Unencodable` past this)."""
HEAD_BYTES: Final = 64 * 1024
"""How much of a line too deep to parse `head_members` reads: enough for the id and method, bounded work."""

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603


class LineBuffer:
    """Splits a byte stream into lines; each byte is scanned once, whatever the line length.

    The pieces of an unfinished line are kept as they arrived and joined once, when its newline
    comes: one copy of a 10 MB line, where growing one buffer and slicing it took three (and
    fresh memory for each, which costs page faults: 49 ms against 0.3 ms for 10 MB).
    """

    __slots__ = ("_limit", "_parts", "_size")

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        parts = self._parts
        if not parts and data.endswith(b"\n"):
            # The common case: whole lines arrived together.
            return [line for line in data.split(b"\n") if line.strip()]
        lines: list[bytes] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            line = data[start:end]
            if parts:
                parts.append(line)
                line = b"".join(parts)
                parts.clear()
                self._size = 0
            if line.strip():
                lines.append(line)
            start = end + 1
        if start < len(data):
            parts.append(data[start:] if start else data)
            self._size += len(data) - start
            if self._size > self._limit:
                raise LineTooLong(f"a message exceeded {self._limit} bytes without a newline")
        return lines


PIPE_BYTES = 256 * 1024
"""The pipe capacity mcpmux asks for where it reads or writes results (Linux's default is 64 KiB)."""


def widen_pipe(fd: int) -> None:
    """Ask Linux for a `PIPE_BYTES` pipe: a 10 MB result then crosses in 40 wake-ups instead of 160.

    Best effort: elsewhere, for a file, or past the user's pipe-memory limit, the pipe stays as it is.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_BYTES)


_F_SETPIPE_SZ = 1031


def as_object(value: object) -> JSON | None:
    """`value` as a JSON object, or None: the typed door from parsed JSON into mcpmux's code."""
    return cast(JSON, value) if isinstance(value, dict) else None


def dumps(message: JSON) -> bytes:
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError as exc:  # parsed JSON has str keys and no huge ints: too deep is the cause
        raise Unencodable(f"a message nested more than {MAX_DEPTH} levels deep: {exc}") from exc


def loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit"):
            raise TooDeep(str(exc)) from exc
        raise


def valid_id(value: object) -> bool:
    """Whether `value` may be a request's id: a string or an integer (MCP: never null; JSON-RPC: no fractions).

    `bool` is an `int` to Python, not to JSON-RPC."""
    kind = type(value)
    return kind is str or kind is int


def error_response(request_id: Any, code: int, message: str) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})


def result_response(request_id: Any, result: JSON) -> bytes:
    return dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def notification(method: str, params: JSON | None = None) -> bytes:
    message: JSON = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return dumps(message)


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
        head = b'{"jsonrpc":"2.0","id":' + orjson.dumps(new_id)
        if len(line) < _VIEW_BYTES:
            return head + line[len(prefix) :]
        return b"".join((head, memoryview(line)[len(prefix) :]))  # one copy of a large line, not two
    message = dict(message)
    message["id"] = new_id
    return dumps(message)


_VIEW_BYTES = 64 * 1024
"""From this size a re-addressed line is joined over a view; below it, slicing is the faster."""

_TOKEN = re.compile(rb'\s*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([][{}:,])|([^\s\][{}:,"]+))', re.S)


def head_members(line: bytes) -> tuple[JSON, JSON]:
    """The scalar members of a message's top level and of its `params` object, read from its first
    `HEAD_BYTES` only: for a line too deep to parse, enough to answer its id and name its tool.

    Bounded work on a line that is never relayed; members past the head, or not scalars, are absent.
    """
    top: JSON = {}
    params: JSON = {}
    stack: list[tuple[bytes, str | None]] = []  # each open container and the key it hangs from
    key: str | None = None
    valued = False  # a key and its colon were read: the next token is that key's value
    pos, end = 0, min(len(line), HEAD_BYTES)
    while (match := _TOKEN.match(line, pos, end)) is not None and match.end() > pos:
        pos = match.end()
        text, punct, literal = match.groups()
        if punct in (b"{", b"["):
            stack.append((punct, key if valued else None))
            key, valued = None, False
        elif punct in (b"}", b"]"):
            if not stack:
                break
            stack.pop()
            key, valued = None, False
        elif punct == b":":
            valued = key is not None
        elif punct == b",":
            key, valued = None, False
        elif stack and stack[-1][0] == b"{" and not valued and text is not None:
            key = _scalar(text)
        elif valued and key is not None:
            if len(stack) == 1:
                top[key] = _scalar(text or literal)
            elif len(stack) == 2 and stack[1] == (b"{", "params"):
                params[key] = _scalar(text or literal)
            key, valued = None, False
    return top, params


def _scalar(token: bytes | None) -> Any:
    try:
        return orjson.loads(token or b"")
    except orjson.JSONDecodeError:
        return None
