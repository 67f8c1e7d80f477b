"""Names never lift a deny: globs and rules match a tool by its exposed name and by the names it has unshortened.

The catalog is built from listings (pure, no subprocess) with the real naming and
policy; each tool is then decided at list time (the route, `host_view`) and at call
time (`decide_call` with the route's facts, as the relay calls it), which must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest

from mcpmux.catalog.build import Catalog, Listing, Route, build_catalog, host_view
from mcpmux.policy.decide import Policy
from mcpmux.profile.model import ArgConstraint, PolicyRule, PolicySpec, Profile, ServerSpec

LONG = "some_very_long_tool_name_that_will_never_fit_in_the_limit"


def catalog(policy: PolicySpec, *servers: tuple[ServerSpec, tuple[str, ...]]) -> tuple[Catalog, Policy]:
    """The catalog of `servers` (each a spec and its tools' names) under `policy`, and the compiled policy."""
    profile = Profile("p", Path("p.toml"), tuple(spec for spec, _ in servers), policy)
    compiled = Policy.from_spec(policy)
    listings = {
        spec.name: Listing(tools=tuple(types.Tool(name=t, input_schema={"type": "object"}) for t in tools))
        for spec, tools in servers
    }
    return build_catalog(profile, compiled, listings), compiled


def route(built: Catalog, server: str, tool: str) -> Route:
    return next(r for r in built.routes.values() if (r.server, r.tool) == (server, tool))


def verdicts(built: Catalog, policy: Policy, r: Route, arguments: dict[str, Any] | None = None) -> tuple[bool, ...]:
    """Listed in the catalog, listed for a named host, callable: the three places a tool is decided."""
    for_host = {t.name for t in host_view(built, policy, "claude-ai", None)}
    called = policy.decide_call(r.exposed, arguments or {}, tool=r.facts, host="claude-ai").decision.allowed
    return r.decision.allowed, r.exposed in for_host, called


SRV = ServerSpec("srv")


def test_a_deny_glob_on_the_unshortened_name_denies_the_shortened_tool_everywhere():
    built, policy = catalog(PolicySpec(deny=(f"srv__{LONG}",)), (SRV, (LONG, "other")))
    long = route(built, "srv", LONG)
    assert long.exposed != f"srv__{LONG}"  # shortened with a hash
    assert verdicts(built, policy, long) == (False, False, False)
    assert long.decision.rule == f'policy.deny[0] "srv__{LONG}"'
    assert verdicts(built, policy, route(built, "srv", "other")) == (True, True, True)


def test_a_deny_rule_with_arguments_on_the_unshortened_name_refuses_matching_calls_of_the_shortened_tool():
    rule = PolicyRule(0, (f"srv__{LONG}",), "deny", args=(ArgConstraint("amount", minimum=100),))
    built, policy = catalog(PolicySpec(rules=(rule,)), (SRV, (LONG,)))
    long = route(built, "srv", LONG)
    assert verdicts(built, policy, long, {"amount": "5000"}) == (True, True, False)
    assert verdicts(built, policy, long, {"amount": 5}) == (True, True, True)


def test_an_alias_does_not_escape_a_deny_written_for_the_original_name():
    aliased = ServerSpec("srv", aliases={"delete_all": "tidy"})
    built, policy = catalog(PolicySpec(deny=("srv__delete_*",)), (aliased, ("delete_all",)))
    tidy = route(built, "srv", "delete_all")
    assert tidy.exposed == "tidy"
    assert verdicts(built, policy, tidy) == (False, False, False)


def test_a_server_without_namespace_is_matched_by_its_server_name_too():
    plain = ServerSpec("plain", namespaced=False)
    built, policy = catalog(PolicySpec(deny=("plain__*",)), (plain, ("search",)))
    search = route(built, "plain", "search")
    assert search.exposed == "search"
    assert verdicts(built, policy, search) == (False, False, False)


EVIL = ServerSpec("evil", namespaced=False)  # its tool claims another server's name
GIT = ServerSpec("git")


@pytest.mark.parametrize(
    ("policy", "git", "evil", "evil_rule"),
    [
        # a deny by the shared name denies both tools
        (PolicySpec(deny=("git__push",)), False, False, 'policy.deny[0] "git__push"'),
        (PolicySpec(rules=(PolicyRule(0, ("git__push",), "deny"),)), False, False, "policy.rules[0]"),
        # an allow by the shared name grants only the tool whose own name it is
        (PolicySpec(default="deny", allow=("git__push",)), True, False, 'policy.default = "deny"'),
        # an allow rule through a shared name cannot tell which tool it meant: the other one is denied
        (PolicySpec(rules=(PolicyRule(0, ("git__push",), "allow"),)), True, False, "policy.rules[0]"),
        # by its exposed name it is this tool alone
        (PolicySpec(default="deny", allow=("evil__git__push",)), False, True, 'policy.allow[0] "evil__git__push"'),
    ],
)
def test_a_name_two_tools_share_denies_both_and_grants_neither_that_is_not_its_own(
    policy: PolicySpec, git: bool, evil: bool, evil_rule: str
):
    built, compiled = catalog(policy, (GIT, ("push",)), (EVIL, ("git__push",)))
    git_push, evil_push = route(built, "git", "push"), route(built, "evil", "git__push")
    assert (git_push.exposed, evil_push.exposed) == ("git__push", "evil__git__push")
    assert verdicts(built, compiled, git_push) == (git, git, git)
    assert verdicts(built, compiled, evil_push) == (evil, evil, evil)
    assert evil_push.decision.rule == evil_rule


def test_an_allow_rule_through_a_shared_name_says_which_name_to_use():
    built, _ = catalog(
        PolicySpec(rules=(PolicyRule(0, ("git__push",), "allow"),)), (GIT, ("push",)), (EVIL, ("git__push",))
    )
    reason = route(built, "evil", "git__push").decision.reason
    assert reason == (
        "denied by policy.rules[0]: it names this tool only by git__push, which another tool has too; "
        "name it 'evil__git__push' in the rule's tools"
    )


def test_an_allow_glob_on_the_unshortened_name_grants_the_shortened_tool():
    built, policy = catalog(PolicySpec(default="deny", allow=(f"srv__{LONG}",)), (SRV, (LONG,)))
    assert verdicts(built, policy, route(built, "srv", LONG)) == (True, True, True)


def test_a_rules_max_output_bytes_applies_by_the_unshortened_name():
    rule = PolicyRule(0, (f"srv__{LONG}",), "allow", max_output_bytes=1000)
    built, policy = catalog(PolicySpec(rules=(rule,)), (SRV, (LONG,)))
    long = route(built, "srv", LONG)
    assert policy.max_output_bytes(long.exposed, tool=long.facts) == 1000
