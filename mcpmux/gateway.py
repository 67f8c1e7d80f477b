"""The composition root: profile → secrets → supervisor → relay (and audit), under one task group.

`serve.py` puts the front on top of it for a host; the CLI's one-shot commands use it bare.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import anyio

from mcpmux.audit import telemetry
from mcpmux.audit.key import AuditKey, obtain_key
from mcpmux.audit.log import AuditLog
from mcpmux.downstream.launch import Connect, launch
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

logger = logging.getLogger("mcpmux")


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
    kind: type[Supervisor] = Supervisor,
) -> AsyncGenerator[Gateway]:
    """Start every downstream of `profile` in the background (or on `gateway.start()`); on exit, end them all.

    `kind`: the supervisor (a shared gateway's keeps only the servers its hosts share: downstream/private.py)."""
    paths = paths or state_paths()
    ensure_private_dir(paths.state_dir)
    telemetry.setup()
    supervisor: Supervisor | None = None

    def redactor() -> Redactor:  # the supervisor knows the secrets; events written before it exists have none
        return supervisor.redactor if supervisor is not None else Redactor({})

    audit = AuditLog(paths.audit_log, key=await _audit_key(paths), observers=[telemetry.observe], redactor=redactor)
    audit.bind(serve=uuid.uuid4().hex, profile=profile.name, profile_hash=profile.sha256)  # of the bytes parsed
    store = store or default_store()
    supervisor = kind(
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
