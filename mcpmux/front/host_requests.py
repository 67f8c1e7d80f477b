"""Requests a downstream sends to its client (sampling, elicitation, roots), relayed to the host and back.

Every downstream is offered these capabilities at start (downstreams start before
the host has said what it supports). A request goes to the host under an id of
mcpmux's own (`mxh-N`) when the host advertised the capability, and the host's
answer goes back to the downstream under the downstream's id; otherwise the
downstream gets a clean JSON-RPC error at once. A profile that pins a server's
`roots` answers `roots/list` itself, so the host's roots never reach that server.
A 2026-07-28 host takes no requests: it is asked within a call (input_required.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpmux import wire
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.front.input_rounds import InputBridge
from mcpmux.wire import JSON

_CAPABILITY = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


class ServerRequests:
    def __init__(self, supervisor: Supervisor, write_host: Callable[[bytes], None]) -> None:
        self.supervisor = supervisor
        self.write_host = write_host
        self.host_capabilities: JSON = {}
        self.bridge: InputBridge | None = None
        """Set for a 2026-07-28 host: requests are asked of it within a call (input_required.py)."""
        self._pending: dict[str, tuple[Downstream, Any]] = {}
        self._ids = itertools.count()
        supervisor.request_handler = self.from_downstream

    def from_downstream(self, ds: Downstream, message: JSON) -> None:
        method = message.get("method")
        request_id = message.get("id")
        spec = self.supervisor.profile.server(ds.name)
        if method == "roots/list" and spec is not None and spec.roots is not None:
            roots = [{"uri": Path(root).as_uri(), "name": Path(root).name} for root in spec.roots]
            ds.write(wire.result_response(request_id, {"roots": roots}))
            return
        capability = _CAPABILITY.get(str(method))
        if capability is None:
            ds.write(wire.error_response(request_id, wire.METHOD_NOT_FOUND, f"mcpmux does not relay '{method}'"))
            return
        if self.bridge is not None:
            if (why := self.bridge.from_downstream(ds, message)) is not None:
                ds.write(wire.error_response(request_id, wire.METHOD_NOT_FOUND, why))
            return
        if capability not in self.host_capabilities:
            text = f"the host did not advertise '{capability}', so mcpmux cannot relay '{method}'"
            ds.write(wire.error_response(request_id, wire.METHOD_NOT_FOUND, text))
            return
        host_id = f"mxh-{next(self._ids)}"
        self._pending[host_id] = (ds, request_id)
        forwarded: JSON = {"jsonrpc": "2.0", "id": host_id, "method": method}
        if "params" in message:
            forwarded["params"] = message["params"]
        self.write_host(wire.dumps(forwarded))

    def from_host(self, message: JSON) -> bool:
        """Route the host's answer to a relayed request; False when it answers something else."""
        host_id = message.get("id")
        pending = self._pending.pop(host_id, None) if isinstance(host_id, str) else None
        if pending is None:
            return False
        ds, request_id = pending
        ds.write(wire.dumps({**message, "id": request_id}))
        return True

    def roots_changed(self) -> None:
        """The host's roots changed: tell every downstream that takes its roots from the host."""
        note = wire.notification("notifications/roots/list_changed")
        for state in self.supervisor.states.values():
            if state.downstream is not None and state.spec.roots is None:
                state.downstream.write(note)
