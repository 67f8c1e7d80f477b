"""What `mcpmux tools` and `mcpmux pin diff` print as JSON, and `mcpmux tools NAME`: one tool in full.

A tool's entry is the same in every shape: its names, the policy's verdict, its integrity state
and the definition fields the host sees (description, inputSchema, outputSchema, annotations).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mcpmux.cli._console import out_console, say
from mcpmux.errors import MCPMuxError
from mcpmux.integrity.pins import PinCheck
from mcpmux.profile.model import Profile

if TYPE_CHECKING:
    from mcpmux.catalog.build import Route
    from mcpmux.integrity.check import ToolIntegrity

_DEFINITION_FIELDS = ("title", "description", "inputSchema", "outputSchema", "annotations")


def profile_json(profile: Profile) -> dict[str, Any]:
    return {"name": profile.name, "path": str(profile.path)}


def _integrity_json(check: ToolIntegrity | None) -> dict[str, Any] | None:
    if check is None:
        return None
    findings = [
        {"code": f.code, "severity": f.severity, "where": f.where, "message": f.message, "excerpt": f.excerpt}
        for f in check.findings
    ]
    return {"state": check.state, "visible": check.visible, "reason": check.reason, "findings": findings}


def tool_json(route: Route, check: ToolIntegrity | None) -> dict[str, Any]:
    """One tool: where it routes, whether policy lists it, its pin state, and its definition as the host sees it."""
    definition = route.definition.model_dump(by_alias=True, exclude_none=True, mode="json")
    entry: dict[str, Any] = {"name": route.exposed, "server": route.server, "original": route.tool}
    decision = route.decision
    entry |= {"allowed": decision.allowed, "rule": decision.rule, "reason": decision.reason}
    entry |= {"integrity": _integrity_json(check), "note": route.naming_note}
    return entry | {key: definition.get(key) for key in _DEFINITION_FIELDS}


def changes_json(checks: Iterable[PinCheck]) -> list[dict[str, Any]]:
    """Every tool against its pin: unchanged, changed (with the diff) or new (with its definition)."""
    rows: list[dict[str, Any]] = []
    for check in checks:
        route = check.route
        row = {"name": route.exposed, "server": route.server, "original": route.tool, "status": check.status}
        pinned_at = None if check.pin is None else check.pin.pinned_at
        definition = check.current.definition if check.status == "new" else None
        rows.append(row | {"pinned_at": pinned_at, "diff": check.diff, "definition": definition})
    return rows


def find_route(routes: Mapping[str, Route], name: str, profile: Profile) -> Route:
    """The route of the exposed tool `name`, or an error with the nearest names and how to list them all."""
    route = routes.get(name)
    if route is not None:
        return route
    close = difflib.get_close_matches(name, list(routes), 3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise MCPMuxError(f"no tool {name!r} in profile {profile.name}{hint}; list them with `mcpmux tools --all`")


def print_tool(entry: Mapping[str, Any]) -> None:
    """One tool in full, for a person: every value from the server escaped (`say`)."""
    verdict = "allowed" if entry["allowed"] else f"denied by {entry['rule']}"
    lines = [f"{entry['name']} (server {entry['server']}, tool {entry['original']})", f"policy: {verdict}"]
    integrity = entry.get("integrity")
    if integrity is not None:
        lines.append(f"integrity: {str(integrity['state']).replace('_', ' ')}")
        lines += [f"  {integrity['reason']}"] if integrity["reason"] else []
        lines += [f"  finding: {f['where']}: {f['message']}" for f in integrity["findings"]]
    lines += [f"note: {entry['note']}"] if entry.get("note") else []
    lines += [f"title: {entry['title']}"] if entry.get("title") else []
    lines += _block("description", entry.get("description"))
    for key in ("inputSchema", "outputSchema", "annotations"):
        value = entry.get(key)
        lines += _block(key, None if value is None else json.dumps(value, indent=2, ensure_ascii=False))
    say("\n".join(lines), out_console)


def _block(label: str, text: str | None) -> Sequence[str]:
    if not text:
        return []
    return [f"{label}:", *(f"  {line}" for line in text.splitlines())]
