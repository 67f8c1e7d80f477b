"""Policy decisions: pure verdicts over exposed names, each naming the rule that decided it.

Today a profile's policy is allow/deny globs over exposed names (`git__*`,
`*__delete_*`), matched case-sensitively like `fnmatch.fnmatchcase`:

1. any `policy.deny` pattern matches -> denied (deny wins);
2. else any `policy.allow` pattern matches -> allowed;
3. else `policy.default`.

The front asks twice: when listing (to hide tools) and again on every call (a host
may call a hidden name). Both paths ask for the same names over and over, so
decisions are cached per name.

Growth path: rules with argument constraints, time windows, rate limits, host
identity and read-only modes need call-time facts. They will arrive as a frozen
context argument to `decide` (arguments, host, clock), with name-only decisions
still cached and context-dependent rules evaluated after the cached part. Keep
`Decision.rule` pointing at the profile key a person would edit.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass

from mcpmux.profile_model import PolicySpec

_CACHE_LIMIT = 4096
"""Bounds the cache: a host can call arbitrary names, and a few thousand distinct ones is far beyond any catalog."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict for one name: `rule` is where it lives in the profile, `reason` a sentence for the agent."""

    allowed: bool
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Globs:
    """One list of globs, e.g. `policy.deny`: a combined regex for the fast miss, one per pattern to name the hit."""

    key: str
    patterns: tuple[str, ...]
    combined: re.Pattern[str] | None
    each: tuple[re.Pattern[str], ...]

    @classmethod
    def compile(cls, key: str, patterns: tuple[str, ...]) -> _Globs:
        regexes = [fnmatch.translate(p) for p in patterns]
        combined = re.compile("|".join(regexes)) if regexes else None
        return cls(key, patterns, combined, tuple(re.compile(r) for r in regexes))

    def rule_for(self, name: str) -> str | None:
        """`policy.deny[0] "git__*"` for the first pattern matching `name`, or None."""
        if self.combined is None or self.combined.match(name) is None:
            return None
        index = next(i for i, regex in enumerate(self.each) if regex.match(name))
        return f"{self.key}[{index}] {json.dumps(self.patterns[index])}"


class Policy:
    """A profile's policy, compiled once; `decide` is pure apart from its cache."""

    __slots__ = ("_allow", "_cache", "_deny", "spec")

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self._deny = _Globs.compile("policy.deny", spec.deny)
        self._allow = _Globs.compile("policy.allow", spec.allow)
        self._cache: dict[str, Decision] = {}

    @classmethod
    def from_spec(cls, spec: PolicySpec) -> Policy:
        return cls(spec)

    def decide(self, exposed_name: str) -> Decision:
        """Whether the host may see and call `exposed_name`, and which rule says so.

        Call-time facts (arguments, host identity, time) will extend this signature;
        see the module docstring.
        """
        cached = self._cache.get(exposed_name)
        if cached is not None:
            return cached
        decision = self._decide(exposed_name)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[exposed_name] = decision
        return decision

    def _decide(self, name: str) -> Decision:
        if (rule := self._deny.rule_for(name)) is not None:
            return Decision(False, rule, f"denied by {rule}")
        if (rule := self._allow.rule_for(name)) is not None:
            return Decision(True, rule, f"allowed by {rule}")
        rule = f"policy.default = {json.dumps(self.spec.default)}"
        if self.spec.default == "allow":
            return Decision(True, rule, f"allowed by {rule} (no policy.deny pattern matches)")
        return Decision(False, rule, f"denied by {rule} (no policy.allow pattern matches)")
