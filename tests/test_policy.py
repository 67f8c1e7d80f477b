from __future__ import annotations

from typing import Literal

import pytest

from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import Decision
from mcpmux.profile.model import PolicySpec


def _policy(
    default: Literal["allow", "deny"] = "allow", allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()
) -> Policy:
    return Policy.from_spec(PolicySpec(default=default, allow=allow, deny=deny))


@pytest.mark.parametrize(
    ("spec", "name", "decision"),
    [
        (
            PolicySpec(),
            "git__git_status",
            Decision(
                True,
                'policy.default = "allow"',
                'allowed by policy.default = "allow" (no policy.deny pattern matches)',
            ),
        ),
        (
            PolicySpec(default="deny"),
            "git__git_status",
            Decision(
                False,
                'policy.default = "deny"',
                'denied by policy.default = "deny" (no policy.allow pattern or rule matches)',
            ),
        ),
        (
            PolicySpec(default="deny", allow=("git__*", "time__*")),
            "time__get_current_time",
            Decision(True, 'policy.allow[1] "time__*"', 'allowed by policy.allow[1] "time__*"'),
        ),
        (
            PolicySpec(allow=("git__*",), deny=("git__git_commit", "*__delete_*")),
            "fs__delete_file",
            Decision(False, 'policy.deny[1] "*__delete_*"', 'denied by policy.deny[1] "*__delete_*"'),
        ),
        # deny wins over a matching allow
        (
            PolicySpec(default="deny", allow=("git__*",), deny=("git__git_commit",)),
            "git__git_commit",
            Decision(False, 'policy.deny[0] "git__git_commit"', 'denied by policy.deny[0] "git__git_commit"'),
        ),
        # the first matching pattern is the one named
        (
            PolicySpec(deny=("x", "git__*", "*")),
            "git__git_log",
            Decision(False, 'policy.deny[1] "git__*"', 'denied by policy.deny[1] "git__*"'),
        ),
        # quotes in a pattern are escaped the way the profile would write them
        (
            PolicySpec(deny=('a"b*',)),
            'a"bc',
            Decision(False, r'policy.deny[0] "a\"b*"', r'denied by policy.deny[0] "a\"b*"'),
        ),
    ],
)
def test_a_decision_names_the_rule_that_decided_it(spec: PolicySpec, name: str, decision: Decision) -> None:
    got = Policy.from_spec(spec).decide(name)
    assert (got.allowed, got.rule, got.reason) == (decision.allowed, decision.rule, decision.reason)


def test_a_decision_lists_every_glob_that_matched_deny_first() -> None:
    spec = PolicySpec(allow=("git__*", "*"), deny=("x", "git__*"))
    assert Policy.from_spec(spec).decide("git__log").matched == (
        'policy.deny[1] "git__*"',
        'policy.allow[0] "git__*"',
        'policy.allow[1] "*"',
    )


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("git__*", "git__git_status", True),
        ("git__*", "GIT__git_status", False),
        ("*__delete_*", "fs__delete_file", True),
        ("*__delete_*", "fs__undelete_file", False),
        ("time__get_?urrent_time", "time__get_current_time", True),
        ("[ab]__*", "b__x", True),
        ("[!ab]__*", "b__x", False),
        ("git__git_status", "git__git_status_extra", False),
        ("a.b", "aXb", False),
        ("*", "", True),
    ],
)
def test_globs_match_whole_names_case_sensitively(pattern: str, name: str, matches: bool) -> None:
    assert _policy(default="allow", deny=(pattern,)).decide(name).allowed is not matches
    assert _policy(default="deny", allow=(pattern,)).decide(name).allowed is matches


@pytest.mark.parametrize(
    ("default", "allow", "deny", "allowed", "denied"),
    [
        ("deny", ("git__*",), (), ["git__a", "git__b"], ["time__now", "gitx__a"]),
        ("allow", (), ("*__write*", "*__delete*"), ["fs__read"], ["fs__write_file", "db__delete"]),
        ("allow", ("*",), ("*",), [], ["anything"]),
        ("deny", (), (), [], ["anything"]),
    ],
)
def test_deny_wins_then_allow_then_default(
    default: Literal["allow", "deny"],
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    allowed: list[str],
    denied: list[str],
) -> None:
    policy = _policy(default, allow, deny)
    assert [n for n in allowed + denied if policy.decide(n).allowed] == allowed


def test_a_repeated_decision_comes_from_the_cache() -> None:
    policy = _policy(default="deny", allow=("git__*",))
    first = policy.decide("git__git_status")
    assert policy.decide("git__git_status") is first


def test_decisions_stay_correct_for_more_distinct_names_than_the_cache_holds() -> None:
    policy = _policy(default="deny", allow=("n__*",))
    names = [f"n__{i}" for i in range(10_000)] + [f"m__{i}" for i in range(10_000)]
    assert [policy.decide(n).allowed for n in names] == [True] * 10_000 + [False] * 10_000
