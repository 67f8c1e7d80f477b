"""Requests a downstream sends to its client (sampling, elicitation, roots), carried to a handshake-era host.

Every downstream is offered these capabilities at start (downstreams start before
the host has said what it supports). A request goes to the host under an id of
mcpmux's own (`mxh-N`) when the host declared the capability, and the host's
answer goes back to the downstream under the downstream's id; otherwise the
downstream gets a clean JSON-RPC error at once. A profile that pins a server's
`roots` answers `roots/list` itself (`pinned_roots`), so the host's roots never
reach that server. A 2026-07-28 host takes no requests: it is asked within a
call (input_rounds.py).

A 2026-07-28 downstream sends no requests either: it answers a call with an
`input_required` result. For this host each of its input requests is carried as
the request it names (`InputRound`), and once every answer is in, the call is
sent again with them (`Call.resume`), as the downstream's era asks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpmux import wire
from mcpmux.downstream.connection import Downstream
from mcpmux.profile.model import ServerSpec
from mcpmux.relay.call import Writer
from mcpmux.relay.host import Host
from mcpmux.wire import JSON

CAPABILITY = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}
"""The client capability each relayable downstream request needs."""


def pinned_roots(spec: ServerSpec | None, message: JSON) -> JSON | None:
    """The answer to a `roots/list` of a server whose profile pins its roots; None for anything else."""
    if message.get("method") != "roots/list" or spec is None or spec.roots is None:
        return None
    return {"roots": [{"uri": Path(root).as_uri(), "name": Path(root).name} for root in spec.roots]}


def not_advertised(capability: str | None, method: str) -> str:
    return f"the host did not advertise '{capability or method}', so mcpmux cannot relay '{method}'"


class ServerRequests:
    def __init__(self, host: Host, write_host: Writer) -> None:
        self._host = host
        self._write_host = write_host
        self._pending: dict[str, tuple[Writer, Any]] = {}
        self._ids = itertools.count()

    def can(self, capability: str) -> bool:
        return self._host.can(capability)

    def to_host(self, ds: Downstream, message: JSON, reply: Writer | None = None) -> str | None:
        """Send a downstream's request to the host; None when sent, else why it cannot be.

        The host's answer goes to `reply` under the request's own id (by default, written to the downstream)."""
        method = str(message.get("method"))
        capability = CAPABILITY.get(method)
        if capability is None:
            return f"mcpmux does not relay '{method}'"
        if not self._host.can(capability):
            return not_advertised(capability, method)
        host_id = f"mxh-{next(self._ids)}"
        self._pending[host_id] = (reply or ds.write, message.get("id"))
        forwarded: JSON = {"jsonrpc": "2.0", "id": host_id, "method": method}
        if "params" in message:
            forwarded["params"] = message["params"]
        self._write_host(wire.dumps(forwarded))
        return None

    def from_host(self, message: JSON) -> bool:
        """Route the host's answer to a relayed request; False when it answers something else."""
        host_id = message.get("id")
        pending = self._pending.pop(host_id, None) if isinstance(host_id, str) else None
        if pending is None:
            return False
        reply, request_id = pending
        reply(wire.dumps({**message, "id": request_id}))
        return True


MAX_INPUT_REQUESTS = 64
"""Input requests one round may make of a handshake host; a round asking more is refused whole."""


class InputRound:
    """One `input_required` answer of a modern downstream, its requests out to a handshake host.

    `resume` gets the next round's retry fields once every request is answered; `fail` gets why the round
    cannot be completed (a refusal, or nothing to ask). Each is called at most once, and never both."""

    def __init__(self, server: str, result: JSON, resume: Callable[[JSON], None], fail: Callable[[str], None]) -> None:
        self.server = server
        self.state = result.get("requestState")
        self.requests = wire.as_object(result.get("inputRequests")) or {}
        self.waiting = set(self.requests)
        self.responses: JSON = {}
        self._resume, self._fail = resume, fail
        self.over = False

    def messages(self) -> list[tuple[str, JSON]]:
        """Each input request as the JSON-RPC request it names, under its input key as id (none if the round is
        refused: it asks nothing, or more than `MAX_INPUT_REQUESTS`)."""
        if not self.requests or len(self.requests) > MAX_INPUT_REQUESTS:
            self._end(f"server '{self.server}' asked for {len(self.requests)} inputs at once", None)
            return []
        out: list[tuple[str, JSON]] = []
        for key, request in self.requests.items():
            asked = wire.as_object(request) or {}
            message: JSON = {"jsonrpc": "2.0", "id": key, "method": str(asked.get("method"))}
            if "params" in asked:
                message["params"] = asked["params"]
            out.append((key, message))
        return out

    def answered(self, key: str, line: bytes) -> None:
        """The answer (or refusal) to one input request; the last one completes the round."""
        if self.over or key not in self.waiting:
            return
        message = wire.as_object(wire.loads(line)) or {}
        result = wire.as_object(message.get("result"))
        if result is None:
            error = wire.as_object(message.get("error")) or {}
            self._end(f"server '{self.server}' asked for input that could not be given: {error.get('message')}", None)
            return
        self.responses[key] = result
        self.waiting.discard(key)
        if not self.waiting:
            retry: JSON = {"inputResponses": self.responses}
            if self.state is not None:
                retry["requestState"] = self.state
            self._end(None, retry)

    def _end(self, why: str | None, retry: JSON | None) -> None:
        self.over = True
        if retry is not None:
            self._resume(retry)
        else:
            self._fail(why or "")
