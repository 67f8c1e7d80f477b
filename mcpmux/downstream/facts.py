"""What each downstream said at its handshake (instructions, capabilities), remembered across runs.

The host's `initialize` is answered before the downstreams are up (app.py), so
the front's instructions and capabilities come from the last time each server
ran, kept beside the catalog cache under the same key (catalog_cache.cache_key:
change the server's command, args or env and the entry no longer applies). A
server never seen before makes the front wait, boundedly, for its first start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcp_types as types
import orjson

from mcpmux import wire
from mcpmux.downstream.cache import cache_key
from mcpmux.integrity.scan import INVISIBLE
from mcpmux.paths import write_private
from mcpmux.profile.model import Profile, ServerSpec
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

MAX_INSTRUCTIONS_CHARS = 8000
"""Per server: instructions are model context on every conversation; a long one is cut with a note."""

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
HANDSHAKE_TASKS: JSON = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
"""What mcpmux serves of the 2025-11-25 tasks utility (relay/tasks.py)."""

_OPTIONAL_FEATURES = ("prompts", "resources", "completions", "logging")
"""Capabilities the front advertises only when a downstream has them. `tools` is always advertised:
mcpmux relays tools by definition, and a profile switch may bring them to an empty profile."""


@dataclass(frozen=True, slots=True)
class ServerFacts:
    instructions: str | None
    capabilities: JSON
    """As the downstream advertised them (wire form)."""

    @classmethod
    def of(cls, result: types.InitializeResult, redact: Callable[[str], str]) -> ServerFacts:
        """From a handshake; `redact` hides the server's secrets (they never reach the model or the cache)."""
        caps = result.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True)
        return cls(redact(result.instructions) if result.instructions else None, caps)


def _path(cache_dir: Path, spec: ServerSpec) -> Path:
    return cache_dir / f"{spec.name}.{cache_key(spec)}.facts.json"


def load(cache_dir: Path, spec: ServerSpec) -> ServerFacts | None:
    try:
        raw = wire.as_object(orjson.loads(_path(cache_dir, spec).read_bytes()))
    except (OSError, ValueError):
        return None  # never seen (or from another version): the front waits for the first start
    if raw is None:
        return None
    instructions, caps = raw.get("instructions"), wire.as_object(raw.get("capabilities"))
    if caps is None or not (instructions is None or isinstance(instructions, str)):
        return None
    return ServerFacts(instructions, caps)


def remember(cache_dir: Path, spec: ServerSpec, facts: ServerFacts, known: ServerFacts | None) -> None:
    """Save `facts` for the next run unless they are what is already saved."""
    if facts == known:
        return
    write_private(
        _path(cache_dir, spec), orjson.dumps({"instructions": facts.instructions, "capabilities": facts.capabilities})
    )


def merged_instructions(profile: Profile, facts: Mapping[str, ServerFacts | None]) -> str:
    """The front's instructions: the gateway's own lines, then each server's, attributed and cut to size."""
    lines = [f"mcpmux gateway, profile '{profile.name}'. {profile.description}".strip()]
    for spec in profile.enabled_servers:
        prefix = f"'{spec.prefix}__'" if spec.namespaced else "no prefix"
        lines.append(f"- tools of server '{spec.name}': {prefix}")
    for spec in profile.enabled_servers:
        known = facts.get(spec.name)
        if known is None or not known.instructions or not known.instructions.strip():
            continue
        text = known.instructions.strip()
        if INVISIBLE.search(text):
            # Invisible characters in text for the model are the signature of a hidden prompt injection.
            logger.warning("server '%s': instructions contain invisible characters; withheld from the host", spec.name)
            text = "(withheld by mcpmux: they contain invisible characters, the mark of a hidden prompt injection)"
        elif len(text) > MAX_INSTRUCTIONS_CHARS:
            text = text[:MAX_INSTRUCTIONS_CHARS] + f"\n(cut by mcpmux at {MAX_INSTRUCTIONS_CHARS} characters)"
        where = f"its tools are prefixed '{spec.prefix}__'" if spec.namespaced else "its tools keep their names"
        lines += ["", f"## Instructions from server '{spec.name}' ({where})", text]
    return "\n".join(lines)


def runs_tool_tasks(capabilities: JSON) -> bool:
    """Whether a downstream offers task-augmented `tools/call` (the 2025-11-25 tasks utility)."""
    requests = wire.as_object((wire.as_object(capabilities.get("tasks")) or {}).get("requests")) or {}
    return "call" in (wire.as_object(requests.get("tools")) or {})


def merged_capabilities(offered: JSON, facts: Mapping[str, ServerFacts | None], *, modern: bool = False) -> JSON:
    """The front's capabilities: what mcpmux serves (`offered`), less what no downstream supports.

    While any server's facts are unknown, everything offered stays: advertising a
    feature no server has costs an empty list; hiding one a server has loses it.
    Tasks are advertised when a downstream runs tool calls as tasks: the 2025-11-25 `tasks`
    capability to a handshake-era host, the tasks extension to a 2026-07-28 (`modern`) one.
    """
    caps: dict[str, Any] = dict(offered)
    if any(runs_tool_tasks(f.capabilities) for f in facts.values() if f is not None):
        if modern:
            extensions = wire.as_object(caps.get("extensions")) or {}
            caps["extensions"] = {**extensions, TASKS_EXTENSION: {}}
        else:
            caps["tasks"] = HANDSHAKE_TASKS
    if any(f is None for f in facts.values()):
        return caps
    known = [f.capabilities for f in facts.values() if f is not None]
    for feature in _OPTIONAL_FEATURES:
        if feature in caps and not any(feature in c for c in known):
            del caps[feature]
    resources = wire.as_object(caps.get("resources"))
    subscribable = any((wire.as_object(c.get("resources")) or {}).get("subscribe") for c in known)
    if resources is not None and resources.get("subscribe") and not subscribable:
        caps["resources"] = {**resources, "subscribe": False}
    return caps
