"""Lifecycle events and refusals of primitives other than tools (the envelope is in events.py).

`serve_start` (pid, version, profile_files: every file the profile was read from, its own first →
sha256 of the bytes parsed), `serve_stop` (pid, reason), `downstream_start` (server, pid),
`downstream_exit` (server, pid, exit_code), `downstream_restart` (server, attempt, delay_s),
`downstream_failed` (server, error, log), `profile_switch` (from_profile, from_hash, profile,
profile_hash, profile_files), `catalog_changed` (added, removed, changed: exposed tool names),
`refused` (kind: prompt | resource | request, name, server, rule, reason); on a shared gateway,
`host_attached` (host, host_version, era, pipe_pid: once the host has said who it is) and
`host_detached` (host, cancelled: its calls still in flight, ended downstream).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson


def serve_start(pid: int, version: str, **context: Any) -> dict[str, Any]:
    return {"event": "serve_start", **context, "pid": pid, "version": version}


def serve_stop(pid: int, reason: str | None = None, **context: Any) -> dict[str, Any]:
    """`reason`: `stdin closed`, `SIGTERM`, … or None."""
    return {"event": "serve_stop", **context, "pid": pid, "reason": reason}


def host_attached(host: str | None, version: str | None, era: str, **context: Any) -> dict[str, Any]:
    return {"event": "host_attached", **context, "host": host, "host_version": version, "era": era}


def host_detached(host: str | None, cancelled: int, **context: Any) -> dict[str, Any]:
    return {"event": "host_detached", **context, "host": host, "cancelled": cancelled}


def downstream_start(server: str, pid: int | None, **context: Any) -> dict[str, Any]:
    return {"event": "downstream_start", **context, "server": server, "pid": pid}


def downstream_exit(server: str, pid: int | None, exit_code: int | None, **context: Any) -> dict[str, Any]:
    """`exit_code` as `Popen.returncode`: negative for a signal, None when unknown."""
    return {"event": "downstream_exit", **context, "server": server, "pid": pid, "exit_code": exit_code}


def downstream_restart(server: str, attempt: int, delay_s: float, **context: Any) -> dict[str, Any]:
    return {
        "event": "downstream_restart",
        **context,
        "server": server,
        "attempt": attempt,
        "delay_s": round(delay_s, 3),
    }


def downstream_failed(server: str, error: str, log: str | None = None, **context: Any) -> dict[str, Any]:
    """The downstream gave up (failed to start, or too many restarts); `log` is its stderr log's path."""
    return {"event": "downstream_failed", **context, "server": server, "error": error, "log": log}


def profile_switch(
    from_profile: str | None, from_hash: str | None, profile: str, profile_hash: str | None, **context: Any
) -> dict[str, Any]:
    return {
        "event": "profile_switch",
        **context,
        "from_profile": from_profile,
        "from_hash": from_hash,
        "profile": profile,
        "profile_hash": profile_hash,
    }


def tool_fingerprint(definition: Any) -> str:
    """A short hash of a tool definition (a dict or a pydantic model), to notice a changed tool."""
    if hasattr(definition, "model_dump"):
        definition = definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    canonical = orjson.dumps(definition, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()[:16]


def catalog_changed(before: Mapping[str, str], after: Mapping[str, str], **context: Any) -> dict[str, Any] | None:
    """The difference between two {exposed name: `tool_fingerprint`} maps, or None when there is none.

    The lead builds each map from a `Catalog` as `{n: tool_fingerprint(r.definition) for n, r in c.routes.items()}`.
    """
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(n for n in before.keys() & after.keys() if before[n] != after[n])
    if not (added or removed or changed):
        return None
    return {"event": "catalog_changed", **context, "added": added, "removed": removed, "changed": changed}


def refusal(kind: str, name: str, server: str | None, rule: str, reason: str, **context: Any) -> dict[str, Any]:
    """A prompt, resource, completion or server request that the policy refused (`kind` says which)."""
    return {"event": "refused", **context, "kind": kind, "name": name, "server": server, "rule": rule, "reason": reason}
