"""The front fuzzed in-process: generated JSON-RPC, valid and not, through a fresh front per example.

Whatever a host sends (odd ids, odd params, deep nesting, huge strings, lines that are not JSON), the front
must not fail, must answer each request exactly once under its id, must answer no notification, and must
write nothing that is not valid JSON-RPC. One gateway serves every example (a front per example opens its
own era); hypothesis runs derandomized without a database, so CI sees the same examples every run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import mcp_types as types
import orjson
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcpmux import wire
from mcpmux.front.server import Front
from mcpmux.gateway import Gateway
from tests.inprocess.scripted import ScriptedServer, ToolCall, gateway_of
from tests.inprocess.test_front import envelope


def ok(call: ToolCall) -> None:
    call.answer("ok")  # whatever the arguments: the fuzz is of the front, not of this server


METHODS = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "logging/setLevel",
    "completion/complete",
    "server/discover",
    "notifications/cancelled",
    "notifications/initialized",
    "notifications/roots/list_changed",
    "sampling/createMessage",
    "no/such/method",
]
NOTIFICATIONS = ["notifications/initialized", "notifications/cancelled", "notifications/roots/list_changed"]

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson writes; larger ones parse as floats
values = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
odd_ids = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(ints, max_size=2)
    | st.dictionaries(st.text(max_size=3), ints, max_size=2)
)
methods = st.sampled_from(METHODS) | st.text(max_size=20)
tool_names = st.sampled_from(["alpha__ok", "alpha__nope", "alpha__", "__", ""]) | st.text(max_size=12)
call_params = st.fixed_dictionaries(
    {"name": tool_names, "arguments": values},
    optional={"_meta": st.just(envelope()) | st.fixed_dictionaries({"progressToken": ints | st.text()})},
)
params = call_params | st.dictionaries(st.text(max_size=10), values, max_size=4) | values


@dataclass(frozen=True)
class Item:
    line: bytes
    answers: str
    """`one`: exactly one reply under `id`; `none`: no reply at all; `null`: exactly one reply with a null id;
    `maybe`: at most one reply, with a null id."""
    id: Any = None


@st.composite
def requests(draw: st.DrawFn, index: int) -> Item:
    request_id = draw(st.sampled_from([index, f"q{index}", 2**63 + index]))
    method = draw(methods.filter(lambda m: not m.startswith("notifications/")))
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if draw(st.booleans()):
        message["params"] = draw(call_params if method == "tools/call" else params)
    return Item(orjson.dumps(message), "one", request_id)


@st.composite
def notifications(draw: st.DrawFn) -> Item:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(st.sampled_from(NOTIFICATIONS))}
    if draw(st.booleans()):  # a cancellation names no request of this example: those must be answered
        cancelled = st.integers(min_value=10**9, max_value=2**63) | st.text(alphabet="xyz", max_size=5)
        message["params"] = {"requestId": draw(cancelled), "reason": draw(st.text(max_size=10))}
    return Item(orjson.dumps(message), "none")


@st.composite
def odd_id_requests(draw: st.DrawFn) -> Item:
    message = {"jsonrpc": "2.0", "id": draw(odd_ids), "method": draw(methods), "params": draw(call_params)}
    return Item(orjson.dumps(message), "null")


@st.composite
def deep_lines(draw: st.DrawFn, index: int) -> Item:
    depth = draw(st.sampled_from([10, 253, 300, 1100, 5000]))
    inner = b"[" * depth + b"1" + b"]" * depth
    method = draw(st.sampled_from([b"tools/call", b"prompts/get"]))
    name = b'"name":"alpha__ok",' if method == b"tools/call" else b""
    if draw(st.booleans()):
        line = b'{"jsonrpc":"2.0","id":%d,"method":"%s","params":{%s"arguments":{"v":%s}}}'
        return Item(line % (index, method, name, inner), "one", index)
    return Item(b'{"jsonrpc":"2.0","method":"%s","params":{"v":%s}}' % (method, inner), "maybe")


@st.composite
def huge_calls(draw: st.DrawFn, index: int) -> Item:
    size = draw(st.sampled_from([100_000, 3_000_000]))
    params: dict[str, Any] = {"name": "alpha__ok", "arguments": {"blob": "x" * size}}
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": index, "method": "tools/call", "params": params}
    return Item(orjson.dumps(message), "one", index)


@st.composite
def garbage(draw: st.DrawFn) -> Item:
    line = draw(st.binary(min_size=1, max_size=40) | values.map(orjson.dumps)).replace(b"\n", b" ")
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        parsed = None
    assume(line.strip() and not isinstance(parsed, dict))  # framing drops blank lines; objects are the others' job
    return Item(line, "maybe")


@st.composite
def sessions(draw: st.DrawFn) -> list[Item]:
    count = draw(st.integers(min_value=1, max_value=8))
    kinds: list[Callable[[int], st.SearchStrategy[Item]]] = [
        requests,
        requests,
        lambda i: notifications(),
        lambda i: odd_id_requests(),
        deep_lines,
        huge_calls,
        lambda i: garbage(),
    ]
    return [draw(draw(st.sampled_from(kinds))(index)) for index in range(count)]


class Written:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = anyio.Event()

    def __call__(self, line: bytes) -> None:
        message = orjson.loads(line)  # every line written is JSON
        assert isinstance(message, dict)
        self.messages.append(cast(dict[str, Any], message))
        self.arrived.set()

    def answers(self, request_id: Any) -> list[dict[str, Any]]:
        return [m for m in self.messages if "method" not in m and same_id(m.get("id"), request_id)]

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            self.arrived = anyio.Event()
            await self.arrived.wait()


def same_id(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def valid_jsonrpc(message: dict[str, Any]) -> bool:
    if message.get("jsonrpc") != "2.0":
        return False
    if "method" in message:
        return isinstance(message["method"], str) and ("id" not in message or wire.valid_id(message["id"]))
    error = message.get("error")
    if ("result" in message) == (error is not None) or not (message.get("id") is None or wire.valid_id(message["id"])):
        return False
    if error is not None and not (type(error.get("code")) is int and isinstance(error.get("message"), str)):
        return False
    types.jsonrpc_message_adapter.validate_python(message, by_name=False)
    return True


async def exercise(gateway: Gateway, items: list[Item]) -> Written:
    front = Front(gateway.supervisor, gateway.relay)
    written = Written()
    send, receive = anyio.create_memory_object_stream[bytes](math.inf)

    async def read_lines(on_line: Callable[[bytes], None]) -> None:
        async with receive:
            async for line in receive:
                on_line(line)

    owed = [item for item in items if item.answers == "one"]
    async with anyio.create_task_group() as tg:
        tg.start_soon(front.serve, read_lines, written)
        for item in items:
            send.send_nowait(item.line)
        with anyio.fail_after(10):
            await written.until(lambda: all(written.answers(item.id) for item in owed))
            # A second answer to any of them would have been written before this one's, in practice.
            send.send_nowait(orjson.dumps({"jsonrpc": "2.0", "id": "barrier", "method": "ping"}))
            await written.until(lambda: bool(written.answers("barrier")))
        await send.aclose()
    return written


@contextmanager
def errors_logged() -> Generator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logging.getLogger("mcpmux").addHandler(handler)
    try:
        yield records
    finally:
        logging.getLogger("mcpmux").removeHandler(handler)


def check(portal: BlockingPortal, gateway: Gateway, items: list[Item]) -> None:
    with errors_logged() as errors:
        written = portal.call(exercise, gateway, items)
    assert not errors, [r.getMessage() for r in errors]
    for message in written.messages:
        assert valid_jsonrpc(message), message
    for item in items:
        if item.answers == "one":
            assert len(written.answers(item.id)) == 1, (item.line[:200], written.answers(item.id))
    nulls = len(written.answers(None))
    must = sum(item.answers == "null" for item in items)
    may = sum(item.answers == "maybe" for item in items)
    assert must <= nulls <= must + may, (nulls, must, may)
    known = [*(item.id for item in items if item.answers == "one"), "barrier", None]
    assert not [m for m in written.messages if "method" not in m and m.get("id") not in known]


def test_the_front_answers_each_request_once_and_nothing_else_whatever_it_is_sent(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    server = ScriptedServer({"ok": ok})
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(gateway_of(tmp_path, {"alpha": server})) as gateway,
    ):

        @settings(
            max_examples=150,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large],
        )
        @given(sessions())
        def fuzz(items: list[Item]) -> None:
            check(portal, gateway, items)

        fuzz()
