"""The PATH of the user's login shell: where a command lives that a GUI host's minimal PATH misses.

Desktop hosts start `mcpmux serve` from launchd or a desktop file, with a PATH like
`/usr/bin:/bin`: `npx`, `uvx`, `docker` and version-manager shims live elsewhere. When a
server's `command` is not found on the PATH mcpmux inherited, the launcher asks the user's
login shell (`$SHELL -l -c`, else the shell of the user's account) for its PATH, once per
process, bounded, and looks there. The answer is marked, since login scripts may print.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import anyio

LOGIN_SHELL_SECONDS = 5.0
"""How long the login shell may take to print its PATH (its profile scripts run first)."""
_MARK = "__mcpmux_login_path__="
_PRINT_PATH = f"printf '\\n{_MARK}%s\\n' \"$PATH\""


@dataclass(frozen=True, slots=True)
class LoginPath:
    """The login shell's PATH, or why there is none (no shell, it failed, it took too long)."""

    shell: str
    path: str | None
    why_not: str = ""


_cached: LoginPath | None = None
_lock: anyio.Lock | None = None


def login_shell() -> str:
    """$SHELL, else the login shell of the user's account ("" if neither is known)."""
    shell = os.environ.get("SHELL", "")
    if not shell:
        with contextlib.suppress(KeyError):
            shell = pwd.getpwuid(os.getuid()).pw_shell
    return shell


async def login_path() -> LoginPath:
    """The login shell's PATH, asked once per process (concurrent callers share the one answer)."""
    global _cached, _lock
    if _lock is None:
        _lock = anyio.Lock()
    async with _lock:
        if _cached is None:
            _cached = await _ask(login_shell())
        return _cached


async def _ask(shell: str) -> LoginPath:
    if not shell or not Path(shell).is_absolute() or not os.access(shell, os.X_OK):
        return LoginPath(shell, None, f"no login shell to ask ($SHELL is {shell or 'unset'})")
    # Its own session: on timeout the whole group goes, whatever the login scripts started.
    async with await anyio.open_process(
        [shell, "-l", "-c", _PRINT_PATH],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        out = b""
        with anyio.move_on_after(LOGIN_SHELL_SECONDS) as scope:
            async for chunk in proc.stdout:
                out += chunk
            await proc.wait()
        if scope.cancelled_caught:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return LoginPath(shell, None, f"{shell} -l took over {LOGIN_SHELL_SECONDS:g} s to start")
    found = [line[len(_MARK) :] for line in out.decode(errors="replace").splitlines() if line.startswith(_MARK)]
    if proc.returncode != 0 or not found or not found[-1]:
        return LoginPath(shell, None, f"{shell} -l did not print its PATH (exit code {proc.returncode})")
    return LoginPath(shell, found[-1])


def merged(login: str, inherited: str) -> str:
    """The login shell's PATH first (as the user's terminal resolves), then inherited folders it lacks."""
    folders = login.split(os.pathsep)
    return os.pathsep.join([*folders, *(f for f in inherited.split(os.pathsep) if f and f not in folders)])
