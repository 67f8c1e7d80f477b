"""Shared mode on the command line: `serve --shared` as a pipe to the profile's gateway, and the gateway itself.

`mcpmux _gateway` is what a `serve --shared` starts (detached, spawn.py); it is hidden: nobody runs it by hand.
"""

from __future__ import annotations

import os
from typing import Annotated

import anyio
import typer

from mcpmux.cli._console import say
from mcpmux.cli._options import ProfileOption
from mcpmux.errors import MCPMuxError
from mcpmux.profile.model import Profile

SHARED_ENV = "MCPMUX_SHARED"
"""`MCPMUX_SHARED=1` (the user's setting, e.g. in a host's server entry) makes every `serve` shared."""


def wants_shared(flag: bool, profile: Profile) -> bool:
    return flag or profile.shared or os.environ.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes")


def serve_shared(profile: Profile, profile_option: str | None) -> bool:
    """Attach to the profile's shared gateway and pipe the host's stdio to it; False when shared mode cannot be
    used here (then the caller serves in-process, as without `--shared`)."""
    from mcpmux.paths import state_paths
    from mcpmux.shared.address import gateway_key
    from mcpmux.shared.pipe import Fallback, attach, log_of
    from mcpmux.shared.pump import exec_pump

    paths = state_paths()
    following = profile_option is None  # follows `mcpmux profile use`: one gateway for "the active profile"
    key = gateway_key(None if following else profile.path)
    argv = ["_gateway"] if following else ["_gateway", "--profile", str(profile.path)]
    try:
        conn, handed_off = attach(paths, key, argv)
    except Fallback as exc:
        say(f"warning: serving without sharing: {exc}")
        return False
    exec_pump(conn, str(log_of(paths, key)), handed_off=handed_off)  # never returns
    return True


def gateway(
    profile: ProfileOption = None,
    key: Annotated[str, typer.Option("--key")] = "",
    ready_fd: Annotated[int, typer.Option("--ready-fd")] = -1,
) -> None:
    """The shared gateway of a profile (started by `serve --shared`)."""
    from mcpmux.cli.gateway_cmd import log_to_stderr
    from mcpmux.cli.trust_cmd import admit
    from mcpmux.paths import check_state_private
    from mcpmux.profile.lookup import resolve_profile
    from mcpmux.shared.daemon import Ready, run_gateway

    ready = Ready(ready_fd)
    log_to_stderr(verbose=True)
    try:
        check_state_private()
        resolved = resolve_profile(profile)
        admit(resolved)  # trusted already by the serve that started it (`--trust` records it); checked again here
        follow = profile is None

        async def run() -> None:
            await run_gateway(resolved, key=key, follow_active=follow, ready=ready)

        anyio.run(run, backend="asyncio")
    except (MCPMuxError, OSError) as exc:
        ready.say(f"error: {exc}")
        raise
    finally:
        ready.say("error: the gateway exited while starting")


def register(app: typer.Typer) -> None:
    app.command("_gateway", hidden=True)(gateway)
