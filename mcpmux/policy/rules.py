"""One `[[policy.rules]]` table, compiled: what it covers (tools, hosts) and its call-time conditions.

Time windows are read in the rule's timezone: `days` is the weekday there at the
moment of the call, `hours` the time of day there (start inclusive, end exclusive; a
window whose end is before its start wraps past midnight, and `days` still means the
day the call happens on). Rate limits are sliding windows (a log of the last `count`
call times per tool and rule), so no burst at a window edge exceeds the limit.
"""

from __future__ import annotations

import fnmatch
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from mcpmux.policy.constraints import ArgCheck
from mcpmux.profile.model import DAY_NAMES, PolicyRule, RateLimit

Failure = tuple[str, str]
"""(profile key of the condition, sentence for the agent)."""


def compile_globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching a whole name against any of the globs (case-sensitive, like fnmatchcase)."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: PolicyRule
    key: str
    """`policy.rules[0]`."""
    tools: re.Pattern[str] | None
    hosts: re.Pattern[str] | None
    zone: tzinfo | None
    """Only set when the rule has `hours` or `days`."""
    checks: tuple[ArgCheck, ...]
    fixed: tuple[tuple[str, object], ...]

    @classmethod
    def compile(cls, rule: PolicyRule) -> CompiledRule:
        key = f"policy.rules[{rule.index}]"
        timed = rule.hours is not None or rule.days is not None
        return cls(
            rule,
            key,
            compile_globs(rule.tools),
            None if rule.hosts is None else compile_globs(rule.hosts),
            ZoneInfo(rule.timezone) if timed else None,
            tuple(ArgCheck.compile(key, a) for a in rule.args),
            tuple((a.name, a.fixed) for a in rule.args if a.fixed is not None),
        )

    @property
    def conditional(self) -> bool:
        """Whether the rule depends on the call (time, arguments): such a deny rule is decided at call time only."""
        return self.zone is not None or bool(self.checks)

    def covers_tool(self, exposed: str) -> bool:
        return self.tools is not None and self.tools.match(exposed) is not None

    def covers_any(self, names: tuple[str, ...]) -> bool:
        """Whether `tools` matches one of a tool's names (exposed, unshortened, server__tool)."""
        tools = self.tools
        return tools is not None and any(tools.match(n) is not None for n in names)

    def covers_host(self, host: str | None) -> bool:
        # A host that did not say its name cannot be told apart from one a deny rule names, so deny rules
        # naming hosts cover it (fail closed) and allow rules naming hosts never do.
        if self.hosts is None:
            return self.rule.hosts is None
        if host is None:
            return self.rule.effect == "deny"
        return self.hosts.match(host) is not None

    def time_failure(self, now: datetime) -> Failure | None:
        if self.zone is None:
            return None
        local = now.astimezone(self.zone)
        rule = self.rule
        if rule.days is not None and local.weekday() not in rule.days:
            stamp = f"{DAY_NAMES[local.weekday()]} {local:%H:%M} {rule.timezone}"
            days = ", ".join(DAY_NAMES[d] for d in sorted(rule.days))
            return f"{self.key}.days", f"it is {stamp}, outside days {days}"
        if rule.hours is not None:
            minute = local.hour * 60 + local.minute
            start, end = rule.hours.start, rule.hours.end
            inside = start <= minute < end if start < end else (minute >= start or minute < end)
            if not inside:
                stamp = f"{DAY_NAMES[local.weekday()]} {local:%H:%M} {rule.timezone}"
                return f"{self.key}.hours", f"it is {stamp}, outside hours {rule.hours.text}"
        return None

    def arg_failure(self, arguments: object, *, cwd: str | None = None) -> Failure | None:
        """For an allow rule: the first constraint not surely met (an absent argument passes unless required)."""
        if not self.checks:
            return None
        if not isinstance(arguments, Mapping):
            return f"{self.key}.args", "the call's arguments must be a JSON object"
        for check in self.checks:
            if (failure := check.failure(arguments, cwd)) is not None:  # pyright: ignore[reportUnknownArgumentType]
                return failure
        return None

    def fires(self, arguments: object, now: datetime | None, *, cwd: str | None = None) -> bool:
        """For a deny rule: whether this call is one it refuses (inside its time window, arguments as described).

        No arguments at all means every argument is absent, which no constraint matches; arguments
        that are not an object cannot be read, so they match.
        """
        if now is not None and self.time_failure(now) is not None:
            return False
        if not self.checks:
            return True
        if arguments is None:
            return False
        if not isinstance(arguments, Mapping):
            return True
        return all(check.matches(arguments, cwd) for check in self.checks)  # pyright: ignore[reportUnknownArgumentType]

    def with_fixed(self, arguments: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The arguments to forward: the profile's `fixed` values override whatever the host sent."""
        if not self.fixed:
            return arguments if arguments is None or isinstance(arguments, dict) else dict(arguments)
        return {**(arguments or {}), **dict(self.fixed)}


class RateLimiter:
    """Sliding-window call logs per (rule, tool, host); a call takes a slot only when it is allowed.

    Per host name, so hosts sharing one gateway each have their window, and two sessions of the same
    host share theirs (opening another session does not buy more calls)."""

    __slots__ = ("_logs",)

    def __init__(self) -> None:
        self._logs: dict[tuple[int, str, str | None], deque[float]] = {}

    def take(self, rule: int, tool: str, limit: RateLimit, now: float, host: str | None = None) -> float | None:
        """None when the call may go (and is counted); else the seconds until a slot frees."""
        key = (rule, tool, host)
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque(maxlen=limit.count)
        while log and log[0] <= now - limit.seconds:
            log.popleft()
        if len(log) >= limit.count:
            return log[0] + limit.seconds - now
        log.append(now)
        return None
