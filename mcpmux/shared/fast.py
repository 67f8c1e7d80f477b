"""`serve --shared` to a gateway that already runs, before the CLI loads: what makes attaching cheap.

`mcpmux` checks this first for `serve`: when the arguments are only `--shared` (or `MCPMUX_SHARED=1`),
`--profile` and `--quiet`, and the profile's gateway is listening and speaks this version, the process
becomes the bare pipe (pump.py) without importing the CLI, the profile loader or the SDK. Anything else
(no gateway yet, another version, other options, a profile to find by a name) returns, and the
full command takes over: it loads and admits the profile and starts the gateway when needed. The
gateway runs only the profile it admitted itself, so attaching to it runs nothing new.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import check_state_private, state_paths
from mcpmux.shared import address, sock
from mcpmux.shared.pump import exec_pump

_TRUE = ("1", "true", "yes")


def _profile_arg(argv: list[str]) -> tuple[bool, str | None, bool]:
    """(understood, the --profile value, --shared given) for `serve`'s arguments."""
    profile: str | None = None
    shared = False
    args = iter(argv)
    for arg in args:
        if arg == "--shared":
            shared = True
        elif arg in ("--quiet", "-q"):
            continue
        elif arg in ("--profile", "-p"):
            profile = next(args, None)
            if profile is None:
                return False, None, False
        elif arg.startswith("--profile="):
            profile = arg.removeprefix("--profile=")
        else:
            return False, None, False
    return True, profile, shared


def attach_running(argv: list[str]) -> None:
    """Exec the pipe to the profile's running gateway; return when the full command must decide."""
    understood, profile, shared = _profile_arg(argv)
    if not understood or not (shared or os.environ.get("MCPMUX_SHARED", "").strip().lower() in _TRUE):
        return
    if profile is not None and "/" not in profile and not profile.endswith(".toml"):
        return  # a name: found by the full lookup (project folders first)
    paths = state_paths()
    try:
        check_state_private(paths)
        key = address.gateway_key(None if profile is None else Path(profile).expanduser())
        conn = sock.connect(address.socket_path(paths, key))
    except (MCPMuxError, OSError):
        return
    if conn is None:
        return
    try:
        line, handed_off = sock.greet(conn, key)
    except OSError:
        line, handed_off = b"", False
    if not line or address.mismatch(line) is not None:
        with contextlib.suppress(OSError):
            conn.close()
        return
    exec_pump(conn, str(address.log_path(paths, key)), handed_off=handed_off)
