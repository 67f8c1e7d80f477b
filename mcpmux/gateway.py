"""Wiring: profile → secrets → supervisor → relay → front, under one task group."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from mcpmux import __version__, reload
from mcpmux.audit import events as audit_events
from mcpmux.audit import telemetry
from mcpmux.audit.key import AuditKey, obtain_key
from mcpmux.audit.log import AuditLog
from mcpmux.control import ControlServer, endpoint_path
from mcpmux.downstream.launch import Connect, launch
from mcpmux.downstream.orphans import sweep_orphans
from mcpmux.downstream.process import kill_live_groups
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.errors import AuditError
from mcpmux.paths import StatePaths, ensure_private_dir, state_paths
from mcpmux.profile.model import Profile
from mcpmux.relay.host import Host
from mcpmux.relay.relay import Relay
from mcpmux.secrets.backends import default_store
from mcpmux.secrets.redact import Redactor
from mcpmux.secrets.scrub import RedactingFilter
from mcpmux.secrets.store import SecretStore

if TYPE_CHECKING:
    from mcpmux.front.server import Front

logger = logging.getLogger("mcpmux")

HANDSHAKE_HEAD_START_SECONDS = 1.0
_STARTED_AT = datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Gateway:
    profile: Profile
    paths: StatePaths
    supervisor: Supervisor
    relay: Relay
    audit: AuditLog
    start: Callable[[], None]
    """Start the downstreams (once); `open_gateway(start=False)` leaves that to the caller."""


@asynccontextmanager
async def open_gateway(
    profile: Profile,
    *,
    paths: StatePaths | None = None,
    store: SecretStore | None = None,
    start: bool = True,
    record_pins: bool = True,
    clock: Callable[[], datetime] | None = None,
    connect: Connect = launch,
) -> AsyncGenerator[Gateway]:
    """Start every downstream of `profile` in the background (or on `gateway.start()`); on exit, end them all."""
    paths = paths or state_paths()
    ensure_private_dir(paths.state_dir)
    telemetry.setup()
    supervisor: Supervisor | None = None

    def redactor() -> Redactor:  # the supervisor knows the secrets; events written before it exists have none
        return supervisor.redactor if supervisor is not None else Redactor({})

    audit = AuditLog(paths.audit_log, key=await _audit_key(paths), observers=[telemetry.observe], redactor=redactor)
    audit.bind(serve=uuid.uuid4().hex, profile=profile.name, profile_hash=profile.sha256)  # of the bytes parsed
    store = store or default_store()
    supervisor = Supervisor(
        profile, store=store, paths=paths, audit=audit, record_pins=record_pins, clock=clock, connect=connect
    )
    host = Host(on_bind=lambda info: audit.bind(host=info.name, host_version=info.version))
    relay = Relay(supervisor, audit, host)
    scrub = RedactingFilter(lambda: supervisor.redactor)
    logging.getLogger("mcpmux").addFilter(scrub)
    try:
        async with anyio.create_task_group() as tg:
            started = False

            def start_supervisor() -> None:
                nonlocal started
                if not started:
                    started = True
                    tg.start_soon(supervisor.run, name="supervisor")

            if start:
                start_supervisor()
            try:
                yield Gateway(profile, paths, supervisor, relay, audit, start_supervisor)
            finally:
                tg.cancel_scope.cancel()
    finally:
        logging.getLogger("mcpmux").removeFilter(scrub)
        audit.close()
        telemetry.shutdown()


async def _audit_key(paths: StatePaths) -> AuditKey | None:
    """The audit key (off the event loop: each keyring call is bounded, but may take its whole bound)."""
    try:
        key, no_keyring = await anyio.to_thread.run_sync(obtain_key, paths.audit_log)
    except AuditError as exc:
        logger.error("%s; the audit log is written unkeyed until this is fixed", exc)
        return None
    if no_keyring is not None:
        logger.info("audit key: %s, so it lives in %s", no_keyring, key.where)
    return key


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
    from mcpmux.front.server import Front  # the SDK server import is only needed here

    shutdown = _Shutdown()
    async with anyio.create_task_group() as guard:  # signals stay handled until every downstream is gone
        guard.start_soon(_watch_signals, shutdown)
        async with open_gateway(profile, paths=paths, store=store, start=False) as gateway:
            gateway.audit.write(audit_events.serve_start(os.getpid(), __version__, profile_files=profile.source_hashes))
            front = Front(gateway.supervisor, gateway.relay)
            with shutdown.serving:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sweep_orphans)  # orphans of a dead mcpmux; never those of a live one (orphans.py)
                    control = ControlServer({"status": lambda params: status_report(gateway, follow_active)})
                    await tg.start(control.serve, endpoint_path(paths=gateway.paths))
                    tg.start_soon(_start_after_handshake, gateway, front)
                    tg.start_soon(partial(reload.watch, gateway, follow_active=follow_active))
                    await front.run()
                    shutdown.begun = True
                    tg.cancel_scope.cancel()
            signalled = shutdown.signalled
            reason = f"received {signalled[0]}" if signalled else "the host closed stdin"
            gateway.audit.write(audit_events.serve_stop(os.getpid(), reason))
        guard.cancel_scope.cancel()


async def status_report(gateway: Gateway, follow_active: bool) -> dict[str, Any]:
    """The `status` answer of the control endpoint (shape: cli/status_cmd.py), every secret redacted."""
    redactor = gateway.supervisor.redactor

    def redact(text: str | None) -> str | None:
        return redactor.redact_text(text) if text is not None and redactor else text

    now = time.monotonic()
    servers = [
        {
            "name": name,
            "status": state.status,
            "pid": state.downstream.pid if state.downstream else None,
            "uptime_seconds": round(now - state.started_at, 1) if state.started_at and state.downstream else None,
            "restarts": state.restart_count,
            "last_error": redact(state.last_error),
            "log_path": str(gateway.paths.server_log(name)),
            "tools": len(state.listing.tools),
        }
        for name, state in gateway.supervisor.states.items()
    ]
    return {
        "pid": os.getpid(),
        "profile": gateway.supervisor.profile.name,
        "profile_hash": gateway.supervisor.profile.sha256,  # of the bytes parsed, as the audit log records it
        "follows_active": follow_active,
        "reload_error": redact(gateway.supervisor.reload_error),
        "host": gateway.relay.host.name,
        "started_at": _STARTED_AT,
        "servers": servers,
    }


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
class _Shutdown:
    serving: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    begun: bool = False
    signalled: list[str] = field(default_factory=list[str])


async def _watch_signals(shutdown: _Shutdown) -> None:
    """A signal ends serving; downstreams are then stopped gently (stdin EOF → SIGTERM → SIGKILL, bounded).

    A signal that arrives while they are being stopped ends their process groups at once: a host
    that loses patience (the SDK's stdio client SIGTERMs 2 s after closing stdin, then SIGKILLs)
    must not kill mcpmux midway, which would orphan the children of a slow downstream.
    """
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
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
