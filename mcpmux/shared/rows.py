"""One attached host as `mcpmux status` shows it, whichever way it attached (the socket or by URL)."""

from __future__ import annotations

import time
from typing import Any

from mcpmux.front.hosts import Hosts
from mcpmux.front.server import Front
from mcpmux.serve import server_rows


def host_row(hosts: Hosts, front: Front, since: float, **attached: Any) -> dict[str, Any]:
    """`attached`: how the host came (`transport`, `pipe_pid`, and for the socket `stdio`)."""
    info = front.host.info
    view = hosts.views.get(front)  # its own copies of `shared = false` servers
    return {
        "name": info.name if info else None,
        "version": info.version if info else None,
        "era": info.era if info else None,
        **attached,
        "attached_seconds": round(time.time() - since, 1),
        "calls_in_flight": front.relay.owed(),
        "servers": server_rows(view.own.states, view.redactor) if view is not None else [],
    }
