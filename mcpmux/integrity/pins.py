"""Tool pins: what each exposed tool looked like when the user accepted it, kept in a lock file.

A pin is the sha256 of a tool's name, title, description, input and output schema
and annotations (canonical JSON, so key order and whitespace never matter), plus
a readable rendering of the same definition so that a change can be shown as a
unified diff. Pins are keyed by (server, original tool name): renaming a tool
through `aliases` is the profile's business, not a change of the tool.

The lock file sits beside a project profile (`profiles/work.lock.toml`, meant to
be committed so a team shares its pins) and in `$MCPMUX_HOME/pins/` for a user
profile. It is rewritten whole through a temp file and `os.replace`.

    version = 1
    [servers.git]                 # present once the server's tools were first pinned
    [servers.git.tools.git_log]
    exposed = "git__git_log"
    sha256 = "…"
    pinned_at = "2026-11-25"
    definition = \"\"\"…\"\"\"
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol, cast

import mcp_types as types
import tomli_w

from mcpmux.errors import Problem, ProfileError
from mcpmux.paths import StatePaths, state_paths, write_private
from mcpmux.profile.model import Profile

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock.toml"

PinStatus = Literal["unchanged", "changed", "new"]


class RouteLike(Protocol):
    """The fields of `catalog.Route` that integrity needs (kept structural so tests can pass plain data)."""

    @property
    def exposed(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def definition(self) -> types.Tool: ...


def _pinned_fields(tool: types.Tool, original: str) -> dict[str, Any]:
    """What a pin covers, as plain JSON; `original` replaces the exposed name the catalog gave the definition."""
    annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else None
    return {
        "name": original,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": annotations,
    }


def definition_hash(tool: types.Tool, original: str) -> str:
    # ensure_ascii: invisible characters hash as their escapes, so no two texts can render alike and hash alike.
    canonical = json.dumps(_pinned_fields(tool, original), sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _visible(text: str) -> str:
    """Escape what a reader cannot see (format/control characters, odd spaces), so a diff shows it."""
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\t" or not (category.startswith("C") or category in ("Zl", "Zp") or char == "\u00a0"):
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
    return "".join(out)


def definition_text(tool: types.Tool, original: str) -> str:
    """A readable, stable rendering of what a pin covers: the text `mcpmux pin diff` compares."""
    fields = _pinned_fields(tool, original)
    lines = [f"name: {fields['name']}", f"title: {_visible(fields['title'] or '')}", "description:"]
    lines += [f"  {line}" for line in _visible(fields["description"] or "").splitlines()]
    for key in ("inputSchema", "outputSchema", "annotations"):
        rendered = json.dumps(fields[key], sort_keys=True, indent=2, ensure_ascii=False)
        lines.append(f"{key}: {_visible(rendered)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Pin:
    server: str
    tool: str
    exposed: str
    sha256: str
    pinned_at: str
    """ISO date (YYYY-MM-DD) on which the definition was accepted."""
    definition: str
    """`definition_text` at that time."""

    @classmethod
    def of(cls, route: RouteLike, today: date) -> Pin:
        return cls(
            route.server,
            route.tool,
            route.exposed,
            definition_hash(route.definition, route.tool),
            today.isoformat(),
            definition_text(route.definition, route.tool),
        )


def _no_pins() -> Mapping[tuple[str, str], Pin]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PinSet:
    """The pins of one profile. `servers` lists every server whose tools were pinned at least once."""

    pins: Mapping[tuple[str, str], Pin] = field(default_factory=_no_pins)
    servers: frozenset[str] = frozenset()

    def get(self, server: str, tool: str) -> Pin | None:
        return self.pins.get((server, tool))

    def with_pins(self, new: Iterable[Pin], servers: Iterable[str] = ()) -> PinSet:
        merged = dict(self.pins)
        merged.update({(p.server, p.tool): p for p in new})
        known = self.servers | {p.server for p in merged.values()} | set(servers)
        return PinSet(MappingProxyType(merged), frozenset(known))

    def without(self, keys: Iterable[tuple[str, str]]) -> PinSet:
        gone = set(keys)
        kept = {key: pin for key, pin in self.pins.items() if key not in gone}
        return PinSet(MappingProxyType(kept), self.servers)


@dataclass(frozen=True, slots=True)
class PinCheck:
    """One exposed tool against its pin."""

    route: RouteLike
    status: PinStatus
    pin: Pin | None
    """The stored pin (None for a new tool)."""
    current: Pin
    """A pin of the current definition, dated today: what `pin update` would store."""

    @property
    def diff(self) -> str | None:
        """A unified diff of the pinned vs the current definition text; None unless changed."""
        if self.status != "changed" or self.pin is None:
            return None
        old, new = self.pin.definition.splitlines(keepends=True), self.current.definition.splitlines(keepends=True)
        label = f"{self.route.exposed} ({self.route.server}/{self.route.tool})"
        lines = difflib.unified_diff(old, new, f"{label} pinned {self.pin.pinned_at}", f"{label} now", n=2)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def compare(pins: PinSet, routes: Iterable[RouteLike], today: date | None = None) -> list[PinCheck]:
    """Each route against its pin, in route order: `unchanged`, `changed` or `new`."""
    day = today or date.today()
    checks: list[PinCheck] = []
    for route in routes:
        current = Pin.of(route, day)
        pin = pins.get(route.server, route.tool)
        status: PinStatus = "new" if pin is None else "unchanged" if pin.sha256 == current.sha256 else "changed"
        checks.append(PinCheck(route, status, pin, current))
    return checks


def accept(pins: PinSet, routes: Iterable[RouteLike], today: date | None = None) -> PinSet:
    """Pin the current definitions of `routes`; their servers count as pinned from now on."""
    day, chosen = today or date.today(), list(routes)
    return pins.with_pins((Pin.of(r, day) for r in chosen), servers={r.server for r in chosen})


def accept_all(pins: PinSet, routes: Iterable[RouteLike], today: date | None = None) -> PinSet:
    """Pin every current definition and forget the pins of tools the listed servers no longer offer."""
    chosen = list(routes)
    offered = {(r.server, r.tool) for r in chosen}
    servers = {r.server for r in chosen}
    gone = [key for key in pins.pins if key[0] in servers and key not in offered]
    return accept(pins.without(gone), chosen, today)


# ---- the lock file ---------------------------------------------------------------------------------------------


def lock_path(profile: Profile, paths: StatePaths | None = None) -> Path:
    """Beside a project profile (`NAME.lock.toml`, to commit); in `<config>/pins/` for a user profile."""
    paths = paths or state_paths()
    stem = profile.path.name.removesuffix(".toml")
    if profile.path.resolve().parent == paths.profiles_dir.resolve():
        return paths.config_dir / "pins" / f"{stem}{LOCK_SUFFIX}"
    return profile.path.with_name(f"{stem}{LOCK_SUFFIX}")


def _bad_lock(path: Path, key: str, message: str, line: int | None = None) -> ProfileError:
    fix = f"fix it, or delete it and run `mcpmux pin update` to pin the current definitions again ({path.name})"
    return ProfileError([Problem(path, line, key, message, fix)])


def load_pins(path: Path) -> PinSet:
    """The pins in a lock file; an empty set if it does not exist (the profile's first use)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return PinSet()
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad_lock(path, "", f"cannot read the lock file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+)", str(exc))
        raise _bad_lock(path, "", f"TOML syntax error: {exc}", int(where.group(1)) if where else None) from exc
    if data.get("version") != LOCK_VERSION:
        raise _bad_lock(path, "version", f"unsupported lock file version {data.get('version')!r}")
    pins: list[Pin] = []
    servers = _table(path, data, "servers", "servers")
    for server in servers:
        tools = _table(path, _table(path, servers, server, f"servers.{server}"), "tools", f"servers.{server}.tools")
        for tool in tools:
            key = f"servers.{server}.tools.{tool}"
            entry = _table(path, tools, tool, key)
            values = {name: entry.get(name) for name in ("exposed", "sha256", "pinned_at", "definition")}
            missing = [name for name, value in values.items() if not isinstance(value, str)]
            if missing:
                raise _bad_lock(path, key, f"missing or non-string {', '.join(missing)}")
            text = cast(dict[str, str], values)
            pins.append(Pin(server, tool, text["exposed"], text["sha256"], text["pinned_at"], text["definition"]))
    return PinSet().with_pins(pins, servers)


def _table(path: Path, parent: Mapping[str, object], name: str, key: str) -> dict[str, object]:
    value = parent.get(name, {})
    if not isinstance(value, dict):
        raise _bad_lock(path, key, "must be a table")
    return cast(dict[str, object], value)


def save_pins(path: Path, pins: PinSet, profile_name: str = "") -> None:
    """Write the lock file whole (temp file + `os.replace`): a reader never sees half of it."""
    servers: dict[str, dict[str, Any]] = {name: {"tools": {}} for name in sorted(pins.servers)}
    for (server, tool), pin in sorted(pins.pins.items()):
        servers.setdefault(server, {"tools": {}})["tools"][tool] = {
            "exposed": pin.exposed,
            "sha256": pin.sha256,
            "pinned_at": pin.pinned_at,
            "definition": pin.definition,
        }
    header = (
        f"# Tool pins of mcpmux profile {profile_name!r}: the tool definitions accepted for use.\n"
        "# Review changes with `mcpmux pin diff`; accept them with `mcpmux pin update [TOOL…]`. Commit this file.\n"
    )
    text = header + tomli_w.dumps({"version": LOCK_VERSION, "servers": servers}, multiline_strings=True)
    # A user profile's pins folder is created 0700 (it is mcpmux state); a project's lock sits in its folder.
    write_private(path, text.encode())
