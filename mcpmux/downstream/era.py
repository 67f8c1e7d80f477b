"""Which protocol era a downstream speaks, found the way the 2026-07-28 versioning rules describe.

On stdio there is no status code to drive a fallback, so a client of both eras
probes with `server/discover` at its preferred modern version: a `DiscoverResult`
naming a modern version mcpmux speaks means the modern era (every request then
carries its own `_meta` envelope); -32022 naming such a version means "retry at
that one"; anything else — another error, a result that is not modern evidence,
silence past `PROBE_SECONDS` — means a handshake-era server, spoken to with
`initialize` (the SDK's client-side probe, mcp/client/_probe.py, follows the
same rules). A probe that timed out on a slow modern server may have locked it
modern before the `initialize` arrives: its -32022 is modern evidence, so the
probe is tried once more.

Which one mcpmux tries first is its own choice, and it is `initialize`: a
server of both eras is pinned to the era its client opens with, and on stdio the
handshake era is the one where such a server's tools work as written (the SDK's
`ctx.elicit`, `ctx.info`, list_changed notifications: the modern era refuses
server requests and drops change notifications outside `subscriptions/listen`).
So `initialize` goes first, and a refusal of it (what a 2026-07-28-only server
answers) sends mcpmux through the probe above, by the versioning rules.

The era found is remembered (cache.py): a modern server is probed at once on
later starts, skipping the refused `initialize`.
"""

from __future__ import annotations

from typing import Literal

import mcp_types as types
import pydantic
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION, MODERN_PROTOCOL_VERSIONS

from mcpmux import __version__, wire
from mcpmux.downstream.connection import CLIENT_CAPABILITIES, Downstream, Refused
from mcpmux.errors import DownstreamError, DownstreamUnavailable
from mcpmux.wire import JSON

Era = Literal["handshake", "modern"]
"""handshake: `initialize`, then a session (2024-11-05 … 2025-11-25); modern: a `_meta` envelope per request."""

PROBE_SECONDS = 5.0
"""How long `server/discover` may go unanswered before the server counts as one of the handshake era (which
need not answer a request it does not know); bounded further by the server's own startup timeout."""


def envelope(version: str) -> JSON:
    """The `_meta` keys every request to a modern downstream carries: mcpmux's identity and capabilities."""
    return {
        PROTOCOL_VERSION_META_KEY: version,
        CLIENT_INFO_META_KEY: {"name": "mcpmux", "version": __version__},
        CLIENT_CAPABILITIES_META_KEY: CLIENT_CAPABILITIES,
    }


async def connect(ds: Downstream, known: Era | None, wait_seconds: float) -> Era:
    """Open `ds` in its era: a server remembered as modern is probed at once; any other is asked `initialize`
    first, and probed if it refuses."""
    if known == "modern":
        return await probe(ds, wait_seconds)
    try:
        await ds.initialize(wait_seconds)
        return "handshake"
    except Refused as refused:
        try:
            return await probe(ds, wait_seconds)
        except Refused:
            raise refused from None  # of no era mcpmux speaks: its refusal of the handshake says why


async def probe(ds: Downstream, wait_seconds: float) -> Era:
    version = LATEST_MODERN_VERSION
    for attempt in range(2):
        try:
            raw = await ds.request("server/discover", {"_meta": envelope(version)}, min(PROBE_SECONDS, wait_seconds))
        except DownstreamUnavailable:
            raise  # the process is gone: that is no verdict on its era
        except Refused as exc:
            mutual = _modern_versions(exc)
            if mutual and attempt == 0:
                version = mutual[-1]
                continue
            if exc.code == UNSUPPORTED_PROTOCOL_VERSION and not _names_handshake(exc):
                raise _disjoint(ds, exc) from None
            raw = None
        except DownstreamError:
            raw = None  # no answer in time: a handshake-era server may ignore what it does not know
        if raw is not None and (result := _modern_result(raw)) is not None:
            adopt(ds, result, version if version in result.supported_versions else _newest(result))
            return "modern"
        try:
            await ds.initialize(wait_seconds)
            return "handshake"
        except Refused as exc:
            mutual = _modern_versions(exc)
            if not mutual or attempt != 0:
                raise
            version = mutual[-1]  # the server was locked modern by a probe we gave up on: ask again
    raise AssertionError("unreachable")  # pragma: no cover - each round returns, raises or continues once


def adopt(ds: Downstream, result: types.DiscoverResult, version: str) -> None:
    """Speak `version` to `ds` from now on; its discover answer stands in for a handshake's (facts, capabilities)."""
    ds.era = "modern"
    ds.envelope = envelope(version)
    meta = result.meta or {}
    info = wire.as_object(meta.get(SERVER_INFO_META_KEY)) or {"name": ds.name, "version": "unknown"}
    try:
        server_info = types.Implementation.model_validate(info)
    except pydantic.ValidationError:
        server_info = types.Implementation(name=ds.name, version="unknown")
    ds.initialize_result = types.InitializeResult(
        protocol_version=version,
        capabilities=result.capabilities,
        server_info=server_info,
        instructions=result.instructions,
    )
    listen(ds, result.capabilities)


LISTEN_ID = "mx-listen"
"""The id of a modern downstream's `subscriptions/listen` stream (mcpmux's own ids are `mx-N`: never this one)."""


def listen(ds: Downstream, caps: types.ServerCapabilities) -> None:
    """Open the stream a modern downstream sends its list_changed notifications on (it sends none outside it).

    Written without a waiting sink: it is answered only when the server ends it, and a request in flight
    would keep a lazy server from ever counting as idle."""
    wanted: JSON = {}
    for key, feature in (("tools", caps.tools), ("prompts", caps.prompts), ("resources", caps.resources)):
        if feature is not None and feature.list_changed:
            wanted[f"{key}ListChanged"] = True
    if wanted and ds.envelope is not None:
        params = {"notifications": wanted, "_meta": ds.envelope}
        ds.write(wire.dumps({"jsonrpc": "2.0", "id": LISTEN_ID, "method": "subscriptions/listen", "params": params}))


def _modern_result(raw: JSON) -> types.DiscoverResult | None:
    """The discover answer if it is modern evidence: valid, and naming a modern version mcpmux speaks."""
    try:
        result = types.DiscoverResult.model_validate(raw)
    except pydantic.ValidationError:
        return None
    return result if any(v in MODERN_PROTOCOL_VERSIONS for v in result.supported_versions) else None


def _newest(result: types.DiscoverResult) -> str:
    return [v for v in MODERN_PROTOCOL_VERSIONS if v in result.supported_versions][-1]


def _supported(exc: Refused) -> list[str] | None:
    """The versions a -32022 refusal names (its `requested` is not needed to act on them)."""
    data = wire.as_object(exc.data) if exc.code == UNSUPPORTED_PROTOCOL_VERSION else None
    supported = data.get("supported") if data is not None else None
    if not isinstance(supported, list):
        return None
    return [v for v in supported if isinstance(v, str)]  # pyright: ignore[reportUnknownVariableType]


def _modern_versions(exc: Refused) -> list[str] | None:
    """The modern versions mcpmux speaks that a -32022 refusal names (None for any other refusal)."""
    supported = _supported(exc)
    mutual = [v for v in MODERN_PROTOCOL_VERSIONS if v in (supported or ())]
    return mutual or None


def _names_handshake(exc: Refused) -> bool:
    supported = _supported(exc)
    return supported is None or any(v in HANDSHAKE_PROTOCOL_VERSIONS for v in supported)


def _disjoint(ds: Downstream, exc: Refused) -> DownstreamError:
    named = ", ".join(_supported(exc) or []) or "none"
    speaks = ", ".join((*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS))
    return DownstreamError(
        ds.name,
        f"server '{ds.name}' speaks only protocol versions mcpmux does not ({named}); mcpmux speaks {speaks}: "
        "update mcpmux, or pin the server to an older release",
        ds.log_path,
    )
