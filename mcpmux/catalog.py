"""The merged, filtered, immutable route table: exposed name → (server, original tool).

Pure: built from each server's listing, the profile's naming settings and its
policy. A new `Catalog` replaces the old one whole whenever any listing changes,
so a call always routes against one consistent snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import mcp_types as types

from mcpmux.naming import assign_names
from mcpmux.policy import Decision, Policy
from mcpmux.profile_model import Profile


@dataclass(frozen=True, slots=True)
class Route:
    exposed: str
    server: str
    tool: str
    definition: types.Tool
    """The downstream's definition under its exposed name."""
    decision: Decision
    naming_note: str | None = None


def _no_routes() -> Mapping[str, Route]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Catalog:
    routes: Mapping[str, Route] = field(default_factory=_no_routes)
    """Every tool, allowed or not, so that a call to a hidden tool is refused with its rule."""
    visible: tuple[types.Tool, ...] = ()
    notes: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.visible)


def build_catalog(profile: Profile, policy: Policy, listings: Mapping[str, Sequence[types.Tool]]) -> Catalog:
    """Merge listings in profile order (so names are stable), then name and filter them."""
    pairs: list[tuple[str, types.Tool]] = []
    for spec in profile.servers:
        pairs.extend((spec.name, tool) for tool in listings.get(spec.name, ()))
    aliases = {(spec.name, original): exposed for spec in profile.servers for original, exposed in spec.aliases.items()}
    named, problems = assign_names(
        [(server, tool.name) for server, tool in pairs], max_len=profile.max_name_length, aliases=aliases
    )
    routes: dict[str, Route] = {}
    visible: list[types.Tool] = []
    for (server, tool), name in zip(pairs, named, strict=True):
        definition = tool.model_copy(update={"name": name.exposed})
        route = Route(name.exposed, server, tool.name, definition, policy.decide(name.exposed), name.reason)
        routes[name.exposed] = route
        if route.decision.allowed:
            visible.append(definition)
    return Catalog(MappingProxyType(routes), tuple(visible), tuple(problems))
