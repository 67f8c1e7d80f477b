"""Which tools a host may see, given their pins, the scanner and the profile's budget. Pure.

`apply_integrity` is the one call the catalog makes: per exposed name it says
whether the tool is visible and why not (or why it is shown with a warning), and
returns the pins to write back. The rules, per tool:

| state | meaning | default |
|---|---|---|
| `first_use` | its server has never been pinned in this profile | visible, pinned now |
| `unchanged` | matches its pin | visible |
| `changed` | differs from its pin (a "rug pull", or an upgrade) | `on_tool_change = "block"`: hidden, pin kept |
| `new` | its server was pinned, the tool was not | `on_new_tool = "warn"`: visible, pinned now |

`warn` on a changed tool keeps the old pin (the warning repeats until someone
accepts it with `mcpmux pin update`); `allow` accepts it silently. With
`hide_flagged = true`, tools with medium or high scanner findings are hidden too.
`enforce_max_tools` then cuts the listing to `max_tools`, in catalog order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

from mcpmux.integrity.pins import Pin, PinSet, RouteLike, compare
from mcpmux.integrity.scan import Finding, hides, scan_catalog
from mcpmux.profile.model import Profile

ToolState = Literal["first_use", "unchanged", "changed", "new"]
_SHOWN_CUT_NAMES = 10


@dataclass(frozen=True, slots=True)
class ToolIntegrity:
    exposed: str
    server: str
    tool: str
    state: ToolState
    visible: bool
    reason: str | None
    """Why it is hidden, or the warning shown with it; None when there is nothing to say."""
    findings: tuple[Finding, ...]
    diff: str | None
    """Unified diff of the pinned vs the current definition, for a changed tool."""
    sha256: str
    pinned_sha256: str | None


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    tools: Mapping[str, ToolIntegrity]
    pins: PinSet
    """The pins after this pass: write them (`pins.save_pins`) when `pins_changed`."""
    pins_changed: bool

    def hidden(self) -> tuple[str, ...]:
        return tuple(name for name, t in self.tools.items() if not t.visible)

    def warnings(self) -> tuple[str, ...]:
        """One line per visible tool that comes with a warning (for stderr and `mcpmux tools`)."""
        return tuple(f"{t.exposed}: {t.reason}" for t in self.tools.values() if t.visible and t.reason)

    def audit_events(self, profile: str, previous: IntegrityReport | None = None) -> list[dict[str, Any]]:
        """Audit events for what changed since `previous` (every rebuild of the catalog calls this again)."""
        events: list[dict[str, Any]] = []
        for name, t in self.tools.items():
            before = previous.tools.get(name) if previous else None
            same = before is not None and (before.state, before.sha256, before.visible) == (
                t.state,
                t.sha256,
                t.visible,
            )
            if same or (t.state == "unchanged" and t.visible):
                continue
            action = "pinned" if t.state == "first_use" else ("shown" if t.visible else "hidden")
            events.append(
                {
                    "event": "tool_integrity",
                    "profile": profile,
                    "exposed": t.exposed,
                    "server": t.server,
                    "tool": t.tool,
                    "state": t.state,
                    "action": action,
                    "reason": t.reason,
                    "sha256": t.sha256,
                    "pinned_sha256": t.pinned_sha256,
                    "findings": [f"{f.severity} {f.code} in {f.where}" for f in t.findings],
                }
            )
        return events


def profile_arg(profile: Profile) -> str:
    """How to name `profile` on a command line: its name when it sits in a `profiles/` folder, else its path."""
    return profile.name if profile.path.parent.name == "profiles" else str(profile.path)


def apply_integrity(
    profile: Profile, routes: Iterable[RouteLike], pins: PinSet, *, today: date | None = None
) -> IntegrityReport:
    """Decide, for every route, whether the host may see (and call) it; see the module docstring."""
    chosen = list(routes)
    checks = compare(pins, chosen, today)
    findings = scan_catalog(chosen)
    where = f"--profile {profile_arg(profile)}"
    to_pin: list[Pin] = []
    tools: dict[str, ToolIntegrity] = {}
    for check in checks:
        route = check.route
        accept = f"accept with `mcpmux pin update {route.exposed} {where}`"
        state: ToolState = check.status
        visible, reason = True, None
        if check.status == "new" and route.server not in pins.servers:
            state = "first_use"
            to_pin.append(check.current)
        elif check.status == "new":
            visible = profile.on_new_tool != "block"
            if profile.on_new_tool != "allow":
                reason = f"new tool of server '{route.server}' since its tools were pinned: review with "
                reason += f"`mcpmux pin diff {where}`, {accept}"
            if visible:
                to_pin.append(check.current)
        elif check.status == "changed" and check.pin is not None:
            visible = profile.on_tool_change != "block"
            if profile.on_tool_change == "allow":
                to_pin.append(check.current)
            else:
                reason = f"definition changed since pinned on {check.pin.pinned_at}: review with "
                reason += f"`mcpmux pin diff {where}`, {accept}"
        flagged = tuple(findings.get(route.exposed, ()))
        worst = next((f for f in flagged if f.severity == "high"), next((f for f in flagged if hides(f)), None))
        if profile.hide_flagged and worst is not None and visible:
            visible = False
            reason = f"hidden by hide_flagged = true: {worst} (a heuristic; set hide_flagged = false to show it)"
        tools[route.exposed] = ToolIntegrity(
            route.exposed,
            route.server,
            route.tool,
            state,
            visible,
            reason,
            flagged,
            check.diff,
            check.current.sha256,
            None if check.pin is None else check.pin.sha256,
        )
    servers = {r.server for r in chosen} - pins.servers
    new_pins = pins.with_pins(to_pin, servers) if to_pin or servers else pins
    return IntegrityReport(MappingProxyType(tools), new_pins, bool(to_pin or servers))


@dataclass(frozen=True, slots=True)
class CutReport:
    """What `max_tools` left out of the listing."""

    limit: int
    total: int
    cut: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.cut[:_SHOWN_CUT_NAMES]) + (", …" if len(self.cut) > _SHOWN_CUT_NAMES else "")
        return (
            f"max_tools = {self.limit}: listing {self.total - len(self.cut)} of {self.total} tools; "
            f"not listed ({len(self.cut)}): {shown}. Raise max_tools, narrow policy.allow, "
            'or set expose = "search" to reach every tool through three meta-tools'
        )


def enforce_max_tools(names: Sequence[str], max_tools: int | None) -> tuple[tuple[str, ...], CutReport | None]:
    """Keep the first `max_tools` names (catalog order: profile server order, then each server's order)."""
    if max_tools is None or len(names) <= max_tools:
        return tuple(names), None
    return tuple(names[:max_tools]), CutReport(max_tools, len(names), tuple(names[max_tools:]))
