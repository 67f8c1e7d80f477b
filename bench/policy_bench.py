"""`python -m bench.policy_bench`: what one policy decision costs, for catalogs of 10, 1,000 and 10,000 tools.

Each catalog has deny/allow globs and 20 rules (hosts, hours, days, rate, argument
constraints, fixed values). Measured per decision, after the caches are warm, the
way the relay calls it: `decide` (list time) and `decide_call` (call time) for a
tool without rules, and `decide_call` for a tool governed by a constrained rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import ToolFacts
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, RateLimit, TimeWindow

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FACTS = ToolFacts(read_only=True, destructive=False)


def build(tools: int) -> tuple[Policy, list[str]]:
    names = [f"s{i % 10}__tool_{i}" for i in range(tools)]
    rules = [
        PolicyRule(
            index=i,
            tools=(f"s{i % 10}__tool_{i}*",),
            effect="allow",
            hosts=("claude-ai", "cursor*"),
            hours=TimeWindow(0, 1440, "00:00-24:00"),
            days=frozenset(range(7)),
            rate=RateLimit(10**9, 60.0, "1000000000/minute"),
            args=(
                ArgConstraint("branch", pattern="^(main|dev)$"),
                ArgConstraint("count", minimum=1, maximum=100),
                ArgConstraint("mode", enum=("read", "list")),
                ArgConstraint("db", fixed="replica"),
            ),
        )
        for i in range(20)
    ]
    spec = PolicySpec(default="deny", allow=("s*__*",), deny=("*__delete_*", "*__drop_*"), rules=tuple(rules))
    return Policy.from_spec(spec, clock=lambda: NOW), names


def per_call_ns(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm the caches
    start = time.perf_counter_ns()
    for _ in range(rounds):
        fn()
    return (time.perf_counter_ns() - start) / rounds


def measure(tools: int, rounds: int = 100_000) -> tuple[float, float, float]:
    """Nanoseconds per `decide`, per `decide_call` without rules, per `decide_call` through a constrained rule."""
    policy, names = build(tools)
    plain, ruled = "s1__plain", names[0]
    args = {"branch": "main", "count": 5, "mode": "read"}
    for name in names:  # list time for the whole catalog, as `tools/list` does
        policy.decide(name, tool=FACTS, host="claude-ai")
    assert policy.decide_call(ruled, args, tool=FACTS, host="claude-ai").arguments == {**args, "db": "replica"}
    return (
        per_call_ns(lambda: policy.decide(plain, tool=FACTS, host="claude-ai"), rounds),
        per_call_ns(lambda: policy.decide_call(plain, args, tool=FACTS, host="claude-ai"), rounds),
        per_call_ns(lambda: policy.decide_call(ruled, args, tool=FACTS, host="claude-ai"), rounds),
    )


def main() -> None:
    table = Table("tools", "decide (list)", "decide_call, no rule", "decide_call, rule + 4 args", title="policy cost")
    for tools in (10, 1_000, 10_000):
        table.add_row(f"{tools:,}", *(f"{ns / 1000:.2f} µs" for ns in measure(tools)))
    Console().print(table)


if __name__ == "__main__":
    main()
