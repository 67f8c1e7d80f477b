"""The front's discovery mode (`expose = "search"`): the host lists three meta-tools, mcpmux answers them.

`tools/list` returns `discovery.meta_tools(...)`. `mcpmux__search_tools` and
`mcpmux__describe_tool` answer from the tools this host may use: every route
the policy (for this host) and the integrity check (pins, `hide_flagged`)
allow. `max_tools` does not narrow them: it cuts a long listing, and search is
how the cut tools are reached. A hidden tool is neither found nor described.
`mcpmux__call_tool` hands `(name, arguments)` to `Relay.call`, the same path as
a direct call, so policy, pins, redaction and audit apply unchanged and a
denied tool stays denied (the refusal names the rule, as for a direct call).

A direct `tools/call` of a catalog tool's own name is still served in search
mode (through the relay's fast path, under the same policy): the host only sees
the meta-tools, but a model that learned a name from search may call it as is.

One `SearchIndex` is built per (catalog snapshot, host) and reused until the
supervisor swaps in a new catalog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types

from mcpmux.catalog import search as discovery
from mcpmux.catalog.build import Catalog
from mcpmux.relay.relay import Relay
from mcpmux.wire import JSON


class Discovery:
    """Serves the meta-tools of search mode for one front."""

    def __init__(self, relay: Relay, catalog: Callable[[], Awaitable[Catalog]]) -> None:
        self.relay = relay
        self._catalog = catalog
        """The current catalog, waiting (bounded) for the downstreams' start-up."""
        self._cached: tuple[Catalog, str | None, discovery.SearchIndex] | None = None

    @property
    def active(self) -> bool:
        return self.relay.supervisor.profile.expose == "search"

    def handles(self, name: object) -> bool:
        """Whether a `tools/call` of `name` is a meta-tool call this front answers itself."""
        return self.active and name in discovery.META_TOOLS

    def usable(self, catalog: Catalog) -> list[types.Tool]:
        """The tools this host may use, in catalog order (ignoring `max_tools`, which only cuts listings)."""
        host, policy = self.relay.host.name, self.relay.supervisor.policy
        return [
            route.definition
            for route in catalog.routes.values()
            if route.decision.allowed and policy.decide(route.exposed, tool=route.facts, host=host).allowed
        ]

    def index(self, catalog: Catalog) -> discovery.SearchIndex:
        host = self.relay.host.name
        cached = self._cached
        if cached is None or cached[0] is not catalog or cached[1] != host:
            cached = self._cached = (catalog, host, discovery.SearchIndex(self.usable(catalog)))
        return cached[2]

    async def list_tools(self) -> tuple[types.Tool, ...]:
        """The meta-tools, the search tool's description summarising each server's usable tool count."""
        catalog = await self._catalog()
        tools = self.index(catalog).tools
        counts = Counter(catalog.routes[t.name].server for t in tools)
        servers = {spec.name: counts[spec.name] for spec in self.relay.supervisor.profile.enabled_servers}
        return discovery.meta_tools({name: count for name, count in servers.items() if count})

    async def call(self, name: str, arguments: Mapping[str, Any] | None) -> JSON:
        """The `CallToolResult` (as JSON) of one meta-tool call; tool failures are results, never exceptions."""
        if name == discovery.CALL_TOOL:
            target = discovery.call_target(arguments)
            if isinstance(target, dict):
                return target
            return await self.relay.call(*target)
        index = self.index(await self._catalog())
        if name == discovery.SEARCH_TOOL:
            return discovery.search_result(index, arguments)
        return discovery.describe_result(index.tools, arguments)
