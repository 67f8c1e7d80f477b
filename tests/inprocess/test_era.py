"""How a downstream's protocol era is found (downstream/era.py), against peers that answer as servers of each era do.

Each peer is a `MemoryDownstream`'s other end: it sees the lines mcpmux writes and
answers some of them. Nothing here waits on a clock except the probe left
unanswered, bounded by the short wait the test gives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcpmux.downstream import era
from mcpmux.downstream.connection import Refused
from mcpmux.downstream.memory import MemoryDownstream
from mcpmux.errors import DownstreamError

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
Answer = Callable[[dict[str, Any]], dict[str, Any] | None]
"""A request → its result, `{"error": …}`, or None to stay silent."""

DISCOVERED: dict[str, Any] = {
    "supportedVersions": [MODERN],
    "capabilities": {"tools": {}},
    "instructions": "modern instructions",
    "resultType": "complete",
    "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern-peer", "version": "2"}},
}
INITIALIZED: dict[str, Any] = {
    "protocolVersion": "2025-11-25",
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "old-peer", "version": "1"},
}


def unsupported(*supported: str) -> dict[str, Any]:
    return {"error": {"code": -32022, "message": "unsupported", "data": {"supported": list(supported)}}}


def peer_of(answer: Answer, seen: list[dict[str, Any]]) -> Callable[[MemoryDownstream, bytes], None]:
    def peer(ds: MemoryDownstream, line: bytes) -> None:
        message = orjson.loads(line)
        seen.append(message)
        if "id" not in message:
            return
        out = answer(message)
        if out is None:
            return
        body = {"error": out["error"]} if "error" in out else {"result": out}
        ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": message["id"], **body}))

    return peer


def downstream(tmp_path: Path, answer: Answer, seen: list[dict[str, Any]]) -> MemoryDownstream:
    return MemoryDownstream("peer", tmp_path / "peer.log", peer=peer_of(answer, seen))


def modern_only(message: dict[str, Any]) -> dict[str, Any] | None:
    params: dict[str, Any] = message.get("params") or {}
    meta: dict[str, Any] = params.get("_meta") or {}
    if message["method"] == "initialize" or meta.get("io.modelcontextprotocol/protocolVersion") != MODERN:
        return unsupported(MODERN)
    return DISCOVERED if message["method"] == "server/discover" else {"tools": []}


async def test_a_server_that_takes_the_handshake_is_spoken_to_in_it_and_never_probed(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    ds = downstream(tmp_path, lambda m: INITIALIZED if m["method"] == "initialize" else None, seen)
    assert await era.connect(ds, None, 1.0) == "handshake"
    assert [m["method"] for m in seen if "id" in m] == ["initialize"]
    assert ds.envelope is None


async def test_a_2026_only_server_is_probed_after_refusing_the_handshake_and_every_request_carries_the_envelope(
    tmp_path: Path,
) -> None:
    seen: list[dict[str, Any]] = []
    ds = downstream(tmp_path, modern_only, seen)
    assert await era.connect(ds, None, 1.0) == "modern"
    await ds.request("tools/list", None, 1.0)
    assert [m["method"] for m in seen] == ["initialize", "server/discover", "tools/list"]
    meta = seen[-1]["params"]["_meta"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == MODERN
    assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "mcpmux"
    assert ds.initialize_result is not None
    assert (ds.initialize_result.instructions, ds.initialize_result.server_info.name) == (
        "modern instructions",
        "modern-peer",
    )


async def test_a_server_remembered_as_modern_is_probed_at_once(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    assert await era.connect(downstream(tmp_path, modern_only, seen), "modern", 1.0) == "modern"
    assert [m["method"] for m in seen] == ["server/discover"]


async def test_a_server_remembered_as_modern_that_now_takes_only_the_handshake_falls_back_to_it(
    tmp_path: Path,
) -> None:
    seen: list[dict[str, Any]] = []

    def answer(message: dict[str, Any]) -> dict[str, Any]:
        return INITIALIZED if message["method"] == "initialize" else {"error": {"code": -32602, "message": "x"}}

    assert await era.connect(downstream(tmp_path, answer, seen), "modern", 1.0) == "handshake"


async def test_a_probe_refused_with_a_version_mcpmux_speaks_is_sent_again_at_that_version(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    tries: list[str] = []

    def answer(message: dict[str, Any]) -> dict[str, Any] | None:
        version = message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
        tries.append(version)
        return unsupported("2099-01-01", MODERN) if len(tries) == 1 else DISCOVERED

    assert await era.probe(downstream(tmp_path, answer, seen), 1.0) == "modern"
    assert len(tries) == 2 and tries[-1] == MODERN


async def test_a_server_of_only_versions_mcpmux_does_not_speak_fails_naming_them(tmp_path: Path) -> None:
    ds = downstream(tmp_path, lambda m: unsupported("2099-01-01"), [])
    with pytest.raises(DownstreamError, match=r"server 'peer' speaks only protocol versions .*2099-01-01"):
        await era.connect(ds, None, 1.0)


@pytest.mark.parametrize(
    "discover_answer",
    [
        None,  # silence: a handshake-era server need not answer what it does not know
        {"error": {"code": -32601, "message": "Method not found"}},
        {"error": {"code": -32602, "message": "Invalid request parameters"}},  # what a 1.x Python SDK server says
        {"supportedVersions": ["2025-11-25"], "capabilities": {}},  # discover without a modern version
        {"supportedVersions": "not a list"},  # not a DiscoverResult at all
    ],
)
async def test_a_probe_answered_with_anything_but_modern_evidence_is_no_modern_era(
    tmp_path: Path, discover_answer: dict[str, Any] | None
) -> None:
    seen: list[dict[str, Any]] = []

    def answer(message: dict[str, Any]) -> dict[str, Any] | None:
        if message["method"] == "initialize":
            return INITIALIZED
        return discover_answer

    assert await era.probe(downstream(tmp_path, answer, seen), 0.3) == "handshake"
    assert [m.get("method") for m in seen if "id" in m][-1] == "initialize"


async def test_a_server_that_refuses_the_handshake_and_gives_no_modern_answer_fails_with_its_refusal(
    tmp_path: Path,
) -> None:

    def answer(message: dict[str, Any]) -> dict[str, Any]:
        return {"error": {"code": -32603, "message": "broken on purpose"}}

    with pytest.raises(Refused, match="initialize with error: broken on purpose"):
        await era.connect(downstream(tmp_path, answer, []), None, 0.3)
