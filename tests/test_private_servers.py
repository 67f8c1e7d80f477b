"""`shared = false`, the pure pieces: the two parts of a profile, and a host's catalog named and pinned as one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mcp_types as types

from mcpmux.catalog.build import Listing, build_catalog
from mcpmux.catalog.keeper import CatalogKeeper
from mcpmux.downstream.private import part, private_servers
from mcpmux.integrity.pins import load_pins, lock_path
from mcpmux.paths import state_paths
from mcpmux.policy.decide import Policy
from mcpmux.profile.load import load_profile
from tests.conftest import fixture_server_toml

WriteProfile = Callable[..., Path]


def listing(*tools: str) -> Listing:
    return Listing(tools=tuple(types.Tool(name=t, input_schema={"type": "object"}) for t in tools))


PROFILE = (
    "max_name_length = 20\n"  # long names are shortened: the same way in every catalog
    + fixture_server_toml("alpha")
    + fixture_server_toml("browser", shared="false")
    + fixture_server_toml("off", shared="false", enabled="false")
)


def test_shared_defaults_to_true_and_false_is_read(write_profile: WriteProfile) -> None:
    profile = load_profile(write_profile(PROFILE))
    assert [(s.name, s.shared) for s in profile.servers] == [("alpha", True), ("browser", False), ("off", False)]
    assert [s.name for s in private_servers(profile)] == ["browser"]  # a disabled server has no copies either


def test_each_part_of_a_profile_runs_only_its_own_kind_and_still_names_every_server(
    write_profile: WriteProfile,
) -> None:
    profile = load_profile(write_profile(PROFILE))
    shared, private = part(profile, shared=True), part(profile, shared=False)
    assert [s.name for s in shared.enabled_servers] == ["alpha"]
    assert [s.name for s in private.enabled_servers] == ["browser"]
    assert [s.name for s in shared.servers] == [s.name for s in private.servers] == ["alpha", "browser", "off"]
    assert shared.path == private.path == profile.path and shared.policy == profile.policy


def test_a_hosts_catalog_has_the_names_a_shared_server_of_that_name_would_have(write_profile: WriteProfile) -> None:
    profile = load_profile(write_profile(PROFILE))
    shared = part(profile, shared=True)
    policy = Policy.from_spec(profile.policy)
    keeper = CatalogKeeper(shared, policy, state_paths(), None)
    listings = {"alpha": listing("echo", "a_rather_long_tool_name"), "browser": listing("navigate", "a_long_click")}
    keeper.rebuild({"alpha": listings["alpha"]})
    catalog, _ = keeper.overlay(listings)
    plain = build_catalog(profile, policy, listings)  # one serve of the whole profile, nothing shared
    assert list(catalog.routes) == list(plain.routes)
    assert {r.server for r in catalog.routes.values()} == {"alpha", "browser"}
    assert "browser" not in {r.server for r in keeper.catalog.routes.values()}  # the shared catalog stays shared


def test_a_copys_first_use_pins_stay_in_the_lock_when_the_shared_catalog_changes_later(
    write_profile: WriteProfile,
) -> None:
    profile = load_profile(write_profile(PROFILE))
    shared = part(profile, shared=True)
    keeper = CatalogKeeper(shared, Policy.from_spec(profile.policy), state_paths(), None)
    keeper.rebuild({"alpha": listing("echo")})
    keeper.overlay({"alpha": listing("echo"), "browser": listing("navigate")})
    keeper.rebuild({"alpha": listing("echo", "new_one")})  # one pin set: this write keeps the copy's pin
    pins = load_pins(lock_path(profile, state_paths()))
    assert {"alpha", "browser"} <= pins.servers
    assert pins.get("browser", "navigate") is not None and pins.get("alpha", "echo") is not None
