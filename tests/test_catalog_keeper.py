"""The catalog keeper's startup warnings: policy rules that match no tool, and the `max_tools` cut, each once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import mcp_types as types
import pytest

from mcpmux.catalog.build import Listing
from mcpmux.catalog.keeper import CatalogKeeper
from mcpmux.paths import state_paths
from mcpmux.policy.decide import Policy
from mcpmux.profile.load import load_profile
from tests.conftest import fixture_server_toml

WriteProfile = Callable[..., Path]


def keeper(path: Path) -> CatalogKeeper:
    profile = load_profile(path)
    return CatalogKeeper(profile, Policy.from_spec(profile.policy), state_paths(), None)


def listing(*tools: str) -> Listing:
    return Listing(tools=tuple(types.Tool(name=t, input_schema={"type": "object"}) for t in tools))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mcpmux" and r.levelno == logging.WARNING]


def unused(rule: str, path: Path) -> str:
    return f"{rule} matches no tool of the running servers in {path}; check the name (tools are named SERVER__TOOL)"


RULES = """
[policy]
deny = ["beta__drop"]

[[policy.rules]]
tools = ["alpha__*"]
effect = "allow"

[[policy.rules]]
tools = ["alhpa__echo"]
effect = "allow"

[[policy.rules]]
tools = ["alpha__fail"]
effect = "deny"

[[policy.rules]]
tools = ["beta__drop"]
effect = "allow"
"""


GTI_RULE = '[[policy.rules]]\ntools = ["gti__*"]\neffect = "allow"\n'


def test_an_unused_rule_is_warned_once_after_every_server_started(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta") + RULES)
    k = keeper(path)
    k.rebuild({"alpha": listing("echo", "fail")})
    k.rebuild({"alpha": listing("echo", "fail"), "beta": listing("drop")})
    assert warnings(caplog) == []  # servers are still coming up: nothing is known to be unused yet

    k.settle()
    k.settle()
    k.rebuild({"alpha": listing("echo", "fail"), "beta": listing("drop")})

    # Rules [2] and [3] match tools that policy hides (a deny rule, a `policy.deny` glob): they are in use.
    assert warnings(caplog) == [unused('policy.rules[1].tools ["alhpa__echo"]', path)]


def test_a_keeper_for_a_switched_profile_warns_again_for_its_own_rules(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta") + RULES)
    for _ in range(2):
        k = keeper(path)
        k.rebuild({"alpha": listing("echo", "fail"), "beta": listing("drop")})
        k.settle()
    assert warnings(caplog) == [unused('policy.rules[1].tools ["alhpa__echo"]', path)] * 2


@pytest.mark.parametrize(
    "tools",
    [
        '["github__create_issue"]',
        '["git*"]',
        '["*__create_issue"]',
        '["git[h]ub__*"]',
        '["new_issue"]',  # github's alias for create_issue
        '["gti__*", "github__list"]',  # one glob that could match is enough
    ],
)
def test_a_rule_that_could_match_a_server_without_tools_is_not_warned(
    tools: str, write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    github = fixture_server_toml("github") + '[servers.github.aliases]\ncreate_issue = "new_issue"\n'
    path = write_profile(
        fixture_server_toml("alpha") + github + f'[[policy.rules]]\ntools = {tools}\neffect = "allow"\n'
    )
    k = keeper(path)
    k.rebuild({"alpha": listing("echo")})  # github failed to start: it never listed a tool
    k.settle()
    assert warnings(caplog) == []


def test_a_typo_is_still_warned_when_another_server_failed(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_profile(fixture_server_toml("alpha") + fixture_server_toml("github") + GTI_RULE)
    k = keeper(path)
    k.rebuild({"alpha": listing("echo"), "github": listing()})  # restarting after a failed first start: no tools
    k.settle()
    assert warnings(caplog) == [unused('policy.rules[0].tools ["gti__*"]', path)]


def test_no_rule_is_warned_while_a_server_without_a_namespace_has_no_tools(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    plain = fixture_server_toml("plain", namespace="false")
    path = write_profile(fixture_server_toml("alpha") + plain + GTI_RULE)
    k = keeper(path)
    k.rebuild({"alpha": listing("echo")})
    k.settle()
    assert warnings(caplog) == []  # its tools keep their own names, so any rule may be meant for them


def test_a_rule_naming_a_tool_by_its_unshortened_name_is_not_warned(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    long = "a_tool_name_far_too_long_for_the_hosts_to_accept_as_is"
    path = write_profile(
        fixture_server_toml("alpha") + f'[[policy.rules]]\ntools = ["alpha__{long}"]\neffect = "deny"\n'
    )
    k = keeper(path)
    k.rebuild({"alpha": listing(long)})
    k.settle()
    assert f"alpha__{long}" not in k.catalog.routes  # exposed shortened, and still covered by the rule
    assert warnings(caplog) == []


def test_the_max_tools_cut_is_warned_once_after_ready_with_the_final_figure(
    write_profile: WriteProfile, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_profile("max_tools = 2\n" + fixture_server_toml("alpha") + fixture_server_toml("beta"))
    k = keeper(path)
    k.rebuild({"alpha": listing("a", "b", "c")})
    k.rebuild({"alpha": listing("a", "b", "c"), "beta": listing("d", "e")})
    assert warnings(caplog) == []

    k.settle()
    k.rebuild({"alpha": listing("a", "b", "c"), "beta": listing("d", "e")})
    cut = warnings(caplog)
    assert len(cut) == 1
    assert cut[0].startswith("max_tools = 2: listing 2 of 5 tools")

    caplog.clear()
    k.rebuild({"alpha": listing("a", "b", "c"), "beta": listing("d", "e", "f")})  # a list_changed after ready
    assert [w for w in warnings(caplog) if w.startswith("max_tools")] == [
        cut[0]
        .replace("2 of 5", "2 of 6")
        .replace("(3): alpha__c, beta__d, beta__e", "(4): alpha__c, beta__d, beta__e, beta__f")
    ]
