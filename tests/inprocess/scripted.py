"""A downstream MCP server scripted by the test, spoken to in-process through `MemoryDownstream`.

It answers the handshake and `tools/list` itself; each `tools/call` is handed to the
test's script for that tool as a `ToolCall`, which the script may answer at once,
later, never, or after sending progress or a request of its own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from mcpmux.downstream.memory import MemoryDownstream, Peer, memory_connect
from mcpmux.gateway import Gateway, open_gateway
from mcpmux.profile.load import load_profile


@dataclass
class ToolCall:
    ds: MemoryDownstream
    request: dict[str, Any]
    server: ScriptedServer

    @property
    def id(self) -> Any:
        return self.request["id"]

    @property
    def arguments(self) -> dict[str, Any]:
        return self.request["params"].get("arguments") or {}

    @property
    def progress_token(self) -> Any:
        meta: dict[str, Any] = self.request["params"].get("_meta") or {}
        return meta.get("progressToken")

    def answer(self, text: str, *, is_error: bool = False) -> None:
        result = {"content": [{"type": "text", "text": text}], "isError": is_error}
        self.ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": self.id, "result": result}))

    def progress(self, progress: float, token: Any = None) -> None:
        params = {"progressToken": self.progress_token if token is None else token, "progress": progress}
        self.ds.deliver(orjson.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": params}))

    def ask(self, request_id: str, method: str, params: dict[str, Any], then: Callable[[dict[str, Any]], None]) -> None:
        """Send a request of the server's own to its client (sampling, elicitation); `then` gets the answer."""
        self.server.waiting[request_id] = then
        self.ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))


Script = Callable[[ToolCall], None]


@dataclass
class ScriptedServer:
    tools: dict[str, Script]
    prompts: dict[str, str] = field(default_factory=dict[str, str])
    """Prompt name → the text of its one user message."""
    resources: dict[str, str] = field(default_factory=dict[str, str])
    """Resource URI → its text."""
    refuse_initialize: str | None = None
    """When set, `initialize` is answered with a JSON-RPC error with this message."""
    received: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    """Every message mcpmux sent this server, in order."""
    arrived: anyio.Event = field(default_factory=anyio.Event)
    waiting: dict[str, Callable[[dict[str, Any]], None]] = field(
        default_factory=dict[str, Callable[[dict[str, Any]], None]]
    )
    """The server's own requests → what to do with the answer."""

    def __call__(self, ds: MemoryDownstream, line: bytes) -> None:
        message = orjson.loads(line)
        self.received.append(message)
        self.arrived.set()
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize" and self.refuse_initialize is not None:
            error = {"code": -32603, "message": self.refuse_initialize}
            ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}))
        elif method == "initialize":
            capabilities: dict[str, Any] = {"tools": {"listChanged": True}}
            if self.prompts:
                capabilities["prompts"] = {}
                capabilities["completions"] = {}
            if self.resources:
                capabilities["resources"] = {"subscribe": True}
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities,
                "serverInfo": {"name": "scripted", "version": "1"},
            }
            self._answer(ds, request_id, result)
        elif method == "prompts/list":
            self._answer(ds, request_id, {"prompts": [{"name": name} for name in self.prompts]})
        elif method == "prompts/get":
            text = self.prompts[message["params"]["name"]]
            self._answer(ds, request_id, {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]})
        elif method == "resources/list":
            self._answer(ds, request_id, {"resources": [{"uri": uri, "name": uri} for uri in self.resources]})
        elif method == "resources/templates/list":
            self._answer(ds, request_id, {"resourceTemplates": []})
        elif method == "resources/read":
            uri = message["params"]["uri"]
            self._answer(ds, request_id, {"contents": [{"uri": uri, "text": self.resources[uri]}]})
        elif method == "completion/complete":
            self._answer(ds, request_id, {"completion": {"values": ["one", "two"]}})
        elif method == "tools/list":
            tools = [{"name": name, "inputSchema": {"type": "object"}} for name in self.tools]
            ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}))
        elif method == "tools/call":
            self.tools[message["params"]["name"]](ToolCall(ds, message, self))
        elif method is None and request_id in self.waiting:
            self.waiting.pop(request_id)(message)
        elif method == "ping":
            self._answer(ds, request_id, {})
        elif method is not None and request_id is not None:  # `server/discover` among them: a handshake-era server
            error = {"code": -32601, "message": f"Method not found: {method}"}
            ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}))

    @staticmethod
    def _answer(ds: MemoryDownstream, request_id: Any, result: dict[str, Any]) -> None:
        ds.deliver(orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}))

    async def next_message(self, match: Callable[[dict[str, Any]], bool], seconds: float = 5.0) -> dict[str, Any]:
        """The first message mcpmux sent that matches, waiting for it if need be."""
        with anyio.fail_after(seconds):
            while True:
                for message in self.received:
                    if match(message):
                        return message
                self.arrived = anyio.Event()
                await self.arrived.wait()


@asynccontextmanager
async def gateway_of(
    tmp_path: Path,
    servers: dict[str, ScriptedServer],
    extra_toml: str = "",
    secrets: dict[str, dict[str, str]] | None = None,
) -> AsyncGenerator[Gateway]:
    """A running gateway over in-process servers (no subprocess), its downstreams up.

    `extra_toml` is appended after the last server's table; `secrets` are what each server was given.
    """
    text = "".join(f'[servers.{name}]\ncommand = "in-process"\n' for name in servers) + extra_toml
    path = tmp_path / "inprocess.toml"
    path.write_text(text)
    peers: dict[str, Peer] = dict(servers)
    async with open_gateway(load_profile(path), connect=memory_connect(peers, secrets)) as gateway:
        with anyio.fail_after(5):
            await gateway.supervisor.ready.wait()  # every server's first start attempt is done
        yield gateway


class Replies:
    """Collects the lines the relay writes for the host; waits for the one answering an id."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._arrived = anyio.Event()

    def __call__(self, line: bytes) -> None:
        self.lines.append(orjson.loads(line))
        self._arrived.set()

    async def wait_for(self, match: Callable[[dict[str, Any]], bool], seconds: float = 5.0) -> dict[str, Any]:
        with anyio.fail_after(seconds):
            while True:
                for message in self.lines:
                    if match(message):
                        return message
                self._arrived = anyio.Event()
                await self._arrived.wait()

    async def answer(self, host_id: Any, seconds: float = 5.0) -> dict[str, Any]:
        return await self.wait_for(lambda m: m.get("id") == host_id and "method" not in m, seconds)
