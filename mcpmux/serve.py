"""`mcpmux serve`: the gateway behind a front on the host's stdio, until stdin closes or a signal arrives.

Signals stay handled until every downstream is gone; downstreams start after the host's
handshake (or soon after, if the host is slow to ask); the control endpoint answers
`mcpmux status` from here.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio

from mcpmux import __version__, reload
from mcpmux.audit import lifecycle
from mcpmux.control import ControlServer, endpoint_path
from mcpmux.downstream.connection import Downstream
from mcpmux.downstream.orphans import sweep_orphans
from mcpmux.downstream.process import child_watcher, kill_live_groups
from mcpmux.downstream.state import ServerState
from mcpmux.front.degraded import Degraded
from mcpmux.front.server import Front
from mcpmux.gateway import Gateway, open_gateway
from mcpmux.paths import StatePaths
from mcpmux.profile.model import Profile
from mcpmux.secrets.redact import Redactor
from mcpmux.secrets.store import SecretStore

logger = logging.getLogger("mcpmux")

HANDSHAKE_HEAD_START_SECONDS = 1.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STARTED_AT = datetime.now(UTC).isoformat(timespec="seconds")


async def serve(
    profile: Profile,
    *,
    paths: StatePaths | None = None,
    store: SecretStore | None = None,
    follow_active: bool = False,
) -> None:
    """Serve `profile` to the host on stdin/stdout until stdin closes or a signal arrives.

    The profile is hot-reloaded on save; with `follow_active` (no `--profile` given)
    the serve also follows `mcpmux profile use`.
    """
    with child_watcher():  # the process's one loop: downstream exits are watched without a thread each
        await _serve(profile, paths=paths, store=store, follow_active=follow_active)


async def _serve(profile: Profile, *, paths: StatePaths | None, store: SecretStore | None, follow_active: bool) -> None:

    shutdown = Shutdown()
    async with anyio.create_task_group() as guard:  # signals stay handled until every downstream is gone
        guard.start_soon(watch_signals, shutdown)
        async with open_gateway(profile, paths=paths, store=store, start=False) as gateway:
            gateway.audit.write(lifecycle.serve_start(os.getpid(), __version__, profile_files=profile.source_hashes))
            front = Front(gateway.supervisor, gateway.relay)
            with shutdown.serving:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sweep_orphans)  # orphans of a dead mcpmux; never those of a live one (orphans.py)
                    control = ControlServer(
                        {
                            "status": lambda params: status_report(gateway, follow_active),
                            "signed_in": lambda params: signed_in(gateway, params),
                        }
                    )
                    await tg.start(control.serve, endpoint_path(paths=gateway.paths))
                    tg.start_soon(_start_after_handshake, gateway, front)
                    tg.start_soon(partial(reload.watch, gateway, follow_active=follow_active))
                    await front.run()
                    shutdown.begun = True
                    tg.cancel_scope.cancel()
            signalled = shutdown.signalled
            reason = f"received {signalled[0]}" if signalled else "the host closed stdin"
            gateway.audit.write(lifecycle.serve_stop(os.getpid(), reason))
        guard.cancel_scope.cancel()


def _protocol(ds: Downstream | None) -> str | None:
    """The protocol version the downstream speaks: its handshake's, or the 2026-07-28 one it was probed at."""
    return ds.initialize_result.protocol_version if ds is not None and ds.initialize_result is not None else None


async def serve_unable(problem: str, *, paths: StatePaths | None = None, control: bool = True) -> None:
    """Answer the host with `problem` (front/degraded.py) until stdin closes or a signal arrives.

    With `control`, `mcpmux status` shows the problem too; without (the state folder is unsafe),
    nothing is written into the state folder.
    """

    async def status(params: dict[str, Any]) -> dict[str, Any]:  # the shape of `status_report`, nothing running
        return {
            "pid": os.getpid(),
            "profile": None,
            "profile_hash": None,
            "follows_active": False,
            "reload_error": None,
            "startup_error": problem,
            "host": None,
            "started_at": _STARTED_AT,
            "servers": [],
        }

    shutdown = Shutdown()
    async with anyio.create_task_group() as guard:
        guard.start_soon(watch_signals, shutdown)
        with shutdown.serving:
            async with anyio.create_task_group() as tg:
                if control:
                    await tg.start(ControlServer({"status": status}).serve, endpoint_path(paths=paths))
                await Degraded(problem).run()
                shutdown.begun = True
                tg.cancel_scope.cancel()
        guard.cancel_scope.cancel()


async def status_report(gateway: Gateway, follow_active: bool) -> dict[str, Any]:
    """The `status` answer of the control endpoint (shape: cli/status_cmd.py), every secret redacted."""
    redactor = gateway.supervisor.redactor
    servers = server_rows(gateway.supervisor.states, redactor)
    return {
        "pid": os.getpid(),
        "profile": gateway.supervisor.profile.name,
        "profile_hash": gateway.supervisor.profile.sha256,  # of the bytes parsed, as the audit log records it
        "follows_active": follow_active,
        "reload_error": _redacted(redactor, gateway.supervisor.reload_error),
        "startup_error": None,  # what a serve that could not start says instead of serving (`serve_unable`)
        "host": gateway.relay.host.name,
        "started_at": _STARTED_AT,
        "servers": servers,
    }


def server_rows(states: Mapping[str, ServerState], redactor: Redactor) -> list[dict[str, Any]]:
    """Each server's row of the `status` answer (also each shared gateway host's own copies: shared/daemon.py)."""
    now = time.monotonic()
    return [
        {
            "name": name,
            "status": state.status,
            "pid": state.downstream.pid if state.downstream else None,
            "uptime_seconds": round(now - state.started_at, 1) if state.started_at and state.downstream else None,
            "protocol": _protocol(state.downstream),
            "restarts": state.restart_count,
            "last_error": _redacted(redactor, state.last_error),
            "log_path": str(state.log_path),
            "tools": len(state.listing.tools),
        }
        for name, state in states.items()
    ]


def _redacted(redactor: Redactor, text: str | None) -> str | None:
    return redactor.redact_text(text) if text is not None and redactor else text


async def signed_in(gateway: Gateway, params: dict[str, Any]) -> dict[str, Any]:
    """`auth login` renewed a server's sign-in: start it again if it failed for want of one."""
    server, url = params.get("server"), params.get("url")
    if not isinstance(server, str) or not isinstance(url, str):
        raise ValueError('"signed_in" needs "server" and "url" strings')
    return {"restarted": gateway.supervisor.retry(server, url)}


async def _start_after_handshake(gateway: Gateway, front: Front) -> None:
    """Spawn downstreams once the host has its `initialize` answer (or soon, if it is slow to ask).

    Twenty Python downstreams importing at once starve a 2-core machine; answering
    the host first keeps `initialize` fast, and a call or listing made meanwhile
    simply waits for the start-up like any other. A server never started before
    has no remembered instructions (server_facts.py), so then all start at once
    and the answer waits for them, boundedly.
    """
    if all(facts is not None for facts in gateway.supervisor.facts.values()):
        with anyio.move_on_after(HANDSHAKE_HEAD_START_SECONDS):
            await front.answered.wait()
    gateway.start()


@dataclass(slots=True)
class Shutdown:
    serving: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    begun: bool = False
    signalled: list[str] = field(default_factory=list[str])


async def watch_signals(shutdown: Shutdown) -> None:
    """A signal ends serving; downstreams are then stopped gently (stdin EOF → SIGTERM → SIGKILL, bounded).

    A signal that arrives while they are being stopped ends their process groups at once: a host
    that loses patience (the SDK's stdio client SIGTERMs 2 s after closing stdin, then SIGKILLs)
    must not kill mcpmux midway, which would orphan the children of a slow downstream.
    """
    try:
        with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not shutdown.begun:
                    shutdown.begun = True
                    shutdown.signalled.append(name)
                    logger.info("received %s; shutting down", name)
                    shutdown.serving.cancel()
                else:
                    logger.info("received %s while shutting down; ending the downstreams now", name)
                    kill_live_groups()
    finally:
        # Closing the receiver restored the default actions; every downstream is gone by now and the process
        # only has to exit. Ignored from here (no await in between), a host's next SIGTERM cannot turn that
        # clean exit into a kill (exit -15) or a late SIGINT into a traceback. SIGKILL still ends it.
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
