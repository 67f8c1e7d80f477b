"""The last listing of each lazy downstream, and the protocol era of every one, kept under the state dir.

A cache entry is keyed by what decides the server's behaviour (command, args,
cwd, env and header names with their secret references, never secret values):
change any of them and the entry no longer applies.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import mcp_types as types
import orjson
import pydantic

from mcpmux.catalog.build import Listing
from mcpmux.paths import write_private
from mcpmux.profile.model import ServerSpec


def cache_key(spec: ServerSpec) -> str:
    identity = {
        "command": spec.command,
        "args": spec.args,
        "cwd": str(spec.cwd),
        "url": spec.url,
        "env": {k: repr(v) for k, v in sorted(spec.env.items())},
        "headers": {k: repr(v) for k, v in sorted(spec.headers.items())},
    }
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _path(cache_dir: Path, spec: ServerSpec) -> Path:
    return cache_dir / f"{spec.name}.{cache_key(spec)}.json"


def load(cache_dir: Path, spec: ServerSpec) -> Listing | None:
    try:
        raw: dict[str, list[Any]] = orjson.loads(_path(cache_dir, spec).read_bytes())
        return Listing(
            tools=tuple(types.Tool.model_validate(x) for x in raw.get("tools", [])),
            prompts=tuple(types.Prompt.model_validate(x) for x in raw.get("prompts", [])),
            resources=tuple(types.Resource.model_validate(x) for x in raw.get("resources", [])),
            templates=tuple(types.ResourceTemplate.model_validate(x) for x in raw.get("templates", [])),
        )
    except (OSError, ValueError, pydantic.ValidationError):
        return None  # no entry, or one from another version: learn the catalog by starting the server


def save(cache_dir: Path, spec: ServerSpec, listing: Listing) -> None:
    data = {
        f.name: [item.model_dump(by_alias=True, mode="json", exclude_none=True) for item in getattr(listing, f.name)]
        for f in fields(listing)
    }
    write_private(_path(cache_dir, spec), orjson.dumps(data))


def _era_path(cache_dir: Path, spec: ServerSpec) -> Path:
    return cache_dir / f"{spec.name}.{cache_key(spec)}.era"


def load_era(cache_dir: Path, spec: ServerSpec) -> Literal["handshake", "modern"] | None:
    """The protocol era the server spoke last time (era.py), so this start may skip the probe; None if unknown."""
    try:
        text = _era_path(cache_dir, spec).read_text().strip()
    except (OSError, ValueError):
        return None
    return "handshake" if text == "handshake" else "modern" if text == "modern" else None


def save_era(cache_dir: Path, spec: ServerSpec, era: Literal["handshake", "modern"]) -> None:
    write_private(_era_path(cache_dir, spec), era.encode())
