"""Resource URI namespacing (pure).

A namespaced downstream's resource `test://static/1` is exposed as
`mcpmux://<namespace>/test://static/1`. The rule is the same for static resources
and templates (`mcpmux://every/test://static/{id}` still expands as RFC 6570), it
is reversible by a prefix strip, so a read always reaches its owner even for URIs
mcpmux never listed, and two downstreams exposing the same URI never collide.
A server with `namespace = false` keeps its URIs unchanged.
"""

from __future__ import annotations

SCHEME = "mcpmux://"


def expose_uri(prefix: str | None, uri: str) -> str:
    return uri if prefix is None else f"{SCHEME}{prefix}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """(namespace, original URI) for a namespaced URI, else None."""
    if not uri.startswith(SCHEME):
        return None
    prefix, sep, original = uri[len(SCHEME) :].partition("/")
    return (prefix, original) if sep and prefix and original else None
