"""Policy decisions: pure verdicts over tools and calls, each naming the rule that decided it.

Globs and rules match a tool by every name it has (`ToolFacts.names`): the exposed name,
and the names it would have without shortening, hashing or an alias, so renaming never
lifts a deny. A name two tools share (a collision) still matches both for deny globs and
deny rules, but grants neither: allow globs and allow rules match a tool only by names
that are its alone, and a tool that an allow rule covers only through a shared name is
denied (the rule cannot tell which tool it meant).

Two questions, answered the same way (README "Policy" is the user's version):

`decide(exposed, tool=, host=)` — list time: may this host see and call this tool at all?
1. a `policy.deny` glob matches -> denied (deny wins, over everything below);
2. `read_only = true` and the tool is not annotated `readOnlyHint: true` -> denied;
3. `deny_destructive = true` and the tool is presumed destructive -> denied. Per the MCP
   spec an unannotated tool is presumed destructive and not read-only, so both modes
   hide unannotated tools; a tool annotated read-only is never destructive;
4. a deny rule covering the tool and host, without time or argument conditions -> denied;
5. an allow rule covers the tool and host -> allowed by that rule (its conditions are
   checked at call time: rules, not globs or `default`, then govern the tool); one that
   covers it only through a shared name -> denied;
6. a `policy.allow` glob matches -> allowed; else `policy.default`.

`decide_call(exposed, arguments, tool=, host=, cwd=)` — call time: the list-time verdict first
(a hidden tool is never callable), then every covering deny rule whose time window and
arguments match refuses the call; then, if allow rules cover the tool, the call needs
one of them whose every condition holds (days, hours, arguments, then rate: a slot is
taken only by a call that is otherwise allowed). A refusal names the first condition
that failed. The allowing rule's `fixed` arguments are forced into what is forwarded.
Arguments fail closed (constraints.py): an allow rule needs each constraint surely met,
a deny rule refuses unless one is surely unmet. `cwd` is the downstream's working
directory, against which `within` resolves relative paths (None: mcpmux's own).

Both are cached per name (and host and annotations), so a call costs a dict lookup plus
its rule's own conditions, whatever the size of the catalog.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mcp_types as types

from mcpmux.policy.constraints import show
from mcpmux.policy.rules import CompiledRule, RateLimiter, compile_globs
from mcpmux.policy.verdict import UNANNOTATED, CallDecision, Decision, ToolFacts
from mcpmux.profile.model import PolicySpec

_CACHE_LIMIT = 4096
"""Bounds each cache: a host can call arbitrary names, and a few thousand distinct ones is far beyond any catalog."""


@dataclass(frozen=True, slots=True)
class _Globs:
    """One list of globs, e.g. `policy.deny`: a combined regex for the fast miss, one per pattern to name the hits."""

    key: str
    patterns: tuple[str, ...]
    combined: re.Pattern[str] | None
    each: tuple[re.Pattern[str] | None, ...]

    @classmethod
    def compile(cls, key: str, patterns: tuple[str, ...]) -> _Globs:
        return cls(key, patterns, compile_globs(patterns), tuple(compile_globs((p,)) for p in patterns))

    def hits(self, names: tuple[str, ...]) -> list[str]:
        """`policy.deny[0] "git__*"` for every pattern matching one of `names`, first first."""
        combined = self.combined
        if combined is None or not any(combined.match(n) for n in names):
            return []
        return [
            f"{self.key}[{i}] {json.dumps(self.patterns[i])}"
            for i, rx in enumerate(self.each)
            if rx and any(rx.match(n) for n in names)
        ]


@dataclass(frozen=True, slots=True)
class _Scope:
    """The rules covering one (tool, host), split the way `decide_call` walks them."""

    deny: tuple[CompiledRule, ...]
    allow: tuple[CompiledRule, ...]
    ambiguous: tuple[CompiledRule, ...]
    """Allow rules covering the tool only through a name it shares (empty when an allow rule covers it by its own)."""
    matched: tuple[str, ...]
    allowed: tuple[Decision, ...]
    """One ready-made allowed Decision per allow rule: the hot path allocates none."""
    timed: bool
    """Whether any of the rules has hours or days (else the clock is not read)."""


class Policy:
    """A profile's policy, compiled once; decisions are pure apart from their caches and the rate logs."""

    __slots__ = ("_allow", "_clock", "_deny", "_list_cache", "_monotonic", "_rates", "_rules", "_scopes", "spec")

    def __init__(self, spec: PolicySpec, *, clock: Callable[[], datetime] | None = None) -> None:
        self.spec = spec
        self._deny = _Globs.compile("policy.deny", spec.deny)
        self._allow = _Globs.compile("policy.allow", spec.allow)
        self._rules = tuple(CompiledRule.compile(r) for r in spec.rules)
        self._clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # Rate windows follow an injected clock (tests, `policy explain --at`), else the monotonic one.
        self._monotonic: Callable[[], float] = (lambda: self._now().timestamp()) if clock else time.monotonic
        self._rates = RateLimiter()
        self._scopes: dict[tuple[str, str | None, tuple[str, ...], tuple[str, ...]], _Scope] = {}
        self._list_cache: dict[tuple[str, str | None, ToolFacts], tuple[Decision, _Scope]] = {}
        """(exposed, host, facts) -> the list-time decision and the rules covering the tool: one lookup per call."""

    @classmethod
    def from_spec(cls, spec: PolicySpec, *, clock: Callable[[], datetime] | None = None) -> Policy:
        return cls(spec, clock=clock)

    # ---- list time ---------------------------------------------------------------------------------------------
    def decide(self, exposed: str, *, tool: ToolFacts | None = None, host: str | None = None) -> Decision:
        """Whether `host` may see and call `exposed` at all; arguments, time and rate are call-time matters."""
        key = (exposed, host, tool or UNANNOTATED)
        return (self._list_cache.get(key) or self._remember(key))[0]

    def _remember(self, key: tuple[str, str | None, ToolFacts]) -> tuple[Decision, _Scope]:
        if len(self._list_cache) >= _CACHE_LIMIT:
            self._list_cache.clear()
        name, host, facts = key
        scope = self._scope(name, host, facts)
        listed = self._list_cache[key] = (self._decide(name, host, facts, scope), scope)
        return listed

    def _decide(self, name: str, host: str | None, facts: ToolFacts, scope: _Scope) -> Decision:
        matched = scope.matched
        if deny := self._deny.hits((name, *facts.names, *facts.shared)):
            return Decision(False, deny[0], f"denied by {deny[0]}", matched)
        if self.spec.read_only and facts.read_only is not True:
            why = "is not annotated readOnlyHint: true" if facts.annotated else "has no annotations"
            return Decision(False, "policy.read_only", f"denied by policy.read_only = true (the tool {why})", matched)
        if self.spec.deny_destructive and facts.presumed_destructive:
            why = "is annotated destructiveHint: true" if facts.destructive else "is not annotated as non-destructive"
            reason = f"denied by policy.deny_destructive = true (the tool {why}; the MCP spec presumes destructive)"
            return Decision(False, "policy.deny_destructive", reason, matched)
        for rule in scope.deny:
            if not rule.conditional:
                return Decision(False, rule.key, f"denied by {rule.key}", matched)
        if scope.ambiguous:
            key, shared = scope.ambiguous[0].key, ", ".join(facts.shared)
            reason = f"denied by {key}: it names this tool only by {shared}, which another tool has too"
            return Decision(False, key, f"{reason}; name it '{name}' in the rule's tools", matched)
        if scope.allow:
            return scope.allowed[0]
        if allow := self._allow.hits((name, *facts.names)):
            return Decision(True, allow[0], f"allowed by {allow[0]}", matched)
        rule = f"policy.default = {json.dumps(self.spec.default)}"
        if self.spec.default == "allow":
            return Decision(True, rule, f"allowed by {rule} (no policy.deny pattern matches)", matched)
        return Decision(False, rule, f"denied by {rule} (no policy.allow pattern or rule matches)", matched)

    def _scope(self, name: str, host: str | None, facts: ToolFacts = UNANNOTATED) -> _Scope:
        key = (name, host, facts.names, facts.shared)
        scope = self._scopes.get(key)
        if scope is not None:
            return scope
        own = (name, *facts.names)
        every = (*own, *facts.shared)
        hosted = [r for r in self._rules if r.covers_host(host)]
        deny = tuple(r for r in hosted if r.rule.effect == "deny" and r.covers_any(every))
        allow = tuple(r for r in hosted if r.rule.effect == "allow" and r.covers_any(own))
        shared = facts.shared
        ambiguous = (
            () if allow or not shared else tuple(r for r in hosted if r.rule.effect == "allow" and r.covers_any(shared))
        )
        rules = sorted((*deny, *allow, *ambiguous), key=lambda r: r.rule.index)
        matched = (*self._deny.hits(every), *self._allow.hits(own), *(r.key for r in rules))
        allowed = tuple(Decision(True, r.key, f"allowed by {r.key}", matched) for r in allow)
        scope = _Scope(deny, allow, ambiguous, matched, allowed, any(r.zone is not None for r in rules))
        if len(self._scopes) >= _CACHE_LIMIT:
            self._scopes.clear()
        self._scopes[key] = scope
        return scope

    # ---- call time ---------------------------------------------------------------------------------------------
    def decide_call(
        self,
        exposed: str,
        arguments: Mapping[str, Any] | None,
        *,
        tool: ToolFacts | None = None,
        host: str | None = None,
        cwd: str | None = None,
    ) -> CallDecision:
        """This call, with these arguments, now: allowed (and what to forward) or denied naming the condition.

        `cwd`: the downstream's working directory, for relative paths in `within` (None: mcpmux's own).
        """
        key = (exposed, host, tool or UNANNOTATED)
        listed, scope = self._list_cache.get(key) or self._remember(key)
        if not listed.allowed:
            return CallDecision(listed, None)
        if not scope.deny and not scope.allow:
            return CallDecision(
                listed, arguments if arguments is None or isinstance(arguments, dict) else dict(arguments)
            )
        now = self._now() if scope.timed else None
        for rule in scope.deny:
            if rule.fires(arguments, now, cwd=cwd):
                return CallDecision(Decision(False, rule.key, f"denied by {rule.key}", scope.matched), None)
        if not scope.allow:
            return CallDecision(
                listed, arguments if arguments is None or isinstance(arguments, dict) else dict(arguments)
            )
        first: tuple[str, str] | None = None
        for rule, allowed in zip(scope.allow, scope.allowed, strict=True):
            failure = (rule.time_failure(now) if now is not None else None) or rule.arg_failure(
                arguments if arguments is not None else {}, cwd=cwd
            )
            if failure is None and (limit := rule.rule.rate) is not None:
                wait = self._rates.take(rule.rule.index, exposed, limit, self._monotonic(), host)
                if wait is not None:
                    failure = (
                        f"{rule.key}.rate",
                        f"over the rate {limit.text} for this tool; retry in {wait:.1f} s",
                    )
            if failure is None:
                return CallDecision(allowed, rule.with_fixed(arguments))
            first = first or failure
        assert first is not None  # scope.allow is not empty
        return CallDecision(Decision(False, first[0], f"{first[1]} ({first[0]})", scope.matched), None)

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    # ---- what the host sees ------------------------------------------------------------------------------------
    def rewrite_tool(
        self, exposed: str, tool: types.Tool, *, host: str | None = None, facts: ToolFacts | None = None
    ) -> types.Tool:
        """The definition the host sees: the first covering allow rule's description, fixed params gone, enums narrowed.

        Returns `tool` itself when nothing changes.
        """
        scope = self._scope(exposed, host, facts or UNANNOTATED)
        update: dict[str, Any] = {}
        description = next((r.rule.description for r in scope.allow if r.rule.description is not None), None)
        if description is None:
            description = next((r.rule.description for r in scope.deny if r.rule.description is not None), None)
        if description is not None and description != tool.description:
            update["description"] = description
        if scope.allow and (schema := _narrow_schema(scope.allow[0], tool.input_schema)) is not tool.input_schema:
            update["input_schema"] = schema
        return tool.model_copy(update=update) if update else tool

    def max_output_bytes(self, exposed: str, *, host: str | None = None, tool: ToolFacts | None = None) -> int | None:
        """The first covering rule's `max_output_bytes` (the relay enforces it), or None."""
        scope = self._scope(exposed, host, tool or UNANNOTATED)
        return next((r.rule.max_output_bytes for r in (*scope.allow, *scope.deny) if r.rule.max_output_bytes), None)

    def unused_rules(self, names: Iterable[str]) -> list[str]:
        """Rules whose `tools` match none of `names`: with the servers up, a likely typo in the profile."""
        listed = list(names)
        return [f"{r.key}.tools {show(list(r.rule.tools))}" for r in self._rules if not any(map(r.covers_tool, listed))]


def _narrow_schema(rule: CompiledRule, schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    if not isinstance(props, dict) or not rule.checks:
        return schema
    properties: dict[str, Any] = dict(props)  # pyright: ignore[reportUnknownArgumentType]
    changed = False
    for check in rule.checks:
        name = check.spec.name
        if check.spec.fixed is not None:
            changed |= properties.pop(name, None) is not None
        elif isinstance(prop := properties.get(name), dict):
            narrowed = check.narrow(prop)  # pyright: ignore[reportUnknownArgumentType]
            changed |= narrowed is not prop
            properties[name] = narrowed
    required = schema.get("required")
    fixed = {name for name, _ in rule.fixed}
    if isinstance(required, list) and fixed & set(required):  # pyright: ignore[reportUnknownArgumentType]
        return {**schema, "properties": properties, "required": [r for r in required if r not in fixed]}  # pyright: ignore[reportUnknownVariableType]
    return {**schema, "properties": properties} if changed else schema
