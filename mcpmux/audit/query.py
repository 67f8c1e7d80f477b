"""Queries over the audit log: time bounds, filters, and per-group statistics. Pure over event dicts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from mcpmux.audit.events import ERROR_OUTCOMES, REFUSED_OUTCOMES
from mcpmux.audit.log import utc_timestamp
from mcpmux.timespec import parse_time

GroupBy = Literal["tool", "server", "host"]


def parse_when(text: str, now: datetime | None = None) -> str:
    """A time as the log writes it (`2026-11-25T10:00:00.000Z`), from what a person types (`mcpmux.timespec`).

    Raises ValueError with the accepted forms.
    """
    return utc_timestamp(parse_time(text, now))


def _glob(pattern: str | None, value: Any) -> bool:
    """Case-insensitive glob; a pattern with no wildcard matches the whole value."""
    if pattern is None:
        return True
    return isinstance(value, str) and fnmatchcase(value.lower(), pattern.lower())


def _one_of(choices: Sequence[str], value: Any) -> bool:
    return not choices or value in choices


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a query keeps. Globs are case-insensitive; `since`/`until` are log timestamps."""

    since: str | None = None
    until: str | None = None
    event: str | None = "tool_call"
    tool: str | None = None
    """Matches the exposed name or the downstream's own tool name."""
    server: str | None = None
    host: str | None = None
    outcomes: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()

    def matches(self, e: Mapping[str, Any]) -> bool:
        ts = e.get("ts")
        if self.since is not None and not (isinstance(ts, str) and ts >= self.since):
            return False
        if self.until is not None and not (isinstance(ts, str) and ts < self.until):
            return False
        if self.tool is not None and not (_glob(self.tool, e.get("exposed")) or _glob(self.tool, e.get("tool"))):
            return False
        return (
            _glob(self.event, e.get("event"))
            and _glob(self.server, e.get("server"))
            and _glob(self.host, e.get("host"))
            and _one_of(self.outcomes, e.get("outcome"))
            and _one_of(self.decisions, e.get("decision"))
        )


def select(
    events: Iterable[Mapping[str, Any]], where: EventFilter, limit: int | None = None
) -> list[Mapping[str, Any]]:
    """The matching events, oldest first; with `limit`, only the latest `limit` of them."""
    kept: list[Mapping[str, Any]] = [e for e in events if where.matches(e)]
    return kept[-limit:] if limit else kept


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; None for no values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(slots=True)
class GroupStats:
    """Calls of one tool, server or host. Latency counts only calls that reached a downstream."""

    key: str
    calls: int = 0
    errors: int = 0
    denied: int = 0
    latencies: list[float] = field(default_factory=lambda: list[float]())

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def denial_rate(self) -> float:
        return self.denied / self.calls if self.calls else 0.0

    def latency(self, q: float) -> float | None:
        return percentile(sorted(self.latencies), q)

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "key": self.key,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "denied": self.denied,
            "denial_rate": round(self.denial_rate, 4),
            **{f"p{q}_ms": _round(percentile(ordered, q)) for q in (50, 95, 99)},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


_GROUP_FIELD: dict[GroupBy, str] = {"tool": "exposed", "server": "server", "host": "host"}


def stats(events: Iterable[Mapping[str, Any]], by: GroupBy = "tool") -> list[GroupStats]:
    """Per-group call statistics over `tool_call` events, busiest group first."""
    groups: dict[str, GroupStats] = {}
    name = _GROUP_FIELD[by]
    for e in events:
        if e.get("event") != "tool_call":
            continue
        key = str(e.get(name) or "-")
        group = groups.get(key) or groups.setdefault(key, GroupStats(key))
        group.calls += 1
        outcome = e.get("outcome")
        if outcome in ERROR_OUTCOMES:
            group.errors += 1
        if outcome == "denied" or e.get("decision") == "denied":
            group.denied += 1
        duration = e.get("duration_ms")
        if outcome not in REFUSED_OUTCOMES and isinstance(duration, int | float):
            group.latencies.append(float(duration))
    return sorted(groups.values(), key=lambda g: (-g.calls, g.key))


def total(groups: Iterable[GroupStats]) -> GroupStats:
    """All groups folded into one row."""
    out = GroupStats("all")
    for g in groups:
        out.calls += g.calls
        out.errors += g.errors
        out.denied += g.denied
        out.latencies.extend(g.latencies)
    return out
