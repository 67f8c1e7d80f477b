"""Properties over generated policies: list time and call time agree, and deny always wins."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mcpmux.policy.decide import Policy, ToolFacts
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, RateLimit, TimeWindow

NAMES = ("a__x", "a__y", "b__x", "b__delete")
GLOBS = st.sampled_from(("a__*", "b__*", "*__x", "*", "b__delete", "c__*"))
HOSTS = st.sampled_from((None, "claude-ai", "cursor"))
FACTS = st.sampled_from((None, ToolFacts(), ToolFacts(True, False), ToolFacts(False, True), ToolFacts(False, False)))
START = datetime(2026, 3, 2, tzinfo=UTC)

windows = st.builds(TimeWindow, st.integers(0, 1439), st.integers(0, 1439), st.just("w")).filter(
    lambda w: w.start != w.end
)
constraints = st.builds(
    ArgConstraint,
    name=st.sampled_from(("n", "m")),
    maximum=st.none() | st.integers(0, 10),
    enum=st.none() | st.just((1, 2)),
    required=st.booleans(),
)


@st.composite
def rules(draw: st.DrawFn, index: int) -> PolicyRule:
    effect = draw(st.sampled_from(("allow", "deny")))
    return PolicyRule(
        index=index,
        tools=tuple(draw(st.lists(GLOBS, min_size=1, max_size=2))),
        effect=effect,
        hosts=draw(st.none() | st.just(("claude-ai",))),
        hours=draw(st.none() | windows),
        days=draw(st.none() | st.frozensets(st.integers(0, 6), min_size=1)),
        rate=draw(st.none() | st.just(RateLimit(1, 60.0, "1/minute"))) if effect == "allow" else None,
        args=tuple(draw(st.lists(constraints, max_size=2, unique_by=lambda c: c.name))),
    )


@st.composite
def specs(draw: st.DrawFn) -> PolicySpec:
    count = draw(st.integers(0, 3))
    return PolicySpec(
        default=draw(st.sampled_from(("allow", "deny"))),
        allow=tuple(draw(st.lists(GLOBS, max_size=2))),
        deny=tuple(draw(st.lists(GLOBS, max_size=2))),
        read_only=draw(st.booleans()),
        deny_destructive=draw(st.booleans()),
        rules=tuple(draw(rules(i)) for i in range(count)),
    )


calls = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.none() | st.dictionaries(st.sampled_from(("n", "m")), st.integers(0, 12), max_size=2),
        HOSTS,
        FACTS,
        st.integers(0, 7 * 24 * 60),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(specs(), calls)
def test_a_tool_hidden_at_list_time_is_always_refused_at_call_time(spec: PolicySpec, seq: list[Any]) -> None:
    now = [START]
    policy = Policy.from_spec(spec, clock=lambda: now[0])
    for name, arguments, host, facts, minutes in seq:
        now[0] = START + timedelta(minutes=minutes)
        listed = policy.decide(name, tool=facts, host=host)
        call = policy.decide_call(name, arguments, tool=facts, host=host)
        if not listed.allowed:
            assert call.decision == listed
            assert call.arguments is None
        if not call.decision.allowed:
            assert call.arguments is None


@settings(max_examples=150, deadline=None)
@given(specs(), calls)
def test_a_matching_deny_glob_always_denies(spec: PolicySpec, seq: list[Any]) -> None:
    policy = Policy.from_spec(spec, clock=lambda: START)
    for name, arguments, host, facts, _ in seq:
        if any(fnmatch.fnmatchcase(name, g) for g in spec.deny):
            assert not policy.decide(name, tool=facts, host=host).allowed
            assert policy.decide_call(name, arguments, tool=facts, host=host).decision.rule.startswith("policy.deny[")


@settings(max_examples=150, deadline=None)
@given(specs(), calls)
def test_an_unconditional_deny_rule_covering_the_call_always_denies(spec: PolicySpec, seq: list[Any]) -> None:
    policy = Policy.from_spec(spec, clock=lambda: START)
    for name, arguments, host, facts, _ in seq:
        covering = [
            r
            for r in spec.rules
            if r.effect == "deny"
            and not r.args
            and r.hours is None
            and r.days is None
            and any(fnmatch.fnmatchcase(name, g) for g in r.tools)
            and (r.hosts is None or host in r.hosts)
        ]
        if covering:
            assert not policy.decide(name, tool=facts, host=host).allowed
            assert not policy.decide_call(name, arguments, tool=facts, host=host).decision.allowed
