"""Live profile changes for a running `serve`: hot reload on save, and following `mcpmux profile use`.

The profile's own file and every file it extends are watched (watchfiles, so the
OS notifies rather than mcpmux polling), and, for a serve not pinned with
`--profile`, the active-profile record too. A change is applied like a switch:
downstreams whose settings are identical keep running, the host hears
`list_changed`. An edit that does not validate, or content that is no longer
trusted, keeps the old profile running and is reported on stderr and in
`mcpmux status`; trusting the new content (`mcpmux profile trust`) applies it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import watchfiles

from mcpmux.audit import lifecycle
from mcpmux.audit.log import AuditLog
from mcpmux.downstream.supervisor import Supervisor
from mcpmux.errors import MCPMuxError
from mcpmux.paths import state_paths
from mcpmux.profile.inherit import profile_sources
from mcpmux.profile.load import load_profile
from mcpmux.profile.lookup import resolve_profile_path
from mcpmux.profile.model import Profile
from mcpmux.profile.trust import require_trusted, trust_file

logger = logging.getLogger("mcpmux")

DEBOUNCE_MS = 300
WAKE_MS = 250
"""How often the watcher thread wakes when nothing changes: watchfiles cannot cancel the thread mid-wait, so this
bounds how long a shutdown waits for it (without it, a quiet folder held `serve` up to 5 s after the host left)."""


class Gateway(Protocol):
    """What a live change needs of the running gateway (gateway.Gateway is one)."""

    @property
    def supervisor(self) -> Supervisor: ...
    @property
    def audit(self) -> AuditLog: ...


def apply_profile(gateway: Gateway, profile: Profile) -> dict[str, list[str]]:
    """Switch the running gateway to `profile` (already loaded and trusted) and record it."""
    old = gateway.supervisor.profile
    result = gateway.supervisor.switch(profile)
    # The hashes `load_profile` carries (of the bytes parsed), never a re-read: the log names what runs.
    gateway.audit.bind(profile=profile.name, profile_hash=profile.sha256)
    files = profile.source_hashes
    gateway.audit.write(
        lifecycle.profile_switch(old.name, old.sha256, profile.name, profile.sha256, profile_files=files)
    )
    logger.warning(
        "profile '%s' applied: kept %s, started %s, stopped %s",
        profile.name,
        result["kept"] or "none",
        result["started"] or "none",
        result["stopped"] or "none",
    )
    return result


async def watch(gateway: Gateway, *, follow_active: bool) -> None:
    """Apply saved edits of the serving profile (and `profile use`, when following) until cancelled."""
    active_file = state_paths().active_profile_file
    while True:
        current = gateway.supervisor.profile
        # The trust records too: `mcpmux profile trust` after an edit is what lets the edit apply.
        watched = {p.resolve() for p in [*profile_sources(current), trust_file()]}
        if follow_active:
            watched.add(active_file.resolve())
        folders = sorted({p.parent for p in watched if p.parent.is_dir()})

        def relevant(change: watchfiles.Change, path: str) -> bool:
            return Path(path).resolve() in watched  # noqa: B023 - the set of this round, on purpose

        changes = watchfiles.awatch(  # pyright: ignore[reportUnknownMemberType]
            *folders, watch_filter=relevant, debounce=DEBOUNCE_MS, rust_timeout=WAKE_MS, recursive=False
        )
        async for _ in changes:
            target = resolve_profile_path(None) if follow_active else current.path
            try:
                profile = load_profile(target)
                require_trusted(profile)
            except MCPMuxError as exc:
                gateway.supervisor.reload_error = str(exc)
                logger.error("profile change not applied; still serving '%s':\n%s", current.name, exc)
                continue
            gateway.supervisor.reload_error = None
            if profile != current:
                apply_profile(gateway, profile)
                break  # watch the new profile's files
