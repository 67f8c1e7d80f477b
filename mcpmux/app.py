"""Wiring: profile → secrets → supervisor → relay → front, under one task group."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from mcpmux import __version__
from mcpmux.audit import AuditLog
from mcpmux.paths import StatePaths, ensure_private_dir, state_paths
from mcpmux.profile_model import Profile
from mcpmux.relay import Relay
from mcpmux.secrets import KeyringStore, SecretStore
from mcpmux.supervisor import Supervisor

logger = logging.getLogger("mcpmux")


@dataclass(frozen=True, slots=True)
class Gateway:
    profile: Profile
    paths: StatePaths
    supervisor: Supervisor
    relay: Relay
    audit: AuditLog


@asynccontextmanager
async def open_gateway(
    profile: Profile, *, paths: StatePaths | None = None, store: SecretStore | None = None
) -> AsyncGenerator[Gateway]:
    """Start every downstream of `profile` in the background; on exit, end them all."""
    paths = paths or state_paths()
    ensure_private_dir(paths.state_dir)
    audit = AuditLog(paths.audit_log)
    supervisor = Supervisor(profile, store=store or KeyringStore(), paths=paths)
    relay = Relay(supervisor, audit)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run, name="supervisor")
            try:
                yield Gateway(profile, paths, supervisor, relay, audit)
            finally:
                tg.cancel_scope.cancel()
    finally:
        audit.close()


async def serve(profile: Profile, *, paths: StatePaths | None = None, store: SecretStore | None = None) -> None:
    """Serve `profile` to the host on stdin/stdout until stdin closes or a signal arrives."""
    from mcpmux.front import Front  # the SDK server import is only needed here

    async with open_gateway(profile, paths=paths, store=store) as gateway:
        gateway.audit.write(
            {"event": "serve_start", "profile": profile.name, "pid": os.getpid(), "version": __version__}
        )
        front = Front(gateway.supervisor, gateway.relay)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_signal, tg.cancel_scope)
            await front.run()
            tg.cancel_scope.cancel()
        gateway.audit.write({"event": "serve_stop", "profile": profile.name, "pid": os.getpid()})


async def _cancel_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
