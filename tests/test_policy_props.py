"""Properties over generated policies and values: list time and call time agree, and deny always wins.

Deny wins over every name a tool has, and over every spelling of a value it matches.
"""

from __future__ import annotations

import fnmatch
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import ToolFacts
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, RateLimit, TimeWindow

NAMES = ("a__x", "a__y", "b__x", "b__delete")
GLOBS = st.sampled_from(("a__*", "b__*", "*__x", "*", "b__delete", "c__*"))
HOSTS = st.sampled_from((None, "claude-ai", "cursor"))
ANNOTATIONS = st.sampled_from(((None, None), (True, False), (False, True), (False, False)))
OTHER_NAMES = st.lists(st.sampled_from(("a__x", "b__delete", "c__long_name", "c__x")), max_size=2, unique=True)


def _facts(hints: tuple[bool | None, bool | None], names: list[str], shared: list[str]) -> ToolFacts:
    return ToolFacts(*hints, names=tuple(names), shared=tuple(shared))


FACTS = st.none() | st.builds(_facts, ANNOTATIONS, OTHER_NAMES, OTHER_NAMES)
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


def every_name(name: str, facts: ToolFacts | None) -> tuple[str, ...]:
    return (name, *facts.names, *facts.shared) if facts else (name,)


@settings(max_examples=150, deadline=None)
@given(specs(), calls)
def test_a_deny_glob_matching_any_name_of_the_tool_always_denies(spec: PolicySpec, seq: list[Any]) -> None:
    policy = Policy.from_spec(spec, clock=lambda: START)
    for name, arguments, host, facts, _ in seq:
        if any(fnmatch.fnmatchcase(n, g) for g in spec.deny for n in every_name(name, facts)):
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
            and any(fnmatch.fnmatchcase(n, g) for g in r.tools for n in every_name(name, facts))
            and (r.hosts is None or host in r.hosts)
        ]
        if covering:
            assert not policy.decide(name, tool=facts, host=host).allowed
            assert not policy.decide_call(name, arguments, tool=facts, host=host).decision.allowed


# ---- values: no spelling of a deny-matched value passes -------------------------------------------------------


def number_spellings(n: int | float) -> list[str]:
    """Exact decimal spellings of `n` a server reads as `n`: signs, leading zeros, points, exponents."""
    if isinstance(n, float):
        text = repr(n)
        return [text, f"{text}e0" if "e" not in text else text.replace("e", "E")]
    digits, sign = str(abs(n)), "-" if n < 0 else ""
    spellings = [str(n), f"{n}.0", f"{n}e0", f"{n}000e-3", f"{sign}{digits[0]}.{digits[1:] or '0'}e{len(digits) - 1}"]
    return [*spellings, *((f"+{n}", f"00{n}") if n >= 0 else ())]


@st.composite
def shapes_of(draw: st.DrawFn, n: int | float) -> object:
    """`n` as a host may send it: a number, a numeric string with whitespace, in an array, in a JSON string."""
    text = draw(st.sampled_from(number_spellings(n)))
    spaced = draw(st.sampled_from(("", " ", "\t", "\n "))) + text + draw(st.sampled_from(("", " ", "\r\n")))
    return draw(st.sampled_from((n, float(n), spaced, [n], [0, spaced], f"[{text}]")))


bounds = st.integers(-1000, 1000)
magnitudes = st.integers(0, 10**6) | st.integers(0, 10**30) | st.floats(0, 1e300)


def deny_call(constraint: ArgConstraint, value: object, cwd: str | None = None) -> bool:
    rule = PolicyRule(0, ("s__t",), "deny", args=(constraint,))
    return Policy.from_spec(PolicySpec(rules=(rule,))).decide_call("s__t", {"a": value}, cwd=cwd).decision.allowed


@settings(max_examples=300, deadline=None)
@given(bounds, magnitudes, st.data())
def test_no_spelling_of_an_amount_at_or_above_a_deny_minimum_passes(low: int, above: int | float, data: Any) -> None:
    value = data.draw(shapes_of(low + above))
    assert not deny_call(ArgConstraint("a", minimum=low), value)


@settings(max_examples=300, deadline=None)
@given(bounds, magnitudes, st.data())
def test_no_spelling_of_an_amount_at_or_below_a_deny_maximum_passes(high: int, below: int | float, data: Any) -> None:
    value = data.draw(shapes_of(high - below))
    assert not deny_call(ArgConstraint("a", maximum=high), value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(bounds, st.integers(0, 1000), json_values | st.from_regex(r"\s*[+-]?[0-9]*\.?[0-9]*(e[+-]?[0-9]+)?\s*"))
def test_an_allow_rule_on_numbers_lets_through_only_finite_json_numbers_inside_its_bounds(
    low: int, width: int, value: object
) -> None:
    rule = PolicyRule(0, ("s__t",), "allow", args=(ArgConstraint("a", minimum=low, maximum=low + width),))
    allowed = Policy.from_spec(PolicySpec(rules=(rule,))).decide_call("s__t", {"a": value}).decision.allowed
    if allowed:
        assert type(value) in (int, float)
        assert math.isfinite(cast(float, value))
        assert low <= cast(float, value) <= low + width


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """<t>/secret (denied), <t>/public with a symlink `escape` to <t>/secret; HOME is <t>."""
    for folder in ("public", "secret/key", "elsewhere"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "public" / "escape").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path


@st.composite
def paths_into_secret(draw: st.DrawFn, t: Path) -> tuple[object, str]:
    """(a spelling of a file inside <t>/secret, the server's cwd it is relative to)."""
    rel = "/".join(draw(st.lists(st.sampled_from(("key", "a", "b.txt", ".", "x/..")), max_size=3)))
    tail = f"/{rel}" if rel else ""
    public, secret = str(t / "public"), str(t / "secret")
    spelled, cwd = draw(
        st.sampled_from(
            (
                (f"{secret}{tail}", public),
                (f"{t}/public/escape{tail}", public),  # through a symlink
                (f"escape{tail}", public),
                (f"../secret{tail}", public),
                (f"{t}/public/../secret{tail}", public),
                (f"{secret}/x/..{tail}", public),
                (rel or ".", secret),  # relative to the server's own cwd
                (f"./{rel}", secret),
                (f"~/secret{tail}", public),
                (f"file://{quote(secret)}{tail}", public),
                (f"file://localhost{secret}{tail}", public),
                (f"file:{secret}{tail}", public),
            )
        )
    )
    wrapped = draw(st.sampled_from((spelled, f" {spelled}\n", [spelled], [public, spelled], json.dumps([spelled]))))
    return wrapped, cwd


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_spelling_of_a_path_inside_a_deny_within_passes(vault: Path, data: Any) -> None:
    value, cwd = data.draw(paths_into_secret(vault))
    assert not deny_call(ArgConstraint("a", within=(str(vault / "secret"),)), value, cwd)
