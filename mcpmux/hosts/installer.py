"""`mcpmux install HOST`: add the mcpmux entry to a host's config file, changing nothing else.

The file is edited in place (hosts/jsonedit.py): every other key keeps its text, order and
indentation, and only mcpmux's entry (and, with `replace`, the removed servers) shows in the
diff. A copy `FILE.bak-<timestamp>` is made first, owner-only (0600), since a host's config may
hold credentials in plain text; the new content replaces the file in one `os.replace`. Running it
again with the same entry changes nothing and makes no backup. A file with comments (VS Code allows
them) is refused rather than rewritten without them, and one that is not valid JSON is reported so.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from mcpmux.errors import MCPMuxError
from mcpmux.hosts import jsonedit
from mcpmux.hosts.configs import Host, has_comments, server_tables
from mcpmux.hosts.importer import server_name_for
from mcpmux.paths import create_private
from mcpmux.profile.credentials import is_credential_name

ENTRY_NAME = "mcpmux"


@dataclass(frozen=True, slots=True)
class InstallResult:
    path: Path
    changed: bool
    diff: str
    backup: Path | None
    removed: tuple[str, ...]
    credentials_in_backup: tuple[str, ...] = ()
    """Where the backup holds what looks like a plaintext credential (`server.env.NAME`)."""


def mcpmux_command() -> list[str]:
    """The absolute command that runs this mcpmux: its script beside this Python, on PATH, or `python -m mcpmux`."""
    script = Path(sys.executable).parent / ("mcpmux.exe" if os.name == "nt" else "mcpmux")
    if script.is_file():
        return [str(script)]
    found = shutil.which("mcpmux")
    return [str(Path(found).resolve())] if found else [sys.executable, "-m", "mcpmux"]


BOM = "\ufeff"


def mcpmux_entry(host: Host, profile: str | None, *, shared: bool = False) -> dict[str, Any]:
    """The host's entry for this mcpmux; with `MCPMUX_HOME` set, the entry sets it too, so the serve the host
    starts reads the same profiles, trust records and pins as the commands run here. `shared`: the serve
    attaches to the profile's shared gateway (README "Many hosts, one gateway")."""
    command, *prefix = mcpmux_command()
    args = [*prefix, "serve", *(["--profile", profile] if profile else []), *(["--shared"] if shared else [])]
    entry: dict[str, Any] = {"type": "stdio"} if host.typed else {}
    entry |= {"command": command, "args": args}
    if home := os.environ.get("MCPMUX_HOME"):
        entry["env"] = {"MCPMUX_HOME": str(Path(home).expanduser().resolve())}
    return entry


def _indent(text: str) -> int | str:
    match = re.search(r"^([ \t]+)\S", text, re.MULTILINE)
    return 2 if match is None else (match.group(1) if "\t" in match.group(1) else len(match.group(1)))


def planned(
    host: Host, path: Path, entry: dict[str, Any], replace: Iterable[str] = ()
) -> tuple[str, str, tuple[str, ...]]:
    """(old text, new text, removed server names) for installing `entry` into `path`; nothing is written.

    A byte order mark (Windows editors write one) is kept where it was and left out of the JSON read and edited."""
    text = path.read_bytes().decode("utf-8") if path.is_file() else ""  # bytes: CRLF line ends stay as they are
    bom = BOM if text.startswith(BOM) else ""
    old = text.removeprefix(bom)
    config = _parsed(host, path, old, entry)
    servers = config.get(host.servers_key)
    if servers is None:
        servers = config[host.servers_key] = {}
    if not isinstance(servers, dict):
        raise MCPMuxError(f"{path}: '{host.servers_key}' is not a JSON object; fix it by hand first")
    table = cast(dict[str, Any], servers)
    fronted = set(replace)
    removed = tuple(n for n in table if n != ENTRY_NAME and server_name_for(n) in fronted)
    for name in removed:
        del table[name]
    table[ENTRY_NAME] = entry
    unchanged = bool(old.strip()) and _parsed(host, path, old, entry) == config
    return text, bom + (old if unchanged else _edited(old, host, config, removed, entry)), removed


def _parsed(host: Host, path: Path, old: str, entry: dict[str, Any]) -> dict[str, Any]:
    if not old.strip():
        return {}
    try:
        data: Any = json.loads(old)
    except json.JSONDecodeError as exc:
        if has_comments(old):
            raise MCPMuxError(
                f"{path} has comments, which rewriting it would drop; add this under '{host.servers_key}' by hand: "
                f'"{ENTRY_NAME}": {json.dumps(entry)}'
            ) from None
        raise MCPMuxError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); the host cannot read it either: "
            "fix the file (or restore a backup of it) and run install again"
        ) from None
    if not isinstance(data, dict):
        raise MCPMuxError(f"{path}: the top level is not a JSON object; is this the right file?")
    return cast(dict[str, Any], data)


def _edited(old: str, host: Host, config: dict[str, Any], removed: tuple[str, ...], entry: dict[str, Any]) -> str:
    """The new text: `old` edited in place where it parses back to `config`, else `config` rewritten whole."""
    unit = _indent(old)
    whole = json.dumps(config, indent=unit, ensure_ascii=False) + "\n"
    if not old.strip():
        return whole
    step = unit if isinstance(unit, str) else " " * unit
    newline = "\r\n" if "\r\n" in old else "\n"
    try:
        top = jsonedit.object_at(old, 0)
        servers = next((m for m in top.members if m.key == host.servers_key), None)
        if servers is None:  # no servers object yet: one holding mcpmux's entry, at the end of the file's object
            indent = jsonedit.member_indent(old, top, step)
            if indent is None:
                table = json.dumps({ENTRY_NAME: entry}, ensure_ascii=False)
            else:
                inner = indent + step
                rendered = jsonedit.render(entry, inner, step, newline)
                table = f'{{{newline}{inner}"{ENTRY_NAME}": {rendered}{newline}{indent}}}'
            new = jsonedit.set_members(old, top, {host.servers_key: table}, step)
        else:
            span = jsonedit.object_at(old, servers.value_start)
            changes: dict[str, str | None] = dict.fromkeys(removed)
            changes[ENTRY_NAME] = jsonedit.render(entry, jsonedit.member_indent(old, span, step), step, newline)
            new = jsonedit.set_members(old, span, changes, step)
        same = json.loads(new) == config
    except ValueError:  # a shape the in-place edit does not handle (a duplicated key, say): rewritten whole
        return whole
    return new if same else whole


def install(host: Host, path: Path, entry: dict[str, Any], replace: Iterable[str] = ()) -> InstallResult:
    """Write `entry` into the host config at `path` (see the module docstring); returns what changed."""
    old, new, removed = planned(host, path, entry, replace)
    if new == old:
        return InstallResult(path, False, "", None, ())
    diff = "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), str(path), f"{path} (new)")
    )
    backup = None
    if path.is_file():
        backup = path.with_name(f"{path.name}.bak-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}")
        create_private(backup, old.encode())  # 0600 from the start: it may hold the host's plaintext credentials
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(new)
        if backup is not None:
            shutil.copymode(path, tmp)  # the host's file keeps its permissions
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    found = plaintext_credentials(host, json.loads(old.removeprefix(BOM))) if backup is not None else ()
    return InstallResult(path, True, diff, backup, removed, found)


def plaintext_credentials(host: Host, config: dict[str, Any]) -> tuple[str, ...]:
    """`server.env.NAME` / `server.headers.NAME` of each literal value whose name looks like a credential."""
    found: list[str] = []
    for name, server in server_tables(host, config).items():
        for table in ("env", "headers"):
            values = cast(dict[str, Any], server).get(table) if isinstance(server, dict) else None
            for var, value in cast(dict[str, Any], values).items() if isinstance(values, dict) else ():
                # "${input:x}" (VS Code) and "${env:X}" are references the host resolves, not values.
                if isinstance(value, str) and value and "${" not in value and is_credential_name(var):
                    found.append(f"{name}.{table}.{var}")
    return tuple(found)
