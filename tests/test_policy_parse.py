"""Parsing `[policy]`: the full language into frozen rules, and every mistake with its key path, line and fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mcpmux.errors import ProfileError
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, RateLimit, TimeWindow

WriteProfile = Callable[..., Path]

FINANCE = """\
[policy]
default = "deny"
read_only = true
deny_destructive = true

[[policy.rules]]
tools = ["db__query"]
effect = "allow"
hosts = ["finance-agent*"]
hours = "06:00-18:00"
timezone = "UTC"
days = ["mon-fri"]
rate = "30/minute"
description = "Query the read replica (fiscal-year data only)."
max_output_bytes = 100000
[policy.rules.args]
database = { fixed = "replica" }
fiscal_year = { equals = 2025 }
sql = { pattern = "(?is)\\\\s*select\\\\b.*", max_length = 2000 }
limit = { min = 1, max = 1000 }
repo = { within = ["sub", "/abs"], required = true }
mode = { enum = ["read", "list"] }

[[policy.rules]]
tools = ["db__*"]
effect = "deny"
days = ["sat", "Sunday"]
timezone = "Europe/Paris"
"""


def test_the_full_policy_language_parses_into_frozen_rules(write_profile: WriteProfile) -> None:
    path = write_profile(FINANCE)
    spec = load_profile(path).policy
    first = PolicyRule(
        index=0,
        tools=("db__query",),
        effect="allow",
        hosts=("finance-agent*",),
        hours=TimeWindow(360, 1080, "06:00-18:00"),
        days=frozenset(range(5)),
        timezone="UTC",
        rate=RateLimit(30, 60.0, "30/minute"),
        args=(
            ArgConstraint("database", fixed="replica"),
            ArgConstraint("fiscal_year", equals=2025),
            ArgConstraint("sql", pattern="(?is)\\s*select\\b.*", max_length=2000),
            ArgConstraint("limit", minimum=1, maximum=1000),
            ArgConstraint("repo", within=(str(path.parent.resolve() / "sub"), "/abs"), required=True),
            ArgConstraint("mode", enum=("read", "list")),
        ),
        description="Query the read replica (fiscal-year data only).",
        max_output_bytes=100000,
    )
    second = PolicyRule(index=1, tools=("db__*",), effect="deny", days=frozenset({5, 6}), timezone="Europe/Paris")
    assert spec == PolicySpec(default="deny", read_only=True, deny_destructive=True, rules=(first, second))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('hours = "22:00-06:00"', TimeWindow(1320, 360, "22:00-06:00")),
        ('hours = "00:00-24:00"', TimeWindow(0, 1440, "00:00-24:00")),
        ('days = ["fri-mon"]', frozenset({4, 5, 6, 0})),
        ('rate = "5/s"', RateLimit(5, 1.0, "5/s")),
        ('rate = "100 / hours"', RateLimit(100, 3600.0, "100 / hours")),
        ('rate = "1/day"', RateLimit(1, 86400.0, "1/day")),
    ],
)
def test_time_windows_days_and_rates_accept_their_documented_forms(
    write_profile: WriteProfile, text: str, expected: object
) -> None:
    rule = load_profile(write_profile(f'[[policy.rules]]\ntools = ["x"]\neffect = "allow"\n{text}\n')).policy.rules[0]
    assert expected in (rule.hours, rule.days, rule.rate)


RULE = '[[policy.rules]]\ntools = ["a__*"]\neffect = "allow"\n'


@pytest.mark.parametrize(
    ("text", "key", "line", "message"),
    [
        ("[policy]\nread_only = 1", "policy.read_only", 2, "must be true or false"),
        ("[policy]\nrules = 3", "policy.rules", 2, "must be an array of tables"),
        ("[policy]\nrulez = []", "policy.rulez", 2, "did you mean 'rules'?"),
        ('[[policy.rules]]\neffect = "allow"', "policy.rules[0].tools", 1, "non-empty array"),
        ('[[policy.rules]]\ntools = ["a"]\neffect = "maybe"', "policy.rules[0].effect", 3, "'maybe'"),
        ('[[policy.rules]]\ntools = ["a"]', "policy.rules[0].effect", 1, "not nothing"),
        (RULE + "tool = 1", "policy.rules[0].tool", 4, "did you mean 'tools'?"),
        (RULE + "hosts = []", "policy.rules[0].hosts", 4, "non-empty array"),
        (RULE + 'hours = "6-18"', "policy.rules[0].hours", 4, "a window like"),
        (RULE + 'hours = "06:00-25:00"', "policy.rules[0].hours", 4, "not a time of day"),
        (RULE + 'hours = "06:00-06:00"', "policy.rules[0].hours", 4, "empty"),
        (RULE + 'days = ["mon-fry"]', "policy.rules[0].days", 4, "not a day"),
        (RULE + 'hours = "06:00-18:00"\ntimezone = "Mars/Base"', "policy.rules[0].timezone", 5, "unknown timezone"),
        (RULE + 'timezone = "UTC"', "policy.rules[0].timezone", 4, "has neither"),
        (RULE + 'rate = "30/fortnight"', "policy.rules[0].rate", 4, "a count per unit"),
        (RULE + 'rate = "0/minute"', "policy.rules[0].rate", 4, "a count per unit"),
        (RULE.replace("allow", "deny") + 'rate = "1/s"', "policy.rules[0].rate", 4, "a deny rule"),
        (RULE + "max_output_bytes = 0", "policy.rules[0].max_output_bytes", 4, "positive integer"),
        (RULE + 'description = ""', "policy.rules[0].description", 4, "non-empty string"),
        (RULE + "args = 3", "policy.rules[0].args", 4, "must be a table"),
        (RULE + "[policy.rules.args]\nb = 3", "policy.rules[0].args.b", 5, "table of constraints"),
        (RULE + "[policy.rules.args]\nb = {}", "policy.rules[0].args.b", 5, "has no constraint"),
        (RULE + "[policy.rules.args]\nb = { maxx = 1 }", "policy.rules[0].args.b.maxx", 5, "did you mean 'max'?"),
        (RULE + '[policy.rules.args]\nb = { pattern = "(" }', "policy.rules[0].args.b.pattern", 5, "does not compile"),
        (RULE + "[policy.rules.args]\nb = { pattern = 1 }", "policy.rules[0].args.b.pattern", 5, "must be a string"),
        (RULE + "[policy.rules.args]\nb = { min = 5, max = 1 }", "policy.rules[0].args.b.min", 5, "above max"),
        (RULE + '[policy.rules.args]\nb = { max = "1" }', "policy.rules[0].args.b.max", 5, "must be a number"),
        (RULE + "[policy.rules.args]\nb = { max_length = -1 }", "policy.rules[0].args.b.max_length", 5, "non-neg"),
        (RULE + "[policy.rules.args]\nb = { enum = [] }", "policy.rules[0].args.b.enum", 5, "non-empty array"),
        (RULE + '[policy.rules.args]\nb = { within = "." }', "policy.rules[0].args.b.within", 5, "array"),
        (RULE + "[policy.rules.args]\nb = { required = 1 }", "policy.rules[0].args.b.required", 5, "true or false"),
        (RULE + "[policy.rules.args]\nb = { equals = 1979-05-27 }", "policy.rules[0].args.b.equals", 5, "quote"),
        (RULE + "[policy.rules.args]\nb = { fixed = 1, max = 2 }", "policy.rules[0].args.b.fixed", 5, "never apply"),
        (
            RULE.replace("allow", "deny") + "[policy.rules.args]\nb = { fixed = 1 }",
            "policy.rules[0].args.b.fixed",
            5,
            "forwards nothing",
        ),
        # the second rule's problems point at the second rule's lines
        (RULE + RULE + 'rate = "x"', "policy.rules[1].rate", 7, "a count per unit"),
        (RULE + RULE + "[policy.rules.args]\nb.maxx = 1", "policy.rules[1].args.b.maxx", 8, "unknown key"),
    ],
)
def test_each_policy_mistake_is_reported_with_its_key_path_line_and_fix(
    write_profile: WriteProfile, text: str, key: str, line: int, message: str
) -> None:
    with pytest.raises(ProfileError) as raised:
        load_profile(write_profile(text))
    found = [p for p in raised.value.problems if p.key == key]
    assert found, [str(p) for p in raised.value.problems]
    assert message in str(found[0])
    assert found[0].fix
    assert found[0].line is not None
    assert found[0].line == line, str(found[0])


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (RULE + 'hours = "6-18"', "policy.rules[0].hours", 4),
        (RULE + RULE + 'rate = "x"', "policy.rules[1].rate", 7),
        (RULE + RULE + "[policy.rules.args]\nb = { maxx = 1 }", "policy.rules[1].args.b.maxx", 8),
    ],
)
def test_a_problem_inside_a_rule_points_at_that_rules_line(
    write_profile: WriteProfile, text: str, key: str, line: int
) -> None:
    with pytest.raises(ProfileError) as raised:
        load_profile(write_profile(text))
    assert [p.line for p in raised.value.problems if p.key == key] == [line]


def test_every_policy_problem_is_reported_at_once(write_profile: WriteProfile) -> None:
    text = RULE + 'hours = "x"\nrate = "y"\n[policy.rules.args]\nb = { pattern = "(" }\n' + "[policy]\ndefault = 'x'\n"
    with pytest.raises(ProfileError) as raised:
        load_profile(write_profile(text))
    assert {p.key for p in raised.value.problems} >= {
        "policy.rules[0].hours",
        "policy.rules[0].rate",
        "policy.rules[0].args.b.pattern",
        "policy.default",
    }
