"""Argument constraints fail closed: values judged as servers read them; "cannot tell" refuses for allow and deny.

Each table row is one value against one constraint, through `Policy.decide_call` (no
subprocess): a deny rule must refuse every shape a server could read as matching,
and an allow rule must accept only values it can vouch for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import pytest

from mcpmux.policy.decide import Policy
from mcpmux.policy.readings import decimal_readings, judge_number
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec


def call(effect: str, constraint: dict[str, Any], value: object, *, cwd: str | None = None) -> tuple[bool, str]:
    """(allowed, rule or condition that decided) for one call of `s__t` with argument `a` = `value`."""
    rule = PolicyRule(0, ("s__t",), effect, args=(ArgConstraint("a", **constraint),))  # type: ignore[arg-type]
    decision = Policy.from_spec(PolicySpec(rules=(rule,))).decide_call("s__t", {"a": value}, cwd=cwd).decision
    return decision.allowed, decision.reason


MIN_100 = {"minimum": 100}
MAX_0 = {"maximum": 0}
WRITES = {"enum": ("write", "delete")}
ONE_OR_TWO = {"enum": (1, 2)}
YES = {"equals": True}
YEAR = {"equals": 2025}
TAGS = {"equals": ["a", "b"]}
FILTER = {"equals": {"a": 1}}
MAIN = {"pattern": "^main$"}
SHORT = {"max_length": 3}

DENY_REFUSES = [
    # numbers: as sent, as numeric strings (whitespace, signs, exponents), rounded, beyond doubles
    *((MIN_100, v) for v in (5000, 100, 100.0, "5000", " 5000 ", "+5000", "5e3", " 5E3\n", "5000.0", "1e400")),
    *((MIN_100, v) for v in (99.5, "99.9", 10**30, "9" * 5000, 2**53 + 1)),
    # numbers: what cannot be read as one
    *((MIN_100, v) for v in ("0x1388", "٥٠٠٠", "5_000", "5abc", "", "  ", "Infinity", "NaN", True, None, {"v": 1})),
    *((MIN_100, v) for v in (math.nan, math.inf, -math.inf)),
    # arrays, and arrays inside JSON strings
    *((MIN_100, v) for v in ([5000], [5, 5000], [], "[5000]", " [5, 5000]", [[5000]], [5] * 300)),
    *((MAX_0, v) for v in (0, -1, "-1", "-0", 1e-9, "0.5")),
    # enum and equals on strings: exact, trimmed, case-folded, NFKC, in arrays, type mismatches
    *(
        (WRITES, v)
        for v in ("write", "WRITE", " write", "ｗｒｉｔｅ", "Delete", ["write"], '["read", "write"]', 5, None)
    ),
    *((ONE_OR_TWO, v) for v in (1, 1.0, "1", " 2 ", True, "x", 1.5, [2])),
    *((YES, v) for v in (True, "true", 1, "yes", [True], None)),
    *((YEAR, v) for v in (2025, "2025", 2025.0, "2025.0", "2.025e3", 2024.5)),
    *((TAGS, v) for v in (["a", "b"], ["b", "a"], ["A", "b"], '["a", "b"]', "a", None)),
    *((FILTER, v) for v in ({"a": 1}, {"a": 1, "b": 2}, {"a": "1"}, '{"a": 1}', {})),
    # pattern: as sent, trimmed, in arrays, on what is not a string
    *((MAIN, v) for v in ("main", " main", "main\n", ["main"], '["main"]', ["dev", "main"], 5, None, True)),
    *((SHORT, v) for v in ("ab", [1], "😀😀", 5, None)),
]

DENY_PASSES = [
    *((MIN_100, v) for v in (5, 99, -5, 99.0, "5", " 5 ", "-5e3", "99", [5], [5, 6], "[5]")),
    *((MAX_0, v) for v in (1, "1", 0.5e1)),
    *((WRITES, v) for v in ("read", ["read"], '["read"]', "writer")),
    *((ONE_OR_TWO, v) for v in (3, "3", 0, [3])),
    *((YES, v) for v in (False, [False])),
    *((YEAR, v) for v in (2024, "2024", "2024.0")),
    *((TAGS, v) for v in (["a"], ["a", "c"], '["a"]')),
    *((FILTER, v) for v in ({"a": 2}, {"a": 2, "b": 1})),
    *((MAIN, v) for v in ("dev", ["dev"], "mainline", '["dev"]')),
    *((SHORT, v) for v in ("abcd", [1, 2, 3, 4])),
]


@pytest.mark.parametrize(("constraint", "value"), DENY_REFUSES)
def test_a_deny_rule_refuses_every_value_a_server_may_read_as_matching(constraint: dict[str, Any], value: object):
    allowed, reason = call("deny", constraint, value)
    assert not allowed
    assert reason == "denied by policy.rules[0]"


@pytest.mark.parametrize(("constraint", "value"), DENY_PASSES)
def test_a_deny_rule_lets_through_values_every_reading_puts_outside_it(constraint: dict[str, Any], value: object):
    assert call("deny", constraint, value)[0]


BOUNDED = {"minimum": 1, "maximum": 100}


@pytest.mark.parametrize(
    ("constraint", "value", "refusal"),
    [
        (BOUNDED, 1, None),
        (BOUNDED, 100, None),
        (BOUNDED, 50.5, None),
        (BOUNDED, "50", "must be a number"),  # servers differ on strings: an allow rule vouches for numbers only
        (BOUNDED, True, "must be a number"),
        (BOUNDED, None, "must be a number"),
        (BOUNDED, [50], "must be a number"),
        (BOUNDED, math.nan, "must be a finite number"),
        (BOUNDED, math.inf, "must be a finite number"),
        (BOUNDED, 100.5, "is above the maximum 100"),
        (BOUNDED, 0.5, "is below the minimum 1"),
        (BOUNDED, 10**30, "is above the maximum 100"),
        ({"enum": ("read", "list")}, "read", None),
        ({"enum": ("read", "list")}, "READ", "is not one of"),
        ({"enum": ("read", "list")}, " read", "is not one of"),
        ({"enum": ("read", "list")}, ["read"], "is not one of"),
        ({"enum": (1, 2)}, "1", "is not one of"),
        ({"equals": 2025}, "2025", "must equal 2025"),
        ({"equals": True}, "true", "must equal true"),
        ({"pattern": "^[a-z]+$"}, "abc", None),
        ({"pattern": "^[a-z]+$"}, ["abc"], "must be a string matching pattern"),
        ({"pattern": ".*"}, " x ", None),
        ({"pattern": ".*"}, '["a"]', "also as a server may read it"),
        ({"pattern": "^ [a-z]+$"}, " x", "also as a server may read it"),  # a server that trims reads "x"
        ({"max_length": 3}, "😀", None),
        ({"max_length": 3}, "😀😀", "has 4 UTF-16 code units (as JavaScript counts), over 3"),
        ({"max_length": 3}, "abcd", "has 4 characters, over 3"),
    ],
)
def test_an_allow_rule_accepts_only_values_it_can_vouch_for(
    constraint: dict[str, Any], value: object, refusal: str | None
):
    allowed, reason = call("allow", constraint, value)
    assert allowed is (refusal is None), reason
    if refusal is not None:
        assert refusal in reason


def test_a_numeric_string_is_read_as_its_number_and_as_its_integer_prefix():
    assert decimal_readings(" 5e3 ") == (5000.0, 5.0)
    assert decimal_readings("42") == (42.0, 42, 42.0)
    assert decimal_readings("-.5") == (-0.5, None)
    assert decimal_readings("0x10") is None
    assert decimal_readings(".") is None
    assert judge_number("1e400", lambda n: n > 0, integral=True) is None  # Infinity: cannot tell


# ---- within ------------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """<t>/public, <t>/secret/key, <t>/public/escape -> <t>/secret; HOME is <t>; mcpmux runs in <t>/elsewhere."""
    for folder in ("public", "secret", "elsewhere"):
        (tmp_path / folder).mkdir()
    (tmp_path / "secret" / "key").write_text("k")
    (tmp_path / "public" / "escape").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path / "elsewhere")
    return tmp_path


def fill(value: object, tree: Path) -> object:
    if isinstance(value, str):
        return value.replace("{t}", str(tree))
    if isinstance(value, list):
        return [fill(v, tree) for v in cast(list[object], value)]
    return value


@pytest.mark.parametrize(
    ("value", "cwd"),
    [
        ("key", "secret"),  # relative: against the server's cwd
        ("./key", "secret"),
        ("../secret/key", "public"),
        ("{t}/secret/key", "public"),
        ("{t}/public/../secret/key", "public"),
        ("escape/key", "public"),  # through a symlink
        ("{t}/public/escape/key", None),
        ("escape/../../secret/key", "public"),  # `..` after a symlink: the kernel and Node read it differently
        ("~/secret/key", "public"),
        ("file://{t}/secret/key", "public"),
        ("FILE://localhost{t}/secret/key", "public"),
        ("file://{t}/secre%74/key", "public"),  # percent-encoded
        ("file:{t}/secret/key", "public"),
        (" {t}/secret/key ", "public"),
        ('["{t}/secret/key"]', "public"),
        (["{t}/public/x", "{t}/secret/key"], "public"),
        ("http://example.com/key", "public"),  # not a file: cannot tell
        ("file://example.com/key", "public"),
        ("a:b", "public"),
        ("", "public"),
        ("x\0y", "public"),
        (5, "public"),
        (None, "public"),
    ],
)
def test_a_deny_within_refuses_every_spelling_of_a_file_inside_it(tree: Path, value: object, cwd: str | None):
    constraint = {"within": (str(tree / "secret"),)}
    allowed, _ = call("deny", constraint, fill(value, tree), cwd=None if cwd is None else str(tree / cwd))
    assert not allowed


@pytest.mark.parametrize("value", ["x", "./x", "{t}/public/x", "file://{t}/public/x", ["{t}/public/x"], "~/public/x"])
def test_a_deny_within_lets_through_files_outside_it(tree: Path, value: object):
    constraint = {"within": (str(tree / "secret"),)}
    assert call("deny", constraint, fill(value, tree), cwd=str(tree / "public"))[0]


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ("x", None),
        ("./sub/x", None),
        ("{t}/public/x", None),
        ("file://{t}/public/x", None),
        ("file://localhost{t}/public/x", None),
        ("escape/x", "resolves to {t}/secret/x, outside {t}/public"),
        ("escape/../x", "resolves to {t}/x, outside {t}/public"),
        ("../secret/key", "resolves to {t}/secret/key"),
        ("file:///etc/passwd", "resolves to /etc/passwd"),
        ("http://example.com/x", "is a URL with scheme http:, not a file path"),
        ("a:b", "is a URL with scheme a:, not a file path"),
        ("file://example.com/x", "names a file on host 'example.com'"),
        ('["x"]', "must be a single path"),
        (["x"], "must be a path"),
        ("", "must be a path"),
        (5, "must be a path"),
        ("~/public/x", None),  # inside both expanded (HOME) and literally (<cwd>/~/public/x)
    ],
)
def test_an_allow_within_accepts_only_files_inside_it_from_the_servers_cwd(
    tree: Path, value: object, refusal: str | None
):
    allowed, reason = call("allow", {"within": (str(tree / "public"),)}, fill(value, tree), cwd=str(tree / "public"))
    assert allowed is (refusal is None), reason
    if refusal is not None:
        assert str(fill(refusal, tree)) in reason
        assert reason.endswith("(policy.rules[0].args.a.within)")


def test_a_relative_path_is_read_against_the_servers_cwd_and_without_one_against_mcpmuxs(tree: Path):
    within_public = {"within": (str(tree / "public"),)}
    assert call("allow", within_public, "x", cwd=str(tree / "public"))[0]
    assert not call("allow", within_public, "x", cwd=str(tree / "secret"))[0]
    assert not call("allow", within_public, "x")[0]  # mcpmux runs in <t>/elsewhere
