"""Resource URI namespacing (pure).

A namespaced downstream's resource `test://static/1` is exposed as
`mcpmux://<namespace>/test://static/1`. The rule is the same for static resources
and templates (`mcpmux://every/test://static/{id}` still expands as RFC 6570), it
is reversible by a prefix strip, so a read always reaches its owner even for URIs
mcpmux never listed, and two downstreams exposing the same URI never collide.
A server with `namespace = false` keeps its URIs unchanged.
"""

from __future__ import annotations

from typing import Any, cast

SCHEME = "mcpmux://"


def expose_uri(prefix: str | None, uri: str) -> str:
    return uri if prefix is None else f"{SCHEME}{prefix}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """(namespace, original URI) for a namespaced URI, else None."""
    if not uri.startswith(SCHEME):
        return None
    prefix, sep, original = uri[len(SCHEME) :].partition("/")
    return (prefix, original) if sep and prefix and original else None


def expose_result_uris(result: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    """`result` with the URIs of its resource links and embedded resources namespaced; None if it has none."""
    content = result.get("content")
    if not isinstance(content, list):
        return None
    changed = False
    blocks: list[Any] = []
    for item in cast(list[Any], content):
        block = item
        if isinstance(item, dict):
            entry = cast(dict[str, Any], item)
            if entry.get("type") == "resource_link" and isinstance(entry.get("uri"), str):
                block = {**entry, "uri": expose_uri(prefix, entry["uri"])}
            elif entry.get("type") == "resource" and isinstance(entry.get("resource"), dict):
                inner = cast(dict[str, Any], entry["resource"])
                if isinstance(inner.get("uri"), str):
                    block = {**entry, "resource": {**inner, "uri": expose_uri(prefix, inner["uri"])}}
        changed = changed or block is not item
        blocks.append(block)
    return {**result, "content": blocks} if changed else None
