"""What a 2026-07-28 host's `tools/call` needs on the fast path: its envelope read, stripped, answered.

A 2026-07-28 request carries its own envelope in `params._meta` (protocol
version, client info and capabilities, an optional log level). The downstream
speaks the 2025-11-25 handshake, so the reserved `io.modelcontextprotocol/`
keys are taken off before forwarding (a 2.x-SDK downstream would otherwise
treat the request as one of the other era and refuse it); everything else in
`_meta` (progress token, trace context) goes through; a 2026-07-28 downstream gets
mcpmux's own envelope (downstream/era.py). Results get the era's
`resultType` and mcpmux's `serverInfo` stamp, as the SDK gives its own. Log messages reach the host
only for calls that opted in with a level, and only at that level or above.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    LOG_LEVEL_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpmux import wire
from mcpmux.wire import JSON

Writer = Callable[[bytes], None]

RESERVED_PREFIX = "io.modelcontextprotocol/"
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_RETRY_KEYS = ("requestState", "inputResponses")


def has_envelope(params: JSON) -> bool:
    """Whether the request claims the 2026-07-28 era: its `_meta` has the protocol-version key, whatever the value
    (the SDK's test, so a half-built envelope is routed to the era that names what is missing)."""
    meta = wire.as_object(params.get("_meta"))
    return meta is not None and PROTOCOL_VERSION_META_KEY in meta


def envelope(params: JSON) -> JSON | None:
    """The request's 2026-07-28 envelope, if it has one of a version mcpmux serves."""
    meta = wire.as_object(params.get("_meta"))
    if meta is None or meta.get(PROTOCOL_VERSION_META_KEY) not in MODERN_PROTOCOL_VERSIONS:
        return None
    return meta


def client_info(meta: JSON) -> JSON:
    return wire.as_object(meta.get(CLIENT_INFO_META_KEY)) or {}


def client_capabilities(meta: JSON) -> JSON:
    return wire.as_object(meta.get(CLIENT_CAPABILITIES_META_KEY)) or {}


def for_downstream(params: JSON, *, modern: bool = False) -> JSON:
    """The params without the host's envelope keys (a `modern` downstream gets mcpmux's own, and the host's log
    level), and without the retry fields unless the downstream is `modern` (the input round is its own)."""
    meta = wire.as_object(params.get("_meta")) or {}
    kept = {k: v for k, v in meta.items() if not k.startswith(RESERVED_PREFIX) or (modern and k == LOG_LEVEL_META_KEY)}
    dropped = ("_meta",) if modern else ("_meta", *_RETRY_KEYS)
    out = {k: v for k, v in params.items() if k not in dropped}
    if kept:
        out["_meta"] = kept
    return out


def retry_fields(request: JSON) -> JSON | None:
    """A 2026-07-28 retry's `requestState` and `inputResponses`, or None for a first request."""
    if request.get("requestState") is None:
        return None
    return {"requestState": request.get("requestState"), "inputResponses": request.get("inputResponses")}


class ModernCalls:
    """Per connection: the serverInfo stamp and which calls asked for log messages from which server."""

    def __init__(self, server_info: JSON) -> None:
        self._stamp = {SERVER_INFO_META_KEY: server_info}
        self._head = b'"resultType":"complete","_meta":' + orjson.dumps(self._stamp)
        self._log_levels: dict[Any, tuple[str, int]] = {}
        """Host request id → (exposed tool, lowest level index the call asked for)."""

    def opt_in(self, host_id: Any, exposed: str, meta: JSON) -> None:
        # By tool name: a call made before its server is up has no route yet, and its messages still count.
        level = meta.get(LOG_LEVEL_META_KEY)
        if isinstance(level, str) and level in LEVELS:
            self._log_levels[host_id] = (exposed, LEVELS.index(level))

    def wants_log(self, server: str, level: object, server_of: Callable[[str], str | None]) -> bool:
        """Whether a call in flight asked for this server's messages at this level (`server_of`: a tool's server)."""
        rank = LEVELS.index(level) if isinstance(level, str) and level in LEVELS else len(LEVELS) - 1
        return any(rank >= lowest and server_of(tool) == server for tool, lowest in self._log_levels.values())

    def answer_writer(self, host_id: Any, write: Writer) -> Writer:
        """A writer for the call's one answer: stamped with serverInfo; the call's log opt-in ends with it."""
        head = b'{"jsonrpc":"2.0","id":' + orjson.dumps(host_id) + b',"result":{'

        def answer(line: bytes) -> None:
            self._log_levels.pop(host_id, None)
            if line.startswith(head) and b'"_meta"' not in line and b'"resultType"' not in line:
                rest = line[len(head) :]  # spliced in: a large result is not serialised again
                line = head + self._head + (b"" if rest.startswith(b"}") else b",") + rest
            else:
                line = self._stamped(line)
            write(line)

        return answer

    def _stamped(self, line: bytes) -> bytes:
        message = wire.as_object(wire.loads(line))
        result = wire.as_object(message.get("result")) if message is not None else None
        if message is None or result is None:
            return line
        meta = wire.as_object(result.get("_meta")) or {}
        stamped = {"resultType": "complete", **result, "_meta": {**meta, **self._stamp}}
        return wire.dumps({**message, "result": stamped})
