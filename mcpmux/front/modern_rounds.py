"""A 2026-07-28 downstream's input rounds, carried to this connection's host in its own era.

A modern downstream asks for input by answering with `input_required`. A
2026-07-28 host takes that answer as it is, and its retry fields go back down
with its next request. A handshake host takes requests instead: each input
request is carried as the request it names, decided like any request of that
downstream (`Carry`: policy, pinned roots), and once every answer is in, the
request is sent again with them. Tool calls resume on the relay's fast path
(`call_round`); `prompts/get` and `resources/read` go round here (`routed`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio

from mcpmux.downstream.connection import Downstream
from mcpmux.errors import DownstreamError
from mcpmux.front.envelope import retry_fields
from mcpmux.front.host_requests import InputRound
from mcpmux.relay.call import Call, Writer
from mcpmux.wire import JSON

Carry = Callable[[Downstream, JSON, Writer], None]
"""Decides a downstream's request of the host and carries it there; the answer line goes to the writer."""
Send = Callable[[JSON], Awaitable[JSON]]
"""Sends the routed request again with these retry fields added; its raw result."""

MAX_ROUNDS = 16
"""Input rounds one routed request may take with a handshake host before it is refused."""


def call_round(carry: Carry, call: Call, result: JSON) -> None:
    """A modern downstream's input round within a handshake host's `tools/call`: asked, then the call resumed."""
    server = call.route.server

    def fail(why: str) -> None:
        call.fail(DownstreamError(server, why))

    round_ = InputRound(server, result, call.resume, fail)
    if call.ds is None:
        fail(f"server '{server}' is gone")
        return
    for key, message in round_.messages():
        carry(call.ds, message, partial(round_.answered, key))


async def routed(carry: Carry | None, ds: Downstream, send: Send, request: JSON, wait_seconds: float) -> JSON:
    """A routed request to a modern downstream, its rounds carried (`carry` None: a 2026-07-28 host answers them)."""
    if carry is None:
        return await send({k: v for k, v in (retry_fields(request) or {}).items() if v is not None})
    raw = await send({})
    for _ in range(MAX_ROUNDS):
        if raw.get("resultType") != "input_required":
            return raw
        raw = await send(await _asked(carry, ds, raw, wait_seconds))
    raise DownstreamError(ds.name, f"server '{ds.name}' asked for input more than {MAX_ROUNDS} times in one request")


async def _asked(carry: Carry, ds: Downstream, result: JSON, wait_seconds: float) -> JSON:
    """One round asked of a handshake host: the retry fields its answers make."""
    done = anyio.Event()
    outcome: list[JSON | str] = []

    def end(value: JSON | str) -> None:
        outcome.append(value)
        done.set()

    round_ = InputRound(ds.name, result, end, end)
    for key, message in round_.messages():
        carry(ds, message, partial(round_.answered, key))
    try:
        with anyio.fail_after(wait_seconds):
            await done.wait()
    except TimeoutError:
        raise DownstreamError(
            ds.name, f"the host did not answer server '{ds.name}' within {wait_seconds:g} s"
        ) from None
    if isinstance(outcome[0], str):
        raise DownstreamError(ds.name, outcome[0])
    return outcome[0]
