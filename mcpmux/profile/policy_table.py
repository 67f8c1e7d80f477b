"""The `[policy]` table → a frozen `PolicySpec`; each problem has a key path like `policy.rules[0].args.x.pattern`.

Called by profile.py with its checker (see `Checker`): problems are keyed like
`policy.rules[1].rate`, so the line index can point at the second `[[policy.rules]]`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcpmux.errors import Problem
from mcpmux.profile.model import (
    DAY_NAMES,
    ArgConstraint,
    PolicyRule,
    PolicySpec,
    RateLimit,
    RequestPolicy,
    ResourcePolicy,
    TimeWindow,
)

T = TypeVar("T")
Key = tuple[str, ...]

_POLICY_KEYS = ("default", "allow", "deny", "read_only", "deny_destructive", "rules", "resources", "requests")
_REQUEST_KEYS = ("sampling", "elicitation", "roots")
_RULE_KEYS = (
    "tools",
    "effect",
    "hosts",
    "hours",
    "days",
    "timezone",
    "rate",
    "args",
    "description",
    "max_output_bytes",
)
_ARG_KEYS = ("enum", "pattern", "min", "max", "max_length", "within", "equals", "fixed", "required")
_HOURS = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*")
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_UNITS["d"] = _UNITS["day"] = 86400
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ALIASES = {**{d: d for d in DAY_NAMES}, **dict(zip(_FULL_DAYS, DAY_NAMES, strict=True))}


class Checker(Protocol):
    """What `parse_policy` needs of profile.py's `_Checker`."""

    problems: list[Problem]

    @property
    def path(self) -> Path: ...

    def problem(self, key: Key, message: str, fix: str = "") -> None: ...
    def unknown_keys(self, table: Mapping[str, object], known: tuple[str, ...], where: Key) -> None: ...
    def typed(self, table: Mapping[str, object], name: str, where: Key, kind: type[T], what: str) -> T | None: ...
    def string_list(self, table: Mapping[str, object], name: str, where: Key) -> tuple[str, ...]: ...


class _Rule:
    """Problems inside one rule, keyed `policy.rules[N].…`."""

    def __init__(self, c: Checker, index: int) -> None:
        self.c, self.index = c, index

    def problem(self, key: Key, message: str, fix: str = "") -> None:
        self.c.problem(("policy", f"rules[{self.index}]", *key), message, fix)

    def unknown(self, table: Mapping[str, object], known: tuple[str, ...], where: Key) -> None:
        for name in table:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                self.problem((*where, name), f"unknown key '{name}'", fix)

    def strings(self, value: object, key: Key, fix: str) -> tuple[str, ...] | None:
        items = cast(list[object], value) if isinstance(value, list) else None
        if items is None or not items or not all(isinstance(i, str) and i for i in items):
            self.problem(key, "must be a non-empty array of non-empty strings", fix)
            return None
        return tuple(cast(list[str], items))


def parse_policy(c: Checker, table: Mapping[str, object]) -> PolicySpec:
    """Validate `[policy]`; problems go to `c`, and what is valid still parses (so all problems show at once)."""
    where: Key = ("policy",)
    c.unknown_keys(table, _POLICY_KEYS, where)
    default = c.typed(table, "default", where, str, "a string")
    if default is not None and default not in ("allow", "deny"):
        c.problem((*where, "default"), f"must be 'allow' or 'deny', not '{default}'", 'write default = "deny"')
    globs: dict[str, tuple[str, ...]] = {}
    for key in ("allow", "deny"):
        globs[key] = c.string_list(table, key, where)
        if any(not g for g in globs[key]):
            c.problem((*where, key), "an empty pattern matches nothing", "remove it, or write a glob like 'git__*'")
    rules_raw = table.get("rules", [])
    rules: list[PolicyRule] = []
    if not isinstance(rules_raw, list):
        c.problem((*where, "rules"), "must be an array of tables", "write each rule as a [[policy.rules]] table")
    else:
        for index, raw in enumerate(cast(list[object], rules_raw)):
            if (rule := _parse_rule(_Rule(c, index), raw)) is not None:
                rules.append(rule)
    return PolicySpec(
        default="deny" if default == "deny" else "allow",
        allow=globs["allow"],
        deny=globs["deny"],
        read_only=c.typed(table, "read_only", where, bool, "true or false") is True,
        deny_destructive=c.typed(table, "deny_destructive", where, bool, "true or false") is True,
        rules=tuple(rules),
        resources=_resources(c, table, where),
        requests=_requests(c, table, where),
    )


def _subtable(c: Checker, table: Mapping[str, object], name: str, where: Key) -> Mapping[str, object]:
    raw = table.get(name, {})
    if not isinstance(raw, dict):
        c.problem((*where, name), "must be a table", f"write it as a [policy.{name}] table")
        return {}
    return cast(dict[str, object], raw)


def _resources(c: Checker, table: Mapping[str, object], where: Key) -> ResourcePolicy:
    sub, at = _subtable(c, table, "resources", where), (*where, "resources")
    c.unknown_keys(sub, ("allow", "deny"), at)
    return ResourcePolicy(allow=c.string_list(sub, "allow", at), deny=c.string_list(sub, "deny", at))


def _requests(c: Checker, table: Mapping[str, object], where: Key) -> RequestPolicy:
    sub, at = _subtable(c, table, "requests", where), (*where, "requests")
    c.unknown_keys(sub, _REQUEST_KEYS, at)
    given = {key: c.string_list(sub, key, at) for key in _REQUEST_KEYS if key in sub}
    return RequestPolicy(**given)


def _parse_rule(r: _Rule, raw: object) -> PolicyRule | None:
    if not isinstance(raw, dict):
        r.problem((), "must be a table", "write it as a [[policy.rules]] table")
        return None
    t = cast(dict[str, object], raw)
    r.unknown(t, _RULE_KEYS, ())
    tools = r.strings(t.get("tools"), ("tools",), 'write tools = ["git__git_log"] (globs over exposed names)')
    effect = t.get("effect")
    if effect not in ("allow", "deny"):
        r.problem(("effect",), f'must be "allow" or "deny", not {_shown(effect)}', 'write effect = "allow"')
    hosts = None if "hosts" not in t else r.strings(t["hosts"], ("hosts",), 'write hosts = ["claude-ai", "cursor*"]')
    hours = _hours(r, t.get("hours"))
    days = _days(r, t.get("days"))
    timezone = _timezone(r, t.get("timezone"), timed=hours is not None or days is not None)
    rate = _rate(r, t.get("rate"))
    description = t.get("description")
    if description is not None and (not isinstance(description, str) or not description):
        r.problem(("description",), "must be a non-empty string", "write the description the host should see")
    limit = t.get("max_output_bytes")
    if limit is not None and (type(limit) is not int or limit <= 0):
        r.problem(("max_output_bytes",), f"must be a positive integer, not {_shown(limit)}", "write e.g. 1000000")
    args = _args(r, t.get("args", {}))
    if effect == "deny":
        if rate is not None:
            r.problem(
                ("rate",), "a rate limits allowed calls; a deny rule has none", 'remove it, or use effect = "allow"'
            )
        for arg in args:
            if arg.fixed is not None:
                r.problem(("args", arg.name, "fixed"), "a deny rule forwards nothing", "move it to an allow rule")
    if tools is None or effect not in ("allow", "deny"):
        return None
    return PolicyRule(
        index=r.index,
        tools=tools,
        effect=effect,
        hosts=hosts,
        hours=hours,
        days=days,
        timezone=timezone,
        rate=rate,
        args=args,
        description=description if isinstance(description, str) and description else None,
        max_output_bytes=limit if type(limit) is int and limit > 0 else None,
    )


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(value)


def _hours(r: _Rule, value: object) -> TimeWindow | None:
    if value is None:
        return None
    m = _HOURS.fullmatch(value) if isinstance(value, str) else None
    fix = 'write hours = "06:00-18:00" (24-hour clock; "22:00-06:00" wraps midnight)'
    if m is None:
        r.problem(("hours",), f'must be a window like "06:00-18:00", not {_shown(value)}', fix)
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 > 0):
        r.problem(("hours",), f"{value!r} is not a time of day", fix)
        return None
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        r.problem(("hours",), f"{value!r} is empty (start = end)", "for the whole day, remove hours")
        return None
    return TimeWindow(start, end, str(value).strip())


def _days(r: _Rule, value: object) -> frozenset[int] | None:
    if value is None:
        return None
    items = r.strings(value, ("days",), 'write days = ["mon-fri"] or ["sat", "sun"]')
    if items is None:
        return None
    days: set[int] = set()
    for item in items:
        ends = [_DAY_ALIASES.get(d.strip().lower(), "") for d in item.split("-")]
        if len(ends) > 2 or not all(ends):
            r.problem(("days",), f"{item!r} is not a day or a range of days", "use mon, tue, … sun, or mon-fri")
            continue
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        days.update(d % 7 for d in range(first, last + (1 if last >= first else 8)))
    return frozenset(days) if days else None


def _timezone(r: _Rule, value: object, *, timed: bool) -> str:
    if value is None:
        return "UTC"
    fix = 'write an IANA name like "Europe/Paris", or "UTC"'
    if not isinstance(value, str):
        r.problem(("timezone",), f"must be a string, not {_shown(value)}", fix)
        return "UTC"
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        r.problem(("timezone",), f"unknown timezone {value!r}", fix)
        return "UTC"
    if not timed:
        r.problem(("timezone",), "applies only to hours and days, and this rule has neither", "add hours, or remove it")
    return value


def _rate(r: _Rule, value: object) -> RateLimit | None:
    if value is None:
        return None
    m = _RATE.fullmatch(value) if isinstance(value, str) else None
    unit = m.group(2).removesuffix("s") if m and m.group(2) != "s" else (m.group(2) if m else "")
    if m is None or unit not in _UNITS or int(m.group(1)) < 1:
        fix = 'write rate = "30/minute" (per second, minute, hour or day)'
        r.problem(("rate",), f'must be a count per unit like "30/minute", not {_shown(value)}', fix)
        return None
    return RateLimit(int(m.group(1)), float(_UNITS[unit]), str(value).strip())


def _args(r: _Rule, value: object) -> tuple[ArgConstraint, ...]:
    if not isinstance(value, dict):
        r.problem(("args",), "must be a table of argument = { constraint = … }", "write [policy.rules.args]")
        return ()
    result: list[ArgConstraint] = []
    for name, raw in cast(dict[str, object], value).items():
        if not isinstance(raw, dict):
            fix = f"write {name} = {{ max = 100 }} (constraints: {', '.join(_ARG_KEYS)})"
            r.problem(("args", name), "must be a table of constraints", fix)
            continue
        if (arg := _arg(r, name, cast(dict[str, object], raw))) is not None:
            result.append(arg)
    return tuple(result)


def _arg(r: _Rule, name: str, t: dict[str, object]) -> ArgConstraint | None:
    where: Key = ("args", name)
    r.unknown(t, _ARG_KEYS, where)
    bad = len(r.c.problems)
    if not t:
        r.problem(where, "has no constraint", f"add one of {', '.join(_ARG_KEYS)}, or remove it")
    enum = t.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum or not _json_like(cast(object, enum))):
        r.problem((*where, "enum"), "must be a non-empty array of allowed values", 'write enum = ["read", "list"]')
    pattern = t.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        r.problem((*where, "pattern"), f"must be a string, not {_shown(pattern)}", 'write pattern = "^(main|dev)$"')
    elif pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            r.problem((*where, "pattern"), f"does not compile: {exc}", "fix the regex (Python syntax, full match)")
    bounds: dict[str, float] = {}
    for key in ("min", "max"):
        v = t.get(key)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool)):
            r.problem((*where, key), f"must be a number, not {_shown(v)}", f"write {key} = 100")
        elif v is not None:
            bounds[key] = v
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        r.problem((*where, "min"), f"min {bounds['min']} is above max {bounds['max']}", "swap them")
    max_length = t.get("max_length")
    if max_length is not None and (type(max_length) is not int or max_length < 0):
        r.problem((*where, "max_length"), f"must be a non-negative integer, not {_shown(max_length)}", "write 1000")
    within = None
    if "within" in t:
        within = r.strings(t["within"], (*where, "within"), 'write within = ["~/src", "."] (folders)')
        if within is not None:
            within = tuple(str((r.c.path.parent / Path(p).expanduser()).resolve()) for p in within)
    required = t.get("required")
    if required is not None and not isinstance(required, bool):
        r.problem((*where, "required"), "must be true or false", "write required = true")
    for key in ("equals", "fixed"):
        if key in t and not _json_like(t[key]):
            r.problem((*where, key), "must be a string, number, boolean, array or table", "quote dates and times")
    if "fixed" in t and len(t) > 1:
        r.problem(
            (*where, "fixed"), "a fixed value replaces the argument; other constraints never apply", "remove them"
        )
    if len(r.c.problems) > bad:
        return None
    return ArgConstraint(
        name=name,
        enum=None if enum is None else tuple(cast(list[object], enum)),
        pattern=cast(str | None, pattern),
        minimum=bounds.get("min"),
        maximum=bounds.get("max"),
        max_length=cast(int | None, max_length),
        within=within,
        equals=t.get("equals"),
        fixed=t.get("fixed"),
        required=required is True,
    )


def _json_like(value: object) -> bool:
    if isinstance(value, list):
        return all(_json_like(v) for v in cast(list[object], value))
    if isinstance(value, dict):
        return all(_json_like(v) for v in cast(dict[str, object], value).values())
    return isinstance(value, str | int | float | bool)
