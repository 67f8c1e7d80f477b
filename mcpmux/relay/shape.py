"""Output limits: a result larger than a server's `max_output_bytes` is cut down with a note, never passed whole.

Pure. Text blocks are kept in order until the budget runs out (the block that
crosses it is cut at a character boundary), later blocks and an oversize
`structuredContent` are dropped, and a final text block says what was cut and
how to raise the limit. Non-text blocks (images, audio, embedded resources) are
kept whole only while they fit.
"""

from __future__ import annotations

import orjson

from mcpmux import wire
from mcpmux.secrets.redact import Redactor
from mcpmux.wire import JSON


def _size(block: object) -> int:
    return len(orjson.dumps(block))


def truncate_response(line: bytes, message: JSON, redactor: Redactor | None, limit: int, *, server: str) -> JSON:
    """The result of response `line` (parsed: `message`), redacted, then cut down to `limit`.

    Redacted before the cut: cutting first can leave all but the last characters of a secret,
    which no longer match; redacted first, the cut can only shorten a marker.
    """
    redacted = redactor.redact_bytes(line) if redactor else line
    if redacted is not line:
        message = wire.as_object(wire.loads(redacted)) or {}
    result = wire.as_object(message.get("result")) or {}
    return truncate_result(result, limit, server=server, size=len(line))


def truncate_result(result: JSON, limit: int, *, server: str, size: int) -> JSON:
    budget = max(limit - 512, 0)  # room for the envelope and the note
    kept: list[object] = []
    content = result.get("content")
    items: list[object] = content if isinstance(content, list) else []  # pyright: ignore[reportUnknownVariableType]
    for item in items:
        block = wire.as_object(item)
        if block is None:
            continue
        cost = _size(block)
        if cost <= budget:
            kept.append(block)
            budget -= cost
            continue
        text = block.get("text")
        if block.get("type") == "text" and isinstance(text, str) and budget > 64:
            cut = text.encode()[: budget - 64].decode(errors="ignore")
            kept.append({**block, "text": cut})
        break
    note = (
        f"[mcpmux: the result of server '{server}' was {size} bytes, over its max_output_bytes of {limit}; "
        "it was truncated. Raise max_output_bytes for this server in the profile to receive it whole.]"
    )
    kept.append({"type": "text", "text": note})
    truncated: JSON = {k: v for k, v in result.items() if k not in ("content", "structuredContent")}
    truncated["content"] = kept
    structured = result.get("structuredContent")
    if structured is not None and _size(structured) <= budget:
        truncated["structuredContent"] = structured
    elif structured is not None:
        # Hosts check structured output against the tool's schema; an error result is exempt and says why.
        truncated["isError"] = True
    return truncated
