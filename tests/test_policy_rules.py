"""Rules: annotation modes, hosts, time windows, rates, argument constraints, fixed values and schema rewrites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import ToolFacts
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, RateLimit, TimeWindow

MONDAY_NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday
READ_ONLY = ToolFacts(read_only=True)
WRITES = ToolFacts(read_only=False, destructive=False)
DESTRUCTIVE = ToolFacts(read_only=False, destructive=True)


def rule(*tools: str, **fields: Any) -> PolicyRule:
    return PolicyRule(index=fields.pop("index", 0), tools=tools or ("db__*",), **fields)


def args_rule(**constraints: dict[str, Any]) -> PolicyRule:
    return rule(args=tuple(ArgConstraint(name=n, **c) for n, c in constraints.items()))


def policy(*rules: PolicyRule, at: datetime = MONDAY_NOON, **spec: Any) -> Policy:
    return Policy.from_spec(PolicySpec(rules=rules, **spec), clock=lambda: at)


# ---- annotations -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "facts", "allowed", "rule_key"),
    [
        ({"read_only": True}, READ_ONLY, True, 'policy.default = "allow"'),
        ({"read_only": True}, WRITES, False, "policy.read_only"),
        ({"read_only": True}, ToolFacts(), False, "policy.read_only"),
        ({"read_only": True}, None, False, "policy.read_only"),
        ({"deny_destructive": True}, DESTRUCTIVE, False, "policy.deny_destructive"),
        ({"deny_destructive": True}, WRITES, True, 'policy.default = "allow"'),
        ({"deny_destructive": True}, READ_ONLY, True, 'policy.default = "allow"'),
        # unannotated: the MCP spec presumes destructive
        ({"deny_destructive": True}, ToolFacts(), False, "policy.deny_destructive"),
        ({"deny_destructive": True}, ToolFacts(read_only=False), False, "policy.deny_destructive"),
        # a read-only tool's destructiveHint is meaningless
        ({"deny_destructive": True}, ToolFacts(read_only=True, destructive=True), True, 'policy.default = "allow"'),
        # the modes are denials: an allow glob or rule does not override them
        ({"read_only": True, "allow": ("db__*",)}, WRITES, False, "policy.read_only"),
        ({"deny_destructive": True, "rules": (rule(effect="allow"),)}, DESTRUCTIVE, False, "policy.deny_destructive"),
    ],
)
def test_annotation_modes_hide_tools_the_spec_does_not_call_safe(
    spec: dict[str, Any], facts: ToolFacts | None, allowed: bool, rule_key: str
) -> None:
    decision = Policy.from_spec(PolicySpec(**spec)).decide("db__query", tool=facts)
    assert (decision.allowed, decision.rule) == (allowed, rule_key)


def test_tool_facts_come_from_annotations_and_none_means_unannotated() -> None:
    assert ToolFacts.from_annotations(None) == ToolFacts()
    hints = types.ToolAnnotations(read_only_hint=True, destructive_hint=False)
    assert ToolFacts.from_annotations(hints) == ToolFacts(read_only=True, destructive=False)


# ---- how rules combine with globs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "host", "allowed", "rule_key"),
    [
        ({"default": "deny", "rules": (rule(effect="allow"),)}, None, True, "policy.rules[0]"),
        ({"deny": ("db__*",), "rules": (rule(effect="allow"),)}, None, False, 'policy.deny[0] "db__*"'),
        ({"rules": (rule(effect="deny"),)}, None, False, "policy.rules[0]"),
        ({"rules": (rule(effect="allow"), rule(effect="deny", index=1))}, None, False, "policy.rules[1]"),
        ({"rules": (rule("other__*", effect="deny"),)}, None, True, 'policy.default = "allow"'),
        # hosts: an allow rule naming hosts covers only those hosts, never an unnamed one; a deny rule naming hosts
        # covers an unnamed host too (it cannot be told apart from the hosts named)
        (
            {"default": "deny", "rules": (rule(effect="allow", hosts=("cursor*",)),)},
            "cursor-ide",
            True,
            "policy.rules[0]",
        ),
        ({"default": "deny", "rules": (rule(effect="allow", hosts=("cursor*",)),)}, "claude-ai", False, None),
        ({"default": "deny", "rules": (rule(effect="allow", hosts=("cursor*",)),)}, None, False, None),
        ({"rules": (rule(effect="deny", hosts=("claude-ai",)),)}, "claude-ai", False, "policy.rules[0]"),
        ({"rules": (rule(effect="deny", hosts=("claude-ai",)),)}, "cursor", True, None),
        ({"rules": (rule(effect="deny", hosts=("claude-ai",)),)}, None, False, "policy.rules[0]"),
        # a deny rule with conditions is decided at call time: the tool stays listed
        ({"rules": (rule(effect="deny", hours=TimeWindow(0, 1440, "00:00-24:00")),)}, None, True, None),
    ],
)
def test_list_time_deny_globs_then_rules_then_allow_globs_then_default(
    spec: dict[str, Any], host: str | None, allowed: bool, rule_key: str | None
) -> None:
    decision = Policy.from_spec(PolicySpec(**spec)).decide("db__query", host=host)
    assert decision.allowed is allowed
    if rule_key is not None:
        assert decision.rule == rule_key


def test_a_call_to_a_tool_hidden_at_list_time_is_denied_with_the_same_rule() -> None:
    p = policy(deny=("db__*",))
    call = p.decide_call("db__query", {"x": 1})
    assert call.decision == p.decide("db__query")
    assert call.arguments is None


def test_explain_sees_every_rule_that_covers_the_tool() -> None:
    rules = (rule(effect="allow"), rule("x__*", index=1), rule("db__q*", effect="deny", index=2, days=frozenset({6})))
    assert policy(*rules, allow=("db__*",)).decide("db__query").matched == (
        'policy.allow[0] "db__*"',
        "policy.rules[0]",
        "policy.rules[2]",
    )


# ---- time windows -------------------------------------------------------------------------------------------------


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY_NOON.replace(hour=hour, minute=minute) + timedelta(days=day)


OFFICE = TimeWindow(6 * 60, 18 * 60, "06:00-18:00")
NIGHT = TimeWindow(22 * 60, 6 * 60, "22:00-06:00")
WEEKDAYS = frozenset(range(5))


@pytest.mark.parametrize(
    ("fields", "when", "allowed", "failed"),
    [
        ({"hours": OFFICE}, at(0, 6), True, None),
        ({"hours": OFFICE}, at(0, 17, 59), True, None),
        ({"hours": OFFICE}, at(0, 18), False, "policy.rules[0].hours"),
        ({"hours": OFFICE}, at(0, 5, 59), False, "policy.rules[0].hours"),
        ({"hours": NIGHT}, at(0, 23), True, None),
        ({"hours": NIGHT}, at(0, 2), True, None),
        ({"hours": NIGHT}, at(0, 12), False, "policy.rules[0].hours"),
        ({"days": WEEKDAYS}, at(4, 12), True, None),
        ({"days": WEEKDAYS}, at(5, 12), False, "policy.rules[0].days"),
        ({"days": WEEKDAYS, "hours": OFFICE}, at(6, 12), False, "policy.rules[0].days"),
        # 12:00 UTC is 21:00 in Tokyo; 03:00 UTC Monday is 12:00 Monday there
        ({"hours": OFFICE, "timezone": "Asia/Tokyo"}, at(0, 12), False, "policy.rules[0].hours"),
        ({"hours": OFFICE, "timezone": "Asia/Tokyo"}, at(0, 3), True, None),
        # Sunday 20:00 UTC is already Monday in Tokyo
        ({"days": WEEKDAYS, "timezone": "Asia/Tokyo"}, at(6, 20), True, None),
    ],
)
def test_an_allow_rule_allows_calls_only_inside_its_time_window(
    fields: dict[str, Any], when: datetime, allowed: bool, failed: str | None
) -> None:
    call = policy(rule(effect="allow", **fields), at=when).decide_call("db__query", {})
    assert call.decision.allowed is allowed
    if failed is not None:
        assert call.decision.rule == failed
        assert "outside" in call.decision.reason


def test_a_deny_rule_with_hours_denies_only_inside_them() -> None:
    deny_nights = rule(effect="deny", hours=NIGHT)
    assert not policy(deny_nights, at=at(0, 23)).decide_call("db__query", None).decision.allowed
    assert policy(deny_nights, at=at(0, 12)).decide_call("db__query", None).decision.allowed


def test_a_later_allow_rule_can_allow_what_an_earlier_one_does_not() -> None:
    weekdays = rule(effect="allow", days=WEEKDAYS, hours=OFFICE)
    weekend = rule(effect="allow", index=1, days=frozenset({5, 6}), hours=TimeWindow(600, 840, "10:00-14:00"))
    assert policy(weekdays, weekend, at=at(5, 11)).decide_call("db__query", {}).decision.rule == "policy.rules[1]"
    refused = policy(weekdays, weekend, at=at(5, 15)).decide_call("db__query", {}).decision
    assert (refused.allowed, refused.rule) == (False, "policy.rules[0].days")  # the first failure is named


# ---- rate ---------------------------------------------------------------------------------------------------------


def test_a_rate_limit_is_a_sliding_window_per_tool() -> None:
    now = [MONDAY_NOON]
    p = Policy.from_spec(
        PolicySpec(rules=(rule(effect="allow", rate=RateLimit(2, 60.0, "2/minute")),)), clock=lambda: now[0]
    )
    seen: list[bool] = []
    for seconds in (0, 10, 20, 59, 61, 65, 71):
        now[0] = MONDAY_NOON + timedelta(seconds=seconds)
        seen.append(p.decide_call("db__query", {}).decision.allowed)
    assert seen == [True, True, False, False, True, False, True]
    assert p.decide_call("db__other", {}).decision.allowed  # another tool has its own window
    now[0] = MONDAY_NOON + timedelta(seconds=72)
    refused = p.decide_call("db__query", {}).decision
    assert refused.rule == "policy.rules[0].rate"
    assert "over the rate 2/minute" in refused.reason


def test_a_refused_call_takes_no_rate_slot() -> None:
    limited = rule(effect="allow", rate=RateLimit(1, 60.0, "1/minute"), args=(ArgConstraint("n", maximum=5),))
    p = policy(limited)
    assert not p.decide_call("db__query", {"n": 9}).decision.allowed
    assert p.decide_call("db__query", {"n": 1}).decision.allowed
    assert p.decide_call("db__query", {"n": 1}).decision.rule == "policy.rules[0].rate"


def test_each_host_has_its_own_rate_window_and_sessions_of_one_host_share_theirs() -> None:
    p = policy(rule(effect="allow", rate=RateLimit(1, 60.0, "1/minute")))
    assert p.decide_call("db__query", {}, host="cursor").decision.allowed
    assert p.decide_call("db__query", {}, host="claude-code").decision.allowed  # hosts sharing one gateway
    assert p.decide_call("db__query", {}, host="cursor").decision.rule == "policy.rules[0].rate"


# ---- argument constraints -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("constraint", "value", "failed", "message"),
    [
        ({"enum": ("read", "list")}, "read", None, None),
        ({"enum": ("read", "list")}, "write", "enum", 'argument \'a\' = "write" is not one of ["read", "list"]'),
        ({"enum": (1, 2)}, True, "enum", "argument 'a' = true is not one of [1, 2]"),
        ({"pattern": "^(main|dev)$"}, "main", None, None),
        ({"pattern": "^(main|dev)$"}, "feature", "pattern", "argument 'a' = \"feature\" does not match pattern"),
        ({"pattern": "ma"}, "main", "pattern", "does not match"),  # a full match, not a search
        ({"pattern": ".*"}, 3, "pattern", "must be a string"),
        ({"minimum": 1, "maximum": 100}, 100, None, None),
        ({"minimum": 1, "maximum": 100}, 101, "max", "argument 'a' = 101 is above the maximum 100"),
        ({"minimum": 1}, 0.5, "min", "argument 'a' = 0.5 is below the minimum 1"),
        ({"maximum": 100}, "5", "max", "must be a number"),
        ({"maximum": 100}, True, "max", "must be a number"),
        ({"max_length": 3}, "abc", None, None),
        ({"max_length": 3}, "abcd", "max_length", "argument 'a' = \"abcd\" has 4 characters, over 3"),
        ({"max_length": 1}, [1, 2], "max_length", "argument 'a' = [1, 2] has 2 items, over 1"),
        ({"max_length": 1}, 5, "max_length", "must be a string or an array"),
        ({"equals": 2025}, 2025, None, None),
        ({"equals": 2025}, 2024, "equals", "argument 'a' = 2024 must equal 2025"),
        ({"equals": 1}, True, "equals", "must equal 1"),
    ],
)
def test_each_constraint_names_the_argument_the_constraint_and_the_rule(
    constraint: dict[str, Any], value: object, failed: str | None, message: str | None
) -> None:
    call = policy(args_rule(a=constraint)).decide_call("db__query", {"a": value})
    assert call.decision.allowed is (failed is None)
    if failed is not None and message is not None:
        assert call.decision.rule == f"policy.rules[0].args.a.{failed}"
        assert message in call.decision.reason
        assert call.decision.reason.endswith(f"(policy.rules[0].args.a.{failed})")


def test_the_pattern_refusal_reads_as_one_sentence() -> None:
    call = policy(args_rule(branch={"pattern": "^(main|dev)$"})).decide_call("db__query", {"branch": "feature"})
    assert call.decision.reason == (
        "argument 'branch' = \"feature\" does not match pattern ^(main|dev)$ (policy.rules[0].args.branch.pattern)"
    )


@pytest.mark.parametrize(
    ("constraint", "allowed"),
    [({"maximum": 5}, True), ({"required": True}, False), ({"equals": 1}, False), ({"fixed": 1}, True)],
)
def test_an_absent_argument_passes_an_allow_rule_unless_required(constraint: dict[str, Any], allowed: bool) -> None:
    assert policy(args_rule(a=constraint)).decide_call("db__query", {"b": 1}).decision.allowed is allowed


def test_a_deny_rule_refuses_only_calls_whose_arguments_match_it() -> None:
    deny_writes = rule(effect="deny", args=(ArgConstraint("mode", enum=("write",)),))
    p = policy(deny_writes)
    assert not p.decide_call("db__query", {"mode": "write"}).decision.allowed
    assert p.decide_call("db__query", {"mode": "read"}).decision.allowed
    assert p.decide_call("db__query", {}).decision.allowed  # an absent argument matches no deny rule


def test_arguments_that_are_not_an_object_fail_a_rule_with_constraints() -> None:
    call = policy(args_rule(a={"maximum": 1})).decide_call("db__query", ["x"])  # type: ignore[arg-type]
    assert (call.decision.allowed, call.decision.rule) == (False, "policy.rules[0].args")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src" / "repo").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "src" / "escape").symlink_to(tmp_path / "other")
    return tmp_path


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("{t}/src/repo", True),
        ("{t}/src", True),
        ("{t}/src/../src/repo", True),
        ("{t}/src/../other", False),
        ("{t}/src/escape", False),  # a symlink out of the root
        ("{t}/src/escape/x", False),
        ("{t}/srcx", False),  # a sibling sharing the prefix
        ("src/repo", True),  # relative to the working directory
        ("../x", False),
        ("", False),
        (7, False),
    ],
)
def test_within_resolves_dots_and_symlinks_before_checking_containment(
    tree: Path, value: object, allowed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    shown = value.format(t=tree) if isinstance(value, str) else value
    p = policy(args_rule(path={"within": (str(tree / "src"),)}))
    call = p.decide_call("db__query", {"path": shown})
    assert call.decision.allowed is allowed, call.decision.reason
    if not allowed:
        assert call.decision.rule == "policy.rules[0].args.path.within"


def test_a_tilde_path_must_be_inside_both_as_written_and_expanded(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tree / "src"))
    monkeypatch.chdir(tree / "src")
    allowed = policy(rule("d__q", args=(ArgConstraint("p", within=(str(tree / "src"),)),)))
    assert allowed.decide_call("d__q", {"p": "~/repo"}).decision.allowed
    monkeypatch.chdir(tree / "other")  # "~/repo" read literally is now outside
    assert not allowed.decide_call("d__q", {"p": "~/repo"}).decision.allowed


# ---- fixed values and what the host sees --------------------------------------------------------------------------


def test_fixed_values_override_what_the_host_sent_and_other_calls_forward_their_arguments_untouched() -> None:
    p = policy(args_rule(database={"fixed": "replica"}))
    assert p.decide_call("db__query", {"database": "primary", "q": 1}).arguments == {"database": "replica", "q": 1}
    assert p.decide_call("db__query", None).arguments == {"database": "replica"}
    sent = {"q": 1}
    assert policy().decide_call("db__query", sent).arguments is sent
    assert policy().decide_call("db__query", None).arguments is None


SCHEMA = {
    "type": "object",
    "properties": {"database": {"type": "string"}, "mode": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["database", "mode"],
}


def test_rewrite_tool_replaces_the_description_hides_fixed_params_and_narrows_the_schema() -> None:
    constraints = (
        ArgConstraint("database", fixed="replica"),
        ArgConstraint("mode", enum=("read", "list"), max_length=4),
        ArgConstraint("n", minimum=1, maximum=100),
    )
    p = policy(rule(effect="allow", description="Read-only queries.", args=constraints))
    tool = types.Tool(name="db__query", description="Run SQL.", input_schema=SCHEMA)
    seen = p.rewrite_tool("db__query", tool)
    assert seen.description == "Read-only queries."
    assert seen.input_schema == {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["read", "list"], "maxLength": 4},
            "n": {"type": "integer", "minimum": 1, "maximum": 100},
        },
        "required": ["mode"],
    }
    assert tool.input_schema == SCHEMA  # the downstream's definition is not touched


def test_rewrite_tool_returns_the_same_object_when_no_rule_changes_it() -> None:
    tool = types.Tool(name="db__query", description="Run SQL.", input_schema=SCHEMA)
    assert policy().rewrite_tool("db__query", tool) is tool
    assert policy(rule("other__*", description="x")).rewrite_tool("db__query", tool) is tool
    assert policy(args_rule(zzz={"maximum": 1})).rewrite_tool("db__query", tool) is tool


def test_max_output_bytes_and_unused_rules_are_read_from_the_rules() -> None:
    p = policy(rule(max_output_bytes=1000), rule("gone__*", index=1))
    assert p.max_output_bytes("db__query") == 1000
    assert p.max_output_bytes("x__y") is None
    assert p.unused_rules(["db__query"]) == ['policy.rules[1].tools ["gone__*"]']
