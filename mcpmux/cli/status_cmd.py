"""`mcpmux status` (what each running serve is doing) and `mcpmux logs SERVER` (a downstream's stderr log)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.table import Table
from rich.text import Text

from mcpmux.cli._console import err_console, out_console
from mcpmux.errors import MCPMuxError
from mcpmux.paths import state_paths
from mcpmux.wire import as_object

FOLLOW_POLL_SECONDS = 0.25
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]+")
_STATE_STYLES = {"running": "green", "starting": "yellow", "restarting": "yellow", "failed": "red", "stopped": "dim"}


def _cell(value: Any, style: str = "") -> Text:
    """Plain text, never markup: names and errors come from profiles and downstreams."""
    return Text("" if value is None else str(value), style=style)


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
    from mcpmux.control import ControlError, list_endpoints, request

    async def ask_all() -> list[dict[str, Any]]:
        replies: list[dict[str, Any]] = []
        for endpoint in list_endpoints():
            try:
                replies.append({"pid": endpoint.pid, **await request(endpoint.path, "status")})
            except ControlError as exc:
                replies.append({"pid": endpoint.pid, "error": str(exc), "socket": str(endpoint.path)})
        return replies

    return anyio.run(ask_all, backend="asyncio")


def _table(serve: dict[str, Any]) -> Table:
    title = f"mcpmux serve pid {serve.get('pid')} · profile {serve.get('profile')}"
    if isinstance(sha := serve.get("profile_hash"), str):
        title += f" (sha256 {sha[:12]})"
    title += f" · host {serve.get('host') or '-'}"
    if serve.get("started_at"):
        title += f" · since {serve['started_at']}"
    error = serve.get("reload_error")
    caption = _cell(f"profile change not applied: {error}", "red") if error else None
    table = Table(title=Text(title), title_justify="left", caption=caption, caption_justify="left")
    table.add_column("server", no_wrap=True)
    for header in ("state", "pid", "uptime", "restarts", "tools"):
        table.add_column(header, no_wrap=True)
    table.add_column("last error", overflow="fold")
    table.add_column("log", overflow="fold")
    servers: list[Any] = serve.get("servers") or []
    for entry in servers:
        server = as_object(entry) or {}
        status = server.get("status")
        table.add_row(
            _cell(server.get("name"), "bold"),
            _cell(status, _STATE_STYLES.get(str(status), "")),
            _cell(server.get("pid")),
            _cell(_duration(server.get("uptime_seconds"))),
            _cell(server.get("restarts")),
            _cell(server.get("tools")),
            _cell(server.get("last_error"), "red"),
            _cell(server.get("log_path"), "dim"),
        )
    return table


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print every serve's status as a JSON array.")] = False,
) -> None:
    """Show each running `mcpmux serve`: its profile and host, and every downstream's state."""
    serves = _gather()
    if as_json:
        typer.echo(json.dumps(serves, indent=2))
    elif not serves:
        err_console.print("no mcpmux serve is running (a host starts one with `mcpmux serve`)", highlight=False)
    else:
        for serve in serves:
            if "error" in serve:
                err_console.print(f"error: {serve['error']}", highlight=False, markup=False, soft_wrap=True)
            else:
                out_console.print(_table(serve))
    if any("error" in serve for serve in serves):
        raise typer.Exit(1)


def _log_path(server: str) -> Path:
    if not _SERVER_NAME.fullmatch(server):
        raise MCPMuxError(f"{server!r} is not a server name (names use letters, digits, '_' and '-')")
    return state_paths().server_log(server)


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


def _follow(path: Path, position: int) -> None:
    """Print what is appended to `path` until Ctrl-C; a rotated or truncated log is reopened from its start."""
    out = sys.stdout.buffer
    f = path.open("rb")
    try:
        f.seek(position)
        while True:
            chunk = f.read(64 * 1024)
            if chunk:
                out.write(chunk)
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
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they are written.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many of the last lines to show.")] = 50,
) -> None:
    """Show a downstream's stderr log (the last lines; `-f` to follow it)."""
    path = _log_path(server)
    if not path.exists():
        raise MCPMuxError(
            f"no log for server {server!r} at {path}: it has not been started with this MCPMUX_HOME "
            "(check the name with `mcpmux status` or `mcpmux profile show`)"
        )
    text, end = _last_lines(path, lines)
    sys.stdout.buffer.write(text)
    sys.stdout.buffer.flush()
    if follow:
        _follow(path, end)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("logs")(logs)
