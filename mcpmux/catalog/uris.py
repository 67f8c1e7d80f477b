"""Resource URI namespacing (pure).

A namespaced downstream's resource `test://static/1` is exposed as
`mcpmux://<namespace>/test://static/1`. The rule is the same for static resources
and templates (`mcpmux://every/test://static/{id}` still expands as RFC 6570), it
is reversible by a prefix strip, so a read always reaches its owner even for URIs
mcpmux never listed, and two downstreams exposing the same URI never collide.
A server with `namespace = false` keeps its URIs unchanged.

MCP Apps (`io.modelcontextprotocol/ui`) resources keep their `ui://` scheme, because hosts
render only `ui://` resources: `ui://weather/view.html` is exposed as
`ui://<namespace>.mcpmux/weather/view.html` (the namespace in the authority, so each server's
apps keep an authority of their own). A tool's `_meta.ui.resourceUri` (and the legacy
`_meta["ui/resourceUri"]`) names such a resource, so it is exposed by the same rule wherever it
appears: tool listings, call results, `resources/read`.
"""

from __future__ import annotations

from typing import Any, cast

SCHEME = "mcpmux://"
UI_SCHEME = "ui://"
UI_MARK = ".mcpmux"
"""Ends the authority of an exposed `ui://` URI: `ui://<namespace>.mcpmux/…`."""
UI_META = "ui"
LEGACY_UI_META = "ui/resourceUri"


def expose_uri(prefix: str | None, uri: str) -> str:
    if prefix is None:
        return uri
    if uri.startswith(UI_SCHEME):
        return f"{UI_SCHEME}{prefix}{UI_MARK}/{uri[len(UI_SCHEME) :]}"
    return f"{SCHEME}{prefix}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """(namespace, original URI) for a namespaced URI, else None."""
    if uri.startswith(SCHEME):
        prefix, sep, original = uri[len(SCHEME) :].partition("/")
        return (prefix, original) if sep and prefix and original else None
    if uri.startswith(UI_SCHEME):
        authority, sep, rest = uri[len(UI_SCHEME) :].partition("/")
        prefix = authority.removesuffix(UI_MARK)
        if sep and rest and prefix and prefix != authority:
            return prefix, UI_SCHEME + rest
    return None


def expose_meta(meta: object, prefix: str) -> dict[str, Any] | None:
    """`_meta` with its MCP Apps resource URIs (`ui.resourceUri`, legacy `ui/resourceUri`) exposed;
    None when it names none. Everything else in it (`ui.visibility`, `ui.csp`, …) is kept as is."""
    if not isinstance(meta, dict):
        return None
    entries = cast(dict[str, Any], meta)
    changed: dict[str, Any] = {}
    ui = entries.get(UI_META)
    if isinstance(ui, dict) and isinstance(uri := cast(dict[str, Any], ui).get("resourceUri"), str):
        changed[UI_META] = {**cast(dict[str, Any], ui), "resourceUri": expose_uri(prefix, uri)}
    if isinstance(legacy := entries.get(LEGACY_UI_META), str):
        changed[LEGACY_UI_META] = expose_uri(prefix, legacy)
    return {**entries, **changed} if changed else None


def expose_result_uris(result: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    """`result` with the URIs of its resource links, embedded resources and MCP Apps `_meta` namespaced;
    None if it has none."""
    meta = expose_meta(result.get("_meta"), prefix)
    content = result.get("content")
    blocks: list[Any] = []
    changed = False
    for item in cast(list[Any], content) if isinstance(content, list) else []:
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
    if not changed and meta is None:
        return None
    out = dict(result)
    if changed:
        out["content"] = blocks
    if meta is not None:
        out["_meta"] = meta
    return out
