"""The front: mcpmux's own MCP server, spoken to by the host over stdio.

mcpmux owns the host's wire. Each line from stdin is parsed once (dispatch);
the host's first request opens the connection's channel, which fixes the
protocol era and the host's identity for good (channel.py). A `tools/call` (and
the `notifications/cancelled` for one) goes straight to the relay through the
channel; everything else is handed to the SDK's low-level `Server`, which serves
the `initialize` handshake, `server/discover`, listings and errors. Both write
through one function, `to_host`: the single exit toward the host, where every
secret of the running profile is redacted, whichever server produced the line.

In discovery mode (`expose = "search"`, discovery.py) the host lists the three
meta-tools instead; calls of them go to the SDK-served `_call_tool`, which hands
them to `Discovery`. Every other `tools/call` keeps the fast path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import mcp_types as types
import pydantic
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.message import SessionMessage

from mcpmux import __version__, wire
from mcpmux.audit import lifecycle
from mcpmux.catalog.build import Catalog, host_view
from mcpmux.downstream import facts as server_facts
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.process import process_age
from mcpmux.downstream.servers import Servers
from mcpmux.errors import TooDeep, Unencodable
from mcpmux.front import modern_rounds, output, stdio
from mcpmux.front.channel import (
    EnvelopeChannel,
    HandshakeChannel,
    HostChannel,
    Run,
    Undecided,
    host_of,
    opening_era,
)
from mcpmux.front.discovery import Discovery
from mcpmux.front.envelope import ModernCalls
from mcpmux.front.failures import FailureNotes
from mcpmux.front.handlers import LOG_LEVELS, Handlers, Peers, make_server, page
from mcpmux.front.host_requests import ServerRequests, pinned_roots
from mcpmux.front.input_rounds import InputBridge
from mcpmux.policy.primitives import Primitives
from mcpmux.relay.call import Writer
from mcpmux.relay.relay import STARTUP_WAIT_SECONDS, Relay
from mcpmux.relay.task_requests import TASK_METHODS
from mcpmux.relay.tasks import handshake_task
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

FIRST_ANSWER_BY_SECONDS = 0.85
"""While servers never started before are awaited (their instructions), `initialize` is answered
at the latest when mcpmux is this old, so a profile's first run answers within a second like
every other: a slower server is in the instructions from the next session on (downstream/facts.py
remembers them), and so is one that any command starting the servers (`mcpmux tools`) has seen."""
EOF_DRAIN_SECONDS = 2.0
"""Once the host's input ends and its requests are answered, how long the answers may take to be written."""
_FACTS_METHODS = frozenset({"initialize", "server/discover"})

LineReader = Callable[[Callable[[bytes], None]], Awaitable[None]]
"""Reads the host's lines until its input ends, handing each to the callback."""


class Front:
    def __init__(self, supervisor: Servers, relay: Relay, peers: Peers | None = None) -> None:
        """`peers`: the other hosts of a shared gateway, which hands this front its downstream events
        (front/hosts.py); without, the front is the gateway's only host and subscribes itself."""
        self.supervisor = supervisor
        self.relay = relay
        self.host = relay.host
        self.handlers = Handlers(supervisor, self._routed, relay.host, self._modern_routed, peers)
        self._carry: modern_rounds.Carry | None = None
        """How a handshake host is asked a modern downstream's input requests (None: a 2026-07-28 host, or none)."""
        self.discovery = Discovery(relay, self.handlers.catalog)
        self.bus = InMemorySubscriptionBus()
        self.server = make_server(
            "mcpmux",
            __version__,
            self.handlers,
            bus=self.bus,
            instructions=None,  # set per answer from the downstreams' own (downstream/facts.py)
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.channel: HostChannel = Undecided()
        """Opened by the host's first request; never changes after (channel.py)."""
        self.answered = anyio.Event()
        """Set once the host has its handshake answer (`initialize`, `server/discover`; in the 2026-07-28 era,
        any first answer) written to it."""
        self._out: Callable[[bytes], None] = lambda line: None
        self._to_sdk: MemoryObjectSendStream[SessionMessage | Exception] | None = None
        self._facts_ids: set[object] = set()
        """Ids of the host's `initialize` / `server/discover`: their answers carry the downstreams' facts."""
        self._sdk_owed: set[object] = set()
        """Ids of the host's requests handed to the SDK and not answered yet (waited for when the input ends)."""
        self._wrote = anyio.Event()
        """Set by each line written once the host's input has ended (the drain waits on it)."""
        self._failures = FailureNotes()
        if peers is None:
            supervisor.subscribe(self)

    # --- the one exit toward the host -------------------------------------------------------
    def to_host(self, line: bytes) -> None:
        """Write one line to the host, every secret of the running profile redacted (the choke point)."""
        redactor = self.supervisor.redactor
        self._out(redactor.redact_bytes(line) if redactor else line)

    # --- SDK handlers (everything but the hot path) --------------------------------------
    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if self.discovery.active:
            return types.ListToolsResult(tools=list(await self.discovery.list_tools()))
        catalog = await self.handlers.catalog()
        # Rules may name hosts: the listing is decided for this host (decisions are cached, so this is cheap).
        tools = host_view(catalog, self.supervisor.policy, self.host.name, self.supervisor.profile.max_tools)
        items, cursor = page(tools, params and params.cursor)
        return types.ListToolsResult(tools=items, next_cursor=cursor)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if self.discovery.handles(params.name):
            result = await self.discovery.call(params.name, params.arguments)
        else:
            result = await self.relay.call(params.name, params.arguments)
        return types.CallToolResult.model_validate(result)

    async def _routed(self, ds: Downstream, run: Run, request: JSON) -> JSON:
        return await self.channel.routed(ds, run, request)

    # --- DownstreamEvents -----------------------------------------------------------------
    def catalog_changed(self, catalog: Catalog, kinds: frozenset[str]) -> None:
        self.channel.announce(kinds)

    def notification(self, ds: Downstream, method: str, message: JSON, line: bytes) -> None:
        params = wire.as_object(message.get("params")) or {}
        shared = self.handlers.peers is not None
        if method == "notifications/message":
            if shared and _below(params.get("level"), self.handlers.level):
                return  # the downstream logs at the most verbose level any host asked for; this one asked less
            logger_name = params.get("logger")
            self.channel.log_message(
                ds.name, {**params, "logger": f"{ds.name}/{logger_name}" if logger_name else ds.name}
            )
        elif method == "notifications/resources/updated":
            updated = self.handlers.updated_uri(ds.name, params)
            if shared and updated.get("uri") not in self.handlers.subscribed and self.channel.era == "handshake":
                return  # another host's subscription
            self.channel.resource_updated(updated)
        elif method == "notifications/tasks/status":  # only this host's tasks, under the ids it knows
            if (entry := self.relay.tasks.of_downstream(ds, params.get("taskId"))) is not None:
                self.channel.task_status(handshake_task(params, entry))
            else:
                self.relay.tasks.hold_early(ds, params)  # servers notify before their CreateTaskResult

    def server_failed(self, name: str, reason: str) -> None:
        """Tell the host in its log (a call of the server's tools is answered "unavailable" too)."""
        self._failures.add(name, reason)
        if self.answered.is_set():
            self._failures.tell(self.channel)

    def request(self, ds: Downstream, message: JSON) -> bool:
        self._downstream_request(ds, message, ds.write)
        return True

    async def _modern_routed(self, ds: Downstream, send: modern_rounds.Send, request: JSON, wait: float) -> JSON:
        return await modern_rounds.routed(self._carry, ds, send, request, wait)

    def _downstream_request(
        self, ds: Downstream, message: JSON, reply: Writer, requests: ServerRequests | None = None
    ) -> None:
        """Decide a downstream's request of the host and answer it through `reply` (or carry it to the host)."""
        request_id, method = message.get("id"), str(message.get("method"))
        spec = self.supervisor.profile.server(ds.name)
        decision = Primitives(self.supervisor.policy).request(
            ds.name, spec.prefix if spec is not None else ds.name, method, host=self.host.name
        )
        if not decision.allowed:
            if self.supervisor.audit is not None:
                refused = lifecycle.refusal(
                    "request", method, ds.name, decision.rule, decision.reason, host=self.host.name
                )
                self.supervisor.audit.write(refused)
            reply(wire.error_response(request_id, wire.METHOD_NOT_FOUND, decision.reason))
            return
        if (roots := pinned_roots(spec, message)) is not None:
            reply(wire.result_response(request_id, roots))
            return
        message = self.relay.tasks.request_for_host(ds, message)  # a task asking for input: the host's task id
        try:
            if requests is not None:
                why = requests.to_host(ds, message, reply)
            else:
                why = self.channel.downstream_request(ds, message)
        except Unencodable:
            why = f"mcpmux relays no request nested more than {wire.MAX_DEPTH} levels deep"
        if why is not None:
            reply(wire.error_response(request_id if wire.valid_id(request_id) else None, wire.METHOD_NOT_FOUND, why))

    # --- the wire -------------------------------------------------------------------------
    def on_line(self, line: bytes) -> None:
        try:
            message = wire.loads(line)
        except TooDeep:
            self._too_deep(line)
            return
        except ValueError:
            self.to_host(wire.error_response(None, wire.PARSE_ERROR, "parse error: a line that is not JSON"))
            return
        try:
            self._dispatch(message)
        except Exception:  # a bug must cost one answer, never the host connection or a silent hang
            logger.exception("mcpmux failed to handle a message from the host")
            request_id = _id_of(message)
            if request_id is not None:
                self.to_host(wire.error_response(request_id, wire.INTERNAL_ERROR, "mcpmux failed; see its stderr"))

    def _too_deep(self, line: bytes) -> None:
        """A line nested deeper than mcpmux parses: answered under its id if its head names one, never relayed."""
        top, params = wire.head_members(line)
        request_id, method, name = top.get("id"), top.get("method"), params.get("name")
        if not isinstance(method, str) or not wire.valid_id(request_id):
            request_id = None
        elif method == "tools/call" and isinstance(name, str):  # refused as a call, and audited as one
            self.relay.refuse_too_deep(request_id, name, self.channel.answer_writer(request_id) or self.to_host)
            return
        text = f"invalid request: the message nests deeper than mcpmux takes (at most {wire.MAX_DEPTH} levels)"
        self.to_host(wire.error_response(request_id, wire.INVALID_REQUEST, text))

    def _dispatch(self, message: object) -> None:
        msg = wire.as_object(message)
        if msg is not None:
            method = msg.get("method")
            params = wire.as_object(msg.get("params"))
            if "id" in msg and method is not None and not wire.valid_id(msg["id"]):
                text = "invalid request: its id must be a string or an integer"
                self.to_host(wire.error_response(None, wire.INVALID_REQUEST, text))
                return
            if self.channel.era is None and isinstance(method, str) and "id" in msg:
                self.channel = self._open(opening_era(method, params))
            era = self.channel.era
            if self.host.info is None and era is not None and (info := host_of(era, method, params)) is not None:
                self.host.bind(info)  # the first identifying request fixes who the host is, for good
            if (
                method == "tools/call"
                and "id" in msg
                and params is not None
                and not self.discovery.handles(params.get("name"))
            ):
                if self.relay.in_flight(msg["id"]):  # answering it would break the first call's routing
                    self._id_in_use(msg["id"])
                    return
                if self.channel.call(msg["id"], params):
                    return
            if method in TASK_METHODS and "id" in msg and params is not None:
                if method == "tasks/result" and self.relay.in_flight(msg["id"]):  # relayed like a call
                    self._id_in_use(msg["id"])
                    return
                if self.channel.task_request(msg["id"], method, params):
                    return
            if method == "notifications/cancelled" and params is not None and "id" not in msg:
                if self.relay.cancel_from_host(params.get("requestId"), params.get("reason")):
                    return
                if wire.valid_id(cancelled := params.get("requestId")):
                    self._sdk_owed.discard(cancelled)  # the SDK answers no request the host cancelled
            if method is None and self.channel.host_answer(msg):
                return
            if method in _FACTS_METHODS and "id" in msg:
                self._facts_ids.add(msg["id"])
            if method == "notifications/roots/list_changed" and "id" not in msg:
                self._roots_changed()
                return
        self._to_sdk_line(message)

    def _id_in_use(self, request_id: Any) -> None:
        text = f"invalid request: id {wire.dumps(request_id).decode()} is already in use by a call in flight"
        self.to_host(wire.error_response(request_id, wire.INVALID_REQUEST, text))

    def _open(self, era: str) -> HostChannel:
        """The channel of the era the first request opened."""
        if era == "handshake":
            requests = ServerRequests(self.host, self.to_host)
            self._carry = partial(self._downstream_request, requests=requests)
            self.relay.rounds = partial(modern_rounds.call_round, self._carry)
            return HandshakeChannel(self.to_host, self.relay, requests, self.answered)
        channel = EnvelopeChannel(
            self.to_host,
            self.relay,
            InputBridge(self.relay),
            ModernCalls(self.server.server_info_stamp),
            self.bus,
            self.supervisor.start_soon,
        )
        return channel

    def _roots_changed(self) -> None:
        """The host's roots changed: tell every downstream that takes its roots from the host."""
        note = wire.notification("notifications/roots/list_changed")
        for state in self.supervisor.states.values():
            if state.downstream is not None and state.spec.roots is None:
                state.downstream.write(note)

    def _to_sdk_line(self, message: Any) -> None:
        try:
            parsed = types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        except (pydantic.ValidationError, RecursionError):
            self.to_host(wire.error_response(_id_of(message), wire.INVALID_REQUEST, "invalid JSON-RPC message"))
            return
        if self._to_sdk is not None:
            if isinstance(parsed, types.JSONRPCRequest):
                self._sdk_owed.add(parsed.id)
            self._to_sdk.send_nowait(SessionMessage(parsed))

    async def _pump_sdk(self, stream: MemoryObjectReceiveStream[SessionMessage]) -> None:
        async with stream:
            async for session_message in stream:
                message = session_message.message
                handshake = isinstance(message, types.JSONRPCResponse) and message.id in self._facts_ids
                if isinstance(message, types.JSONRPCResponse):
                    if handshake:
                        self._facts_ids.discard(message.id)
                        message = await self._with_facts(message)
                    self._sdk_owed.discard(message.id)
                elif isinstance(message, types.JSONRPCError):
                    self._sdk_owed.discard(message.id)
                self.to_host(message.model_dump_json(by_alias=True, exclude_unset=True).encode())
                if (handshake or self.channel.era == "envelope") and not self.answered.is_set():
                    self.answered.set()  # a handshake host may hear notifications only from now on (channel.py)
                    self.channel.opened()
                    self._failures.tell(self.channel)

    async def _with_facts(self, response: types.JSONRPCResponse) -> types.JSONRPCResponse:
        """The handshake answer with the downstreams' instructions and capabilities merged in.

        A server never seen before (no cached facts) is waited for until mcpmux is
        FIRST_ANSWER_BY_SECONDS old; later answers come from the cache at once.
        """
        if any(f is None for f in self.supervisor.facts.values()):
            with anyio.move_on_after(max(0.0, FIRST_ANSWER_BY_SECONDS - process_age())):
                await self.supervisor.ready.wait()
        facts = self.supervisor.facts
        result = dict(response.result)
        result["instructions"] = server_facts.merged_instructions(self.supervisor.profile, facts)
        offered = wire.as_object(result.get("capabilities"))
        if offered is not None:
            modern = self.channel.era == "envelope"
            result["capabilities"] = server_facts.merged_capabilities(offered, facts, modern=modern)
        return response.model_copy(update={"result": result})

    async def run(self, stdin_fd: int = 0, stdout_fd: int = 1, flow: output.Flow | None = None) -> None:
        """Serve the host on its stdio until it closes stdin; what is owed to it is answered and written first.

        `flow`: told when the host stops reading (default: the supervisor's downstreams are held back)."""
        out = await output.open_output(stdout_fd, flow or self.supervisor.flow)
        await self.serve(partial(stdio.read_lines, stdin_fd), out.write)
        await out.close(EOF_DRAIN_SECONDS)

    async def serve(self, read_lines: LineReader, write_line: Callable[[bytes], None]) -> None:
        """Serve the host until `read_lines` returns (its input ended); tests pass streams of their own.

        `read_lines(on_line)` calls `on_line` with each line the host sends; `write_line` writes one line to it.
        """
        self._out = write_line
        to_sdk, sdk_in = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
        sdk_out, from_sdk = anyio.create_memory_object_stream[SessionMessage](math.inf)
        self._to_sdk = to_sdk
        changes = NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True)
        options = self.server.create_initialization_options(changes)
        with to_sdk:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.server.run, sdk_in, sdk_out, options)
                tg.start_soon(self._pump_sdk, from_sdk)
                await read_lines(self.on_line)
                await self._drain(write_line)
                tg.cancel_scope.cancel()

    async def _drain(self, write_line: Callable[[bytes], None]) -> None:
        """The host's input ended (`echo … | mcpmux serve`: before the servers are up): wait until every request
        received is answered, as late as its own bounds allow; a host that wants out sooner signals."""

        def write(line: bytes) -> None:
            write_line(line)
            self._wrote.set()

        self._out = write  # the happy path's writer stays free of this check
        longest_call = max((s.timeout_seconds for s in self.supervisor.profile.servers), default=0.0)
        with anyio.move_on_after(STARTUP_WAIT_SECONDS + longest_call + 5.0):  # 5 s more: only a bug's bound
            while self._sdk_owed or self.relay.owed():
                await self._wrote.wait()
                self._wrote = anyio.Event()


def _below(level: object, wanted: str | None) -> bool:
    """Whether a message at `level` is less severe than the level a host asked for (unknown levels pass)."""
    if wanted not in LOG_LEVELS or level not in LOG_LEVELS:
        return False
    return LOG_LEVELS.index(level) < LOG_LEVELS.index(wanted)


def _id_of(message: object) -> Any:
    """A message's id if it is one an answer may carry, else None (an answer must never fail to be written)."""
    request_id = (wire.as_object(message) or {}).get("id")
    return request_id if wire.valid_id(request_id) else None
