"""`mcpmux install HOST`: add the mcpmux entry to a host's config file, changing nothing else.

The file is read and written as JSON with its key order kept (dicts keep insertion
order) and its indent detected, so the diff shows only mcpmux's entry (and, with
`replace`, the removed servers). A copy `FILE.bak-<timestamp>` is made before any
change; the new content replaces the file in one `os.replace`. Running it again with
the same entry changes nothing and makes no backup. A file with comments (VS Code
allows them) is refused rather than rewritten without them.
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
from mcpmux.hosts.configs import Host, has_comments, read_config
from mcpmux.hosts.importer import server_name_for

ENTRY_NAME = "mcpmux"


@dataclass(frozen=True, slots=True)
class InstallResult:
    path: Path
    changed: bool
    diff: str
    backup: Path | None
    removed: tuple[str, ...]


def mcpmux_command() -> list[str]:
    """The absolute command that runs this mcpmux: its script beside this Python, on PATH, or `python -m mcpmux`."""
    script = Path(sys.executable).parent / ("mcpmux.exe" if os.name == "nt" else "mcpmux")
    if script.is_file():
        return [str(script)]
    found = shutil.which("mcpmux")
    return [str(Path(found).resolve())] if found else [sys.executable, "-m", "mcpmux"]


def mcpmux_entry(host: Host, profile: str | None) -> dict[str, Any]:
    command, *prefix = mcpmux_command()
    args = [*prefix, "serve", *(["--profile", profile] if profile else [])]
    entry: dict[str, Any] = {"type": "stdio"} if host.typed else {}
    return {**entry, "command": command, "args": args}


def _indent(text: str) -> int | str:
    match = re.search(r"^([ \t]+)\S", text, re.MULTILINE)
    return 2 if match is None else (match.group(1) if "\t" in match.group(1) else len(match.group(1)))


def planned(
    host: Host, path: Path, entry: dict[str, Any], replace: Iterable[str] = ()
) -> tuple[str, str, tuple[str, ...]]:
    """(old text, new text, removed server names) for installing `entry` into `path`; nothing is written."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old.strip() and has_comments(old):
        raise MCPMuxError(
            f"{path} has comments, which rewriting it would drop; add this under '{host.servers_key}' by hand: "
            f'"{ENTRY_NAME}": {json.dumps(entry)}'
        )
    config = read_config(path) if old.strip() else {}
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
    unchanged = bool(old.strip()) and read_config(path) == config
    new = json.dumps(config, indent=_indent(old), ensure_ascii=False) + "\n"
    return old, (old if unchanged else new), removed


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
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
        if backup is not None:
            shutil.copymode(backup, tmp)  # the host's file keeps its permissions
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return InstallResult(path, True, diff, backup, removed)
