"""Wiring: profile → secrets → supervisor → relay → front, under one task group."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from mcpmux import __version__
from mcpmux.audit import AuditLog
from mcpmux.paths import StatePaths, ensure_private_dir, state_paths
from mcpmux.profile_model import Profile
from mcpmux.relay import Relay
from mcpmux.secrets import KeyringStore, SecretStore
from mcpmux.supervisor import Supervisor

if TYPE_CHECKING:
    from mcpmux.front import Front

logger = logging.getLogger("mcpmux")

HANDSHAKE_HEAD_START_SECONDS = 1.0


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
    profile: Profile, *, paths: StatePaths | None = None, store: SecretStore | None = None, start: bool = True
) -> AsyncGenerator[Gateway]:
    """Start every downstream of `profile` in the background (or on `gateway.start()`); on exit, end them all."""
    paths = paths or state_paths()
    ensure_private_dir(paths.state_dir)
    audit = AuditLog(paths.audit_log)
    supervisor = Supervisor(profile, store=store or KeyringStore(), paths=paths)
    relay = Relay(supervisor, audit)
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
        audit.close()


async def serve(profile: Profile, *, paths: StatePaths | None = None, store: SecretStore | None = None) -> None:
    """Serve `profile` to the host on stdin/stdout until stdin closes or a signal arrives."""
    from mcpmux.front import Front  # the SDK server import is only needed here

    async with open_gateway(profile, paths=paths, store=store, start=False) as gateway:
        gateway.audit.write(
            {"event": "serve_start", "profile": profile.name, "pid": os.getpid(), "version": __version__}
        )
        front = Front(gateway.supervisor, gateway.relay)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_signal, tg.cancel_scope)
            tg.start_soon(_start_after_handshake, gateway, front)
            await front.run()
            tg.cancel_scope.cancel()
        gateway.audit.write({"event": "serve_stop", "profile": profile.name, "pid": os.getpid()})


async def _start_after_handshake(gateway: Gateway, front: Front) -> None:
    """Spawn downstreams once the host has its `initialize` answer (or soon, if it is slow to ask).

    Twenty Python downstreams importing at once starve a 2-core machine; answering
    the host first keeps `initialize` fast, and a call or listing made meanwhile
    simply waits for the start-up like any other.
    """
    with anyio.move_on_after(HANDSHAKE_HEAD_START_SECONDS):
        await front.answered.wait()
    gateway.start()


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
