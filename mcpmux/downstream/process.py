"""Spawning and ending downstream processes so that none outlives mcpmux.

Contract:
- Every downstream starts in its own session (so its process group holds its
  children too: `npx` → `node` → a browser), with stdin/stdout pipes for the
  protocol and stderr straight into its own log file (never a pipe that could
  fill up and stall it, never the host's stderr).
- On Linux each child also asks the kernel for SIGKILL when mcpmux dies
  (`PR_SET_PDEATHSIG`), which covers a SIGKILLed mcpmux for direct children.
  util-linux's `setpriv --pdeathsig KILL` sets it and execs the command: a
  `preexec_fn` would do the same, but it forces a full fork of mcpmux and Python
  code in the child, 15-35 ms per spawn against ~1 ms (twenty downstreams took
  0.3-0.7 s to spawn instead of 0.03 s); the hook remains the fallback.
- `terminate` closes stdin, waits, then SIGTERMs and finally SIGKILLs the whole
  process group, each wait bounded; it then signals the group once more so that
  grandchildren which outlived a cooperative leader go too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import IO

import anyio

from mcpmux import wire

STDIN_GRACE_SECONDS = 2.0
TERM_GRACE_SECONDS = 2.0

INHERITED_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
"""The only variables a downstream inherits from mcpmux's environment; the profile's `env` adds the rest."""

MARK_ENV = "MCPMUX_PARENT_PID"
"""Set in every downstream's environment so that orphans of a dead mcpmux can be recognised."""


def base_environment() -> dict[str, str]:
    env = {k: v for k in INHERITED_ENV if (v := os.environ.get(k)) is not None}
    env[MARK_ENV] = str(os.getpid())
    return env


def with_search_path(env: Mapping[str, str], folders: tuple[str, ...]) -> dict[str, str]:
    """`env` with the profile's `path` folders ahead of its PATH (so the server's own children find theirs too)."""
    if not folders:
        return dict(env)
    return {**env, "PATH": os.pathsep.join([*folders, env.get("PATH", os.defpath)])}


def resolve_command(command: str, env: Mapping[str, str], cwd: Path | None) -> str | None:
    """The executable a downstream's `command` names, searched on the downstream's own PATH."""
    if os.sep in command:
        path = Path(command) if Path(command).is_absolute() or cwd is None else cwd / command
        return str(path) if os.access(path, os.X_OK) else None
    # mcpmux's own bin folder comes last, so servers installed beside it (in its venv) resolve unactivated.
    search = os.pathsep.join([env.get("PATH", os.defpath), str(Path(sys.executable).parent)])
    return shutil.which(command, path=search)


def _parent_death_prefix() -> list[str]:
    """argv that makes the command die with mcpmux (Linux with util-linux), else []."""
    if not sys.platform.startswith("linux"):
        return []
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_PDEATHSIG_PREFIX = _parent_death_prefix()


def _parent_death_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux") or _PDEATHSIG_PREFIX:
        return None
    # Resolved before fork: the child runs only the C call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    return hook


_PDEATHSIG_HOOK = _parent_death_hook()


async def spawn(
    protocol_factory: Callable[[], asyncio.SubprocessProtocol],
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    stderr: IO[bytes],
) -> tuple[asyncio.SubprocessTransport, asyncio.SubprocessProtocol]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        protocol_factory,
        *_PDEATHSIG_PREFIX,
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_PDEATHSIG_HOOK,
    )
    _live_groups.add(transport.get_pid())
    if (stdout := transport.get_pipe_transport(1)) is not None:
        wire.widen_pipe(stdout.get_extra_info("pipe").fileno())  # results come this way
    return transport, protocol


@contextlib.contextmanager
def child_watcher() -> Generator[None]:
    """Within it, Python 3.11 learns of downstream exits through pidfds, not a thread per process.

    3.11's default watcher starts a thread for each spawn and waits until that thread runs;
    on a busy 2-core machine every spawn then waits for a scheduling slot, and twenty
    downstreams took 1.1-1.3 s to spawn against 0.29-0.44 s with pidfds under the same
    load. Python 3.12 and later use pidfds already. Call it inside the running loop.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        yield
        return
    # Deprecated from 3.12 on, where this line is never reached.
    previous = asyncio.get_child_watcher()  # pyright: ignore[reportDeprecated]
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.set_child_watcher(watcher)  # pyright: ignore[reportDeprecated]
    try:
        yield
    finally:
        asyncio.set_child_watcher(previous)  # pyright: ignore[reportDeprecated]


_IMPORTED = time.monotonic()


def process_age() -> float:
    """Seconds since this process started: the kernel's start time on Linux, else since this module's import."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(") ", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED


_live_groups: set[int] = set()
"""Process groups spawned and not yet through `terminate` (each downstream leads its own)."""


def kill_live_groups() -> None:
    """SIGKILL every downstream's whole group at once, those being terminated gently included."""
    for pgid in list(_live_groups):
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _wait(exited: asyncio.Event, seconds: float) -> bool:
    with anyio.move_on_after(seconds):
        await exited.wait()
    return exited.is_set()


async def terminate(transport: asyncio.SubprocessTransport, exited: asyncio.Event) -> None:
    """End a downstream and its process group: stdin EOF → SIGTERM → SIGKILL, each wait bounded."""
    pid = transport.get_pid()
    stdin = transport.get_pipe_transport(0)
    if stdin is not None and not exited.is_set():
        stdin.close()
        await _wait(exited, STDIN_GRACE_SECONDS)
    if not exited.is_set():
        _signal_group(pid, signal.SIGTERM)
        if not await _wait(exited, TERM_GRACE_SECONDS):
            _signal_group(pid, signal.SIGKILL)
            await _wait(exited, TERM_GRACE_SECONDS)
    # The leader is gone; anything left in its group was started by it and goes too.
    if _signal_group(pid, signal.SIGTERM):
        await anyio.sleep(0.05)  # a brief chance to exit cleanly, not a synchronisation point
        _signal_group(pid, signal.SIGKILL)
    _live_groups.discard(pid)
    transport.close()
