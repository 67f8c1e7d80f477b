"""The merged, filtered, immutable route table: exposed name → (server, original name).

Pure: built from each server's listings, the profile's naming settings and its
policy. A new `Catalog` replaces the old one whole whenever any listing changes,
so a call always routes against one consistent snapshot. Tools and prompts are
named `<namespace>__<name>` (see naming.py); resource URIs as in uris.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import mcp_types as types

from mcpmux.catalog.naming import SEP, assign_names
from mcpmux.catalog.uris import expose_meta, expose_uri
from mcpmux.integrity.check import IntegrityReport, enforce_max_tools
from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import Decision, ToolFacts
from mcpmux.profile.model import Profile, ServerSpec

INTEGRITY_RULE = "pins"
"""The `rule` of a decision made by the tool integrity check (pins.py); final, whatever the policy says."""


def host_view(catalog: Catalog, policy: Policy, host: str | None, max_tools: int | None) -> list[types.Tool]:
    """The tools this host may see: policy decided with its name (rules may name hosts), integrity blocks kept."""
    if host is None:
        return list(catalog.visible)
    seen = [
        r.definition
        for r in catalog.routes.values()
        if r.decision.rule != INTEGRITY_RULE and policy.decide(r.exposed, tool=r.facts, host=host).allowed
    ]
    return seen[:max_tools] if max_tools is not None else seen


@dataclass(frozen=True, slots=True)
class Listing:
    """What one running downstream offers."""

    tools: Sequence[types.Tool] = ()
    prompts: Sequence[types.Prompt] = ()
    resources: Sequence[types.Resource] = ()
    templates: Sequence[types.ResourceTemplate] = ()


@dataclass(frozen=True, slots=True)
class Route:
    exposed: str
    server: str
    tool: str
    definition: types.Tool
    """The downstream's definition under its exposed name."""
    decision: Decision
    naming_note: str | None = None
    facts: ToolFacts = field(default_factory=ToolFacts)
    """The tool's annotations and other names as policy reads them (read-only, destructive, unshortened names)."""
    cwd: str | None = None
    """The server's working directory (profile `cwd`; None: mcpmux's), against which policy reads relative paths."""


@dataclass(frozen=True, slots=True)
class PromptRoute:
    exposed: str
    server: str
    prompt: str
    definition: types.Prompt


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Catalog:
    routes: Mapping[str, Route] = field(default_factory=_empty)
    """Every tool, allowed or not, so that a call to a hidden tool is refused with its rule."""
    visible: tuple[types.Tool, ...] = ()
    notes: tuple[str, ...] = ()
    prompts: Mapping[str, PromptRoute] = field(default_factory=_empty)
    resources: tuple[types.Resource, ...] = ()
    templates: tuple[types.ResourceTemplate, ...] = ()
    namespaces: Mapping[str, str] = field(default_factory=_empty)
    """Namespace → server, for routing namespaced resource URIs."""
    plain_uris: Mapping[str, str] = field(default_factory=_empty)
    """URI → server for resources of servers with `namespace = false`."""

    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.visible)


def with_integrity(catalog: Catalog, report: IntegrityReport, max_tools: int | None) -> tuple[Catalog, str | None]:
    """Hide (and refuse) tools the integrity check blocks; cut the listing to `max_tools` (cut tools stay callable)."""
    routes = dict(catalog.routes)
    for name, verdict in report.tools.items():
        route = routes.get(name)
        if route is not None and route.decision.allowed and not verdict.visible:
            blocked = Decision(False, INTEGRITY_RULE, verdict.reason or "blocked by the tool integrity check")
            routes[name] = replace(route, decision=blocked)
    listed = [t for t in catalog.visible if routes[t.name].decision.allowed]
    kept, cut = enforce_max_tools([t.name for t in listed], max_tools)
    keep = set(kept)
    visible = tuple(t for t in listed if t.name in keep)
    return replace(catalog, routes=MappingProxyType(routes), visible=visible), (str(cut) if cut else None)


def _aliases(spec: ServerSpec, names: Sequence[str]) -> dict[tuple[str, str], str]:
    if not spec.namespaced:  # exposed unchanged; a clash is reported by assign_names and resolved by hashing
        return {(spec.prefix, n): n for n in names}
    return {(spec.prefix, original): exposed for original, exposed in spec.aliases.items()}


def _name_all(
    profile: Profile, items: Sequence[tuple[ServerSpec, str]]
) -> tuple[list[str], list[str | None], list[str]]:
    aliases: dict[tuple[str, str], str] = {}
    for spec in profile.servers:
        aliases |= _aliases(spec, [name for s, name in items if s is spec])
    named, problems = assign_names(
        [(spec.prefix, name) for spec, name in items], max_len=profile.max_name_length, aliases=aliases
    )
    return [n.exposed for n in named], [n.reason for n in named], problems


def _other_names(spec: ServerSpec, tool: str, exposed: str) -> list[str]:
    """The names a policy may use for a tool besides its exposed one: unshortened, and by server name."""
    unshortened = f"{spec.prefix}{SEP}{tool}" if spec.namespaced else tool
    return [n for n in dict.fromkeys((unshortened, f"{spec.name}{SEP}{tool}")) if n != exposed]


def build_catalog(profile: Profile, policy: Policy, listings: Mapping[str, Listing]) -> Catalog:
    """Merge listings in profile order (so names are stable), then name and filter them."""
    specs = [s for s in profile.servers if s.name in listings]
    tool_items = [(spec, tool) for spec in specs for tool in listings[spec.name].tools]
    exposed, notes, problems = _name_all(profile, [(spec, t.name) for spec, t in tool_items])
    others = [_other_names(spec, t.name, name) for (spec, t), name in zip(tool_items, exposed, strict=True)]
    # A name another tool has too (exposed or not) must not grant it anything: policy gets it apart.
    uses = Counter(n for name, names in zip(exposed, others, strict=True) for n in {name, *names})
    routes: dict[str, Route] = {}
    visible: list[types.Tool] = []
    for (spec, tool), name, note, names in zip(tool_items, exposed, notes, others, strict=True):
        own, shared = tuple(n for n in names if uses[n] == 1), tuple(n for n in names if uses[n] > 1)
        facts = ToolFacts.from_annotations(tool.annotations, names=own, shared=shared)
        update: dict[str, Any] = {"name": name}
        if spec.namespaced and (meta := expose_meta(tool.meta, spec.prefix)) is not None:
            update["meta"] = meta  # an MCP App's `ui://` resource, under the URI the host can read it by
        definition = policy.rewrite_tool(name, tool.model_copy(update=update), facts=facts)
        decision = policy.decide(name, tool=facts)
        cwd = None if spec.cwd is None else str(spec.cwd)
        route = Route(name, spec.name, tool.name, definition, decision, note, facts, cwd)
        routes[name] = route
        if route.decision.allowed:
            visible.append(definition)

    prompt_items = [(spec, p) for spec in specs for p in listings[spec.name].prompts]
    prompt_names, _, prompt_problems = _name_all(profile, [(spec, p.name) for spec, p in prompt_items])
    prompts = {
        name: PromptRoute(name, spec.name, p.name, p.model_copy(update={"name": name}))
        for (spec, p), name in zip(prompt_items, prompt_names, strict=True)
    }

    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    plain_uris: dict[str, str] = {}
    for spec in specs:
        prefix = spec.prefix if spec.namespaced else None
        for r in listings[spec.name].resources:
            uri = expose_uri(prefix, str(r.uri))
            if prefix is None:
                plain_uris.setdefault(uri, spec.name)
            resources.append(r.model_copy(update={"uri": uri}))
        for t in listings[spec.name].templates:
            templates.append(t.model_copy(update={"uri_template": expose_uri(prefix, t.uri_template)}))
    return Catalog(
        routes=MappingProxyType(routes),
        visible=tuple(visible),
        notes=tuple(problems + prompt_problems),
        prompts=MappingProxyType(prompts),
        resources=tuple(resources),
        templates=tuple(templates),
        namespaces=MappingProxyType({s.prefix: s.name for s in specs if s.namespaced}),
        plain_uris=MappingProxyType(plain_uris),
    )
