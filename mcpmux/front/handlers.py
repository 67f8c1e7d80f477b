"""The front's SDK handlers for everything but `tools/call`: listings, prompts, resources, completions, logging.

Each request is routed with the current catalog snapshot to the downstream that
owns the name or URI, forwarded as raw JSON-RPC, and the answer validated into
the SDK's result type with names and URIs mapped back to what the host knows.
A failure becomes a JSON-RPC error naming the server (these are not tool calls,
so there is no `is_error` result to carry it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol, TypeVar

import anyio
import mcp_types as types
import pydantic
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types import LOG_LEVEL_META_KEY

from mcpmux import wire
from mcpmux.audit import lifecycle
from mcpmux.catalog.build import Catalog, PromptRoute
from mcpmux.catalog.uris import expose_meta, expose_uri, split_uri
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.servers import Servers
from mcpmux.errors import DownstreamError
from mcpmux.policy.primitives import Primitives
from mcpmux.policy.verdict import Decision
from mcpmux.relay.host import Host
from mcpmux.relay.relay import STARTUP_WAIT_SECONDS
from mcpmux.wire import JSON

PAGE_SIZE = 500
"""Merged lists longer than this are served in pages with cursors."""

_R = TypeVar("_R", bound=pydantic.BaseModel)
Ctx = ServerRequestContext[Any]


def page(items: list[Any], cursor: str | None) -> tuple[list[Any], str | None]:
    start = int(cursor) if cursor and cursor.isdigit() else 0
    end = start + PAGE_SIZE
    return items[start:end], (str(end) if end < len(items) else None)


Routed = Callable[[Downstream, Callable[[], Awaitable[JSON]], JSON], Awaitable[JSON]]
"""Runs a routed request the way the host's era needs (the host channel's `routed`)."""
ModernRouted = Callable[[Downstream, Callable[[JSON], Awaitable[JSON]], JSON, float], Awaitable[JSON]]
"""Runs a routed request to a 2026-07-28 downstream, its input rounds carried to the host (front/modern_rounds.py)."""


def _sender(ds: Downstream, method: str, params: JSON, timeout: float) -> Callable[[JSON], Awaitable[JSON]]:
    """The request, to be sent with a round's retry fields added."""

    async def send(retry: JSON) -> JSON:
        return await ds.request(method, {**params, **retry}, timeout)

    return send


LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""MCP's logging levels, least severe first."""


class Peers(Protocol):
    """The other hosts attached to the same gateway (front/hosts.py): downstreams are theirs too."""

    def downstream_level(self) -> str | None:
        """The most verbose level any attached host asked for (the downstreams log at it; each host filters)."""
        ...

    def subscribed_elsewhere(self, handlers: Handlers, uri: str) -> bool:
        """Whether a host other than `handlers`' is subscribed to the exposed `uri`."""
        ...


class Handlers:
    """SDK-served requests; each prompt, resource and completion is listed and served only as the policy allows
    (policy/primitives.py), for this connection's host."""

    def __init__(
        self, supervisor: Servers, routed: Routed, host: Host, modern: ModernRouted, peers: Peers | None = None
    ) -> None:
        self.supervisor = supervisor
        self._routed = routed
        self._host = host
        self._modern = modern
        self.peers = peers
        self.level: str | None = None
        """The level this host asked for with `logging/setLevel` (None: it never did)."""
        self.subscribed: set[str] = set()
        """The resource URIs (as the host knows them) this host subscribed to."""

    # --- policy -----------------------------------------------------------------------------
    def _prefix(self, server: str) -> str:
        spec = self.supervisor.profile.server(server)
        return spec.prefix if spec is not None else server

    def _prompt_decision(self, route: PromptRoute) -> Decision:
        policy = Primitives(self.supervisor.policy)
        return policy.prompt(route.exposed, self._prefix(route.server), host=self._host.name)

    def _resource_decision(self, server: str, uri: str) -> Decision:
        return Primitives(self.supervisor.policy).resource(uri, self._prefix(server), host=self._host.name)

    def _refuse(self, kind: str, name: str, server: str | None, decision: Decision) -> MCPError:
        """Audit a refusal and make the error the host gets (these are not tool calls: no is_error result)."""
        if self.supervisor.audit is not None:
            event = lifecycle.refusal(kind, name, server, decision.rule, decision.reason, host=self._host.name)
            self.supervisor.audit.write(event)
        return MCPError(wire.INVALID_PARAMS, f"{kind} '{name}' is not allowed: {decision.reason}")

    def _owner_or_none(self, catalog: Catalog, uri: str) -> str | None:
        try:
            return self.owner(catalog, uri)[0]
        except MCPError:
            return None

    async def catalog(self) -> Catalog:
        with anyio.move_on_after(STARTUP_WAIT_SECONDS):
            await self.supervisor.ready.wait()
        return self.supervisor.catalog

    async def ask(self, server: str, method: str, params: JSON, result_type: type[_R]) -> _R:
        result = await self.ask_in_rounds(server, method, params, result_type, None)
        assert not isinstance(result, types.InputRequiredResult)  # only asked for with a context
        return result

    async def ask_in_rounds(
        self, server: str, method: str, params: JSON, result_type: type[_R], rounds: Ctx | None
    ) -> _R | types.InputRequiredResult:
        """Route a request; with `rounds` (its context), a 2026-07-28 host is asked for what the downstream needs."""
        state = self.supervisor.live(server)
        ds = state.downstream if state is not None else None
        if ds is None or state is None:
            raise MCPError(wire.INTERNAL_ERROR, f"server '{server}' is unavailable: {state and state.last_error}")
        timeout = state.spec.timeout_seconds
        try:
            run = partial(ds.request, method, params, timeout)
            if rounds is not None:
                request: JSON = {**dict(rounds.params or {}), "_meta": dict(rounds.meta or {})}
                if ds.era == "modern":
                    send = _sender(ds, method, params, timeout)
                    raw = await self._modern(ds, send, request, timeout)
                else:
                    raw = await self._routed(ds, run, request)
                if raw.get("resultType") == "input_required":
                    return types.InputRequiredResult.model_validate(raw)
            else:
                raw = await run()
            if state.redactor:
                raw = wire.as_object(wire.loads(state.redactor.redact_bytes(wire.dumps(raw)))) or {}
            return result_type.model_validate(raw)
        except DownstreamError as exc:
            raise MCPError(wire.INTERNAL_ERROR, str(exc)) from exc
        except pydantic.ValidationError as exc:
            raise MCPError(wire.INTERNAL_ERROR, f"server '{server}' sent an invalid {method} result: {exc}") from exc

    # --- prompts --------------------------------------------------------------------------
    async def list_prompts(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        catalog = await self.catalog()
        allowed = [p.definition for p in catalog.prompts.values() if self._prompt_decision(p).allowed]
        items, cursor = page(allowed, params and params.cursor)
        return types.ListPromptsResult(prompts=items, next_cursor=cursor)

    async def get_prompt(
        self, ctx: Ctx, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        route = (await self.catalog()).prompts.get(params.name)
        if route is None:
            raise MCPError(wire.INVALID_PARAMS, f"unknown prompt '{params.name}'")
        if not (decision := self._prompt_decision(route)).allowed:
            raise self._refuse("prompt", route.exposed, route.server, decision)
        forwarded: JSON = {"name": route.prompt, "arguments": params.arguments or {}}
        return await self.ask_in_rounds(route.server, "prompts/get", forwarded, types.GetPromptResult, ctx)

    # --- resources ------------------------------------------------------------------------
    async def list_resources(self, ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        catalog = await self.catalog()
        allowed = [r for r in catalog.resources if self._listable(catalog, str(r.uri))]
        items, cursor = page(allowed, params and params.cursor)
        return types.ListResourcesResult(resources=items, next_cursor=cursor)

    def _listable(self, catalog: Catalog, uri: str) -> bool:
        server = self._owner_or_none(catalog, uri)
        return server is not None and self._resource_decision(server, uri).allowed

    async def list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        catalog = await self.catalog()
        allowed = [t for t in catalog.templates if self._listable(catalog, t.uri_template)]
        items, cursor = page(allowed, params and params.cursor)
        return types.ListResourceTemplatesResult(resource_templates=items, next_cursor=cursor)

    def owner(self, catalog: Catalog, uri: str) -> tuple[str, str]:
        """(server, original URI) for an exposed URI."""
        split = split_uri(uri)
        if split is not None and split[0] in catalog.namespaces:
            return catalog.namespaces[split[0]], split[1]
        if uri in catalog.plain_uris:
            return catalog.plain_uris[uri], uri
        plain = [s.name for s in self.supervisor.profile.enabled_servers if not s.namespaced]
        if len(plain) == 1:  # a template-expanded URI of the only un-namespaced server
            return plain[0], uri
        raise MCPError(wire.INVALID_PARAMS, f"unknown resource '{uri}': no downstream owns it")

    def _exposed_uri(self, server: str, uri: str) -> str:
        spec = self.supervisor.profile.server(server)
        return expose_uri(spec.prefix if spec is not None and spec.namespaced else None, uri)

    async def read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        server, uri = self._allowed_resource(await self.catalog(), str(params.uri))
        result = await self.ask_in_rounds(server, "resources/read", {"uri": uri}, types.ReadResourceResult, ctx)
        if isinstance(result, types.InputRequiredResult):
            return result
        spec = self.supervisor.profile.server(server)
        prefix = spec.prefix if spec is not None and spec.namespaced else None
        contents = [c.model_copy(update=_exposed_contents(prefix, c)) for c in result.contents]
        return result.model_copy(update={"contents": contents})

    async def subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        server, uri = self._allowed_resource(await self.catalog(), str(params.uri))
        result = await self.ask(server, "resources/subscribe", {"uri": uri}, types.EmptyResult)
        self.subscribed.add(str(params.uri))
        return result

    async def unsubscribe(self, ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        server, uri = self.owner(await self.catalog(), str(params.uri))
        self.subscribed.discard(str(params.uri))
        if self.peers is not None and self.peers.subscribed_elsewhere(self, str(params.uri)):
            return types.EmptyResult()  # another host still listens: the server keeps sending updates
        return await self.ask(server, "resources/unsubscribe", {"uri": uri}, types.EmptyResult)

    def _allowed_resource(self, catalog: Catalog, exposed: str) -> tuple[str, str]:
        """(server, original URI) of a resource this host may read or subscribe to; refused otherwise."""
        server, uri = self.owner(catalog, exposed)
        if not (decision := self._resource_decision(server, exposed)).allowed:
            raise self._refuse("resource", exposed, server, decision)
        return server, uri

    def updated_uri(self, server: str, params: JSON) -> JSON:
        """A downstream's `notifications/resources/updated` params, with the URI the host knows."""
        uri = params.get("uri")
        return {**params, "uri": self._exposed_uri(server, uri)} if isinstance(uri, str) else params

    # --- completions and logging ------------------------------------------------------------
    async def complete(self, ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        catalog = await self.catalog()
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            route = catalog.prompts.get(ref.name)
            if route is None:
                raise MCPError(wire.INVALID_PARAMS, f"unknown prompt '{ref.name}'")
            if not (decision := self._prompt_decision(route)).allowed:
                raise self._refuse("prompt", route.exposed, route.server, decision)
            server, ref_json = route.server, {"type": "ref/prompt", "name": route.prompt}
        else:
            server, uri = self._allowed_resource(catalog, ref.uri)
            ref_json = {"type": "ref/resource", "uri": uri}
        forwarded = params.model_dump(by_alias=True, mode="json", exclude_none=True)
        forwarded["ref"] = ref_json
        return await self.ask(server, "completion/complete", forwarded, types.CompleteResult)

    async def set_level(self, ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        """Apply the host's level to every running downstream that offers logging, and to every 2026-07-28 one.

        With other hosts attached, the downstreams log at the most verbose level any host asked for,
        and each host's front drops what is below its own (front/server.py)."""
        self.level = params.level
        level = (self.peers.downstream_level() if self.peers is not None else None) or params.level
        for state in self.supervisor.states.values():
            ds = state.downstream
            caps = ds.initialize_result.capabilities if ds and ds.initialize_result else None
            if ds is not None and ds.envelope is not None:
                # A 2026-07-28 downstream has no `logging/setLevel` (nor the capability): its requests carry the level.
                ds.envelope = {**ds.envelope, LOG_LEVEL_META_KEY: params.level}
            elif ds is not None and caps is not None and caps.logging is not None:
                ds.write(
                    wire.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": f"lvl-{ds.name}",
                            "method": "logging/setLevel",
                            "params": {"level": level},
                        }
                    )
                )
        return types.EmptyResult()

    def install(self, server: Server[Any]) -> None:
        server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self.set_level)


def _exposed_contents(prefix: str | None, contents: types.TextResourceContents | types.BlobResourceContents) -> JSON:
    """The update exposing one read content's URI (and an MCP App's `_meta` URIs); its MIME type stays as is."""
    update: JSON = {"uri": expose_uri(prefix, str(contents.uri))}
    if prefix is not None and (meta := expose_meta(contents.meta, prefix)) is not None:
        update["meta"] = meta
    return update


def make_server(
    name: str, version: str, handlers: Handlers, instructions: str | None, bus: SubscriptionBus, **tool_handlers: Any
) -> Server[Any]:
    server: Server[Any] = Server(
        name,
        version=version,
        instructions=instructions,
        on_subscriptions_listen=ListenHandler(bus),  # 2026-07-28 hosts hear of changes on this stream
        on_list_prompts=handlers.list_prompts,
        on_get_prompt=handlers.get_prompt,
        on_list_resources=handlers.list_resources,
        on_list_resource_templates=handlers.list_templates,
        on_read_resource=handlers.read_resource,
        on_subscribe_resource=handlers.subscribe,
        on_unsubscribe_resource=handlers.unsubscribe,
        on_completion=handlers.complete,
        **tool_handlers,
    )
    handlers.install(server)
    return server
