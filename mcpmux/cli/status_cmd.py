"""`mcpmux status` (what each running serve is doing) and `mcpmux logs SERVER` (a downstream's stderr log)."""

from __future__ import annotations

import codecs
import os
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.table import Table

from mcpmux.cli._active import active_json, active_line
from mcpmux.cli._console import cell, err_console, out_console, say
from mcpmux.cli._json import print_json
from mcpmux.cli._options import ProfileOption
from mcpmux.errors import ControlError, MCPMuxError, ProfileError
from mcpmux.paths import state_paths
from mcpmux.printable import printable
from mcpmux.wire import as_object

FOLLOW_POLL_SECONDS = 0.25
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]+")
_LOG_NAME = re.compile(r"(?P<server>[A-Za-z0-9_-]+)\.[0-9]+\.log")
_STATE_STYLES = {"running": "green", "starting": "yellow", "restarting": "yellow", "failed": "red", "stopped": "dim"}


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _gather() -> list[dict[str, Any]]:
    """One entry per running serve: its status reply, or `{"pid", "error"}` if it did not answer."""
    from mcpmux.control import list_endpoints, request

    async def ask_all() -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        for endpoint in list_endpoints():
            try:
                replies.append({"pid": endpoint.pid, **await request(endpoint.path, "status")})
            except ControlError as exc:
                replies.append({"pid": endpoint.pid, "error": str(exc), "socket": str(endpoint.path)})
        return replies

    return anyio.run(ask_all, backend="asyncio")


def _hosts(entries: Any) -> str:
    """The hosts attached to a shared gateway, each with the pid of its `serve` (or "by URL")."""
    shown: list[str] = []
    listed: list[Any] = entries if isinstance(entries, list) else []  # pyright: ignore[reportUnknownVariableType]
    for entry in listed:
        host = as_object(entry) or {}
        piped = ", piped" if host.get("stdio") == "piped" else ""
        via = "by URL" if host.get("transport") == "http" else f"serve pid {host.get('pipe_pid') or '?'}{piped}"
        shown.append(f"{host.get('name') or '?'} ({via})")
    return ", ".join(shown) or "none (exits when idle)"


def _table(serve: dict[str, Any]) -> Table:
    kind = "shared gateway" if serve.get("shared") else "serve"
    title = f"mcpmux {kind} pid {serve.get('pid')} · profile {serve.get('profile')}"
    if isinstance(sha := serve.get("profile_hash"), str):
        title += f" (sha256 {sha[:12]})"
    if serve.get("url"):
        title += f" · url {serve['url']}"
    if serve.get("shared"):
        title += f" · hosts: {_hosts(serve.get('hosts'))}"
    else:
        title += f" · host {serve.get('host') or '-'}"
    if serve.get("started_at"):
        title += f" · since {serve['started_at']}"
    # Names, errors and the host's name come from profiles, downstreams and hosts: plain cells, escaped.
    table = Table(title=cell(title), title_justify="left")
    table.add_column("server", no_wrap=True)
    for header in ("state", "protocol", "pid", "uptime", "restarts", "tools"):
        table.add_column(header, no_wrap=True)
    table.add_column("last error", overflow="fold")
    table.add_column("log", overflow="fold")
    servers: list[Any] = serve.get("servers") or []
    for entry in servers:
        _row(table, as_object(entry) or {}, None)
    hosts: list[Any] = serve.get("hosts") or [] if serve.get("shared") else []
    for entry in hosts:  # each host's own copies of the `shared = false` servers
        host = as_object(entry) or {}
        own: list[Any] = host["servers"] if isinstance(host.get("servers"), list) else []
        for server in own:
            _row(table, as_object(server) or {}, f"{host.get('name') or '?'}, serve pid {host.get('pipe_pid') or '?'}")
    return table


def _row(table: Table, server: dict[str, Any], host: str | None) -> None:
    """One server's row; a host's own copy is named with its host."""
    status = server.get("status")
    name = server.get("name") if host is None else f"{server.get('name')} (for {host})"
    table.add_row(
        cell(name, "bold"),
        cell(status, _STATE_STYLES.get(str(status), "")),
        cell(server.get("protocol")),
        cell(server.get("pid")),
        cell(_duration(server.get("uptime_seconds"))),
        cell(server.get("restarts")),
        cell(server.get("tools")),
        cell(server.get("last_error"), "red"),
        cell(server.get("log_path"), "dim"),
    )


def _reload_error(serve: dict[str, Any]) -> None:
    """Why the last edit of the serve's profile was not applied: whole lines (the fix is a command to copy)."""
    error = serve.get("reload_error")
    if error:
        say(f"profile change not applied (still serving the profile as it was):\n{error}", out_console, style="red")


def status(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the active profile and every serve's status as one JSON object.")
    ] = False,
) -> None:
    """Show each running `mcpmux serve`: its profile and host, every downstream's state, a refused profile edit."""
    unsafe = _unsafe_state()
    serves = _gather()
    failed = unsafe is not None or any("error" in serve or serve.get("startup_error") for serve in serves)
    if as_json:
        print_json({"active": active_json(), "serves": serves})
        if failed:
            raise typer.Exit(1)
        return
    # What a serve started now without --profile would use (the running ones below may differ).
    err_console.print(active_line(), highlight=False, markup=False, soft_wrap=True)
    if unsafe is not None:  # every serve refuses to start until this is fixed, and cannot say so here
        say(f"error: {unsafe}")
    if not serves:
        err_console.print("no mcpmux serve is running (a host starts one with `mcpmux serve`)", highlight=False)
    else:
        for serve in serves:
            if "error" in serve:
                say(f"error: {serve['error']}")
            elif serve.get("startup_error"):  # it answers its host with this error (front/degraded.py)
                say(f"error: mcpmux serve pid {serve.get('pid')} could not start: {serve['startup_error']}")
            else:
                out_console.print(_table(serve))
                _reload_error(serve)
    if failed:
        raise typer.Exit(1)


def _unsafe_state() -> str | None:
    """Why `serve` refuses the state folders (others can write them), if it does."""
    from mcpmux.paths import check_state_private

    try:
        check_state_private()
    except MCPMuxError as exc:
        return str(exc)
    return None


def _newest(candidates: Iterable[Path], server: str) -> Path | None:
    """The most recently written of `server`'s logs (`<server>.<pid>.log`, one per serve process)."""

    def written(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    logs = [p for p in candidates if (m := _LOG_NAME.fullmatch(p.name)) is not None and m["server"] == server]
    return max(logs, key=written, default=None)


def _log_path(server: str, profile: str | None) -> Path:
    """The newest log of `server` for the profile (`-p`, else the active one); without `-p`, else any profile's."""
    if not _SERVER_NAME.fullmatch(server):
        raise MCPMuxError(f"{server!r} is not a server name (names use letters, digits, '_' and '-')")
    from mcpmux.profile.lookup import resolve_profile_path

    paths = state_paths()
    try:
        chosen: Path | None = resolve_profile_path(profile)
    except ProfileError:
        if profile is not None:
            raise
        chosen = None
    if chosen is not None:
        folder = paths.profile_logs_dir(chosen)
        if (found := _newest(folder.glob(f"{server}.*.log"), server)) is not None:
            return found
        if profile is not None:
            raise MCPMuxError(
                f"no log for server {server!r} of profile {chosen} (looked in {folder}): it has not been started "
                "with this MCPMUX_HOME (check the name with `mcpmux status` or `mcpmux profile show`)"
            )
    found = _newest(paths.logs_dir.glob(f"*/{server}.*.log"), server)
    if found is None:
        raise MCPMuxError(
            f"no log for server {server!r} in {paths.logs_dir}: it has not been started with this MCPMUX_HOME "
            "(check the name with `mcpmux status` or `mcpmux profile show`)"
        )
    if chosen is not None:
        say(f"note: profile {chosen} has no log for {server!r}; showing another profile's (choose with -p PROFILE)")
    return found


def _last_lines(path: Path, n: int) -> tuple[bytes, int]:
    """The last `n` lines of `path` and the offset they end at; read backwards, so a huge log costs O(n)."""
    with path.open("rb") as f:
        end = size = f.seek(0, os.SEEK_END)
        data = b""
        while end > 0 and data.count(b"\n") <= n:
            start = max(0, end - 64 * 1024)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
    lines = data.splitlines(keepends=True)
    return (b"".join(lines[-n:]) if n else b""), size


class _Escaping:
    """A server's log bytes → UTF-8 with control characters escaped (`printable`), chunk by chunk.

    The log is the server's own stderr: ESC sequences in it must not drive the terminal of whoever reads it.
    An undecodable byte (a raw C1 CSI, say) shows as `\\udcXX`.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._held = ""

    def __call__(self, chunk: bytes, *, final: bool = False) -> bytes:
        text = self._held + self._decoder.decode(chunk, final)
        # A chunk ending in "\r" may end in the middle of a "\r\n": held until the next chunk.
        text, self._held = (text[:-1], "\r") if text.endswith("\r") and not final else (text, "")
        return printable(text, lines=True).encode()


def _follow(path: Path, position: int, escaping: _Escaping) -> None:
    """Print what is appended to `path` until Ctrl-C; a rotated or truncated log is reopened from its start."""
    out = sys.stdout.buffer
    f = path.open("rb")
    try:
        f.seek(position)
        while True:
            chunk = f.read(64 * 1024)
            if chunk:
                out.write(escaping(chunk))
                out.flush()
                continue
            try:
                current = path.stat()
            except FileNotFoundError:
                current = None  # mid-rotation: the new file is not there yet
            if current is not None and (current.st_ino != os.fstat(f.fileno()).st_ino or current.st_size < f.tell()):
                f.close()
                f = path.open("rb")
                continue
            time.sleep(FOLLOW_POLL_SECONDS)  # the portable way to wait for a file to grow
    finally:
        f.close()


def logs(
    server: Annotated[str, typer.Argument(help="The downstream's name in the profile.")],
    profile: ProfileOption = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they are written.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many of the last lines to show.")] = 50,
) -> None:
    """Show the last lines of a downstream's stderr log (newest serve first; the active profile or -p); -f follows."""
    path = _log_path(server, profile)
    text, end = _last_lines(path, lines)
    say(f"==> {path}")  # which serve's log this is (one per serve process); stderr, so stdout is the log alone
    escaping = _Escaping()
    sys.stdout.buffer.write(escaping(text, final=not follow))
    sys.stdout.buffer.flush()
    if follow:
        _follow(path, end, escaping)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("logs")(logs)
