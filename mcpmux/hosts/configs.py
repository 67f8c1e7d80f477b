"""Each host's MCP configuration file: where it lives per OS, and how its server entries are shaped.

| host | file | servers under | remote entries |
|---|---|---|---|
| claude-desktop | macOS `~/Library/Application Support/Claude/claude_desktop_config.json`, Windows `%APPDATA%\\Claude\\…`, Linux `~/.config/Claude/…` (unofficial builds) | `mcpServers` | none (stdio only) |
| cursor | `.cursor/mcp.json` in the project, else `~/.cursor/mcp.json` | `mcpServers` | `url`, `headers` |
| vscode | `.vscode/mcp.json` in the workspace, else the user `mcp.json` (`Code/User/` in the config dir) | `servers` (+ `inputs`) | `type` http/sse, `url`, `headers` |
| claude-code | `.mcp.json` (project scope), `~/.claude.json` (user scope; `projects[<dir>].mcpServers` is local scope) | `mcpServers` | `type` http/sse, `url`, `headers` |
| windsurf | `~/.codeium/windsurf/mcp_config.json` | `mcpServers` | `serverUrl`, `headers` |

VS Code reads its files as JSON with comments; `read_config` accepts comments and trailing
commas, and `has_comments` lets the installer refuse to rewrite (and so drop) them.
"""  # noqa: E501

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from mcpmux.errors import MCPMuxError

HostName = Literal["claude-desktop", "cursor", "vscode", "claude-code", "windsurf"]
HOST_NAMES: tuple[HostName, ...] = ("claude-desktop", "cursor", "vscode", "claude-code", "windsurf")
INSTALLABLE: tuple[HostName, ...] = ("claude-desktop", "cursor", "vscode", "claude-code")


@dataclass(frozen=True, slots=True)
class Host:
    name: HostName
    title: str
    servers_key: str
    url_key: str | None  # the key a remote entry's URL sits under; None: the host has no remote entries
    typed: bool  # entries carry `"type": "stdio" | "http" | "sse"`


HOSTS: dict[HostName, Host] = {
    "claude-desktop": Host("claude-desktop", "Claude Desktop", "mcpServers", None, typed=False),
    "cursor": Host("cursor", "Cursor", "mcpServers", "url", typed=False),
    "vscode": Host("vscode", "VS Code", "servers", "url", typed=True),
    "claude-code": Host("claude-code", "Claude Code", "mcpServers", "url", typed=True),
    "windsurf": Host("windsurf", "Windsurf", "mcpServers", "serverUrl", typed=False),
}


def get_host(name: str) -> Host:
    if name not in HOSTS:
        raise MCPMuxError(f"unknown host '{name}'; use one of: {', '.join(HOST_NAMES)}")
    return HOSTS[name]  # pyright: ignore[reportArgumentType]  # checked just above


def _app_config_dir(platform: str) -> Path:
    """The folder desktop apps keep their settings in: Application Support, %APPDATA% or XDG config."""
    home = Path.home()
    if platform == "darwin":
        return home / "Library" / "Application Support"
    if platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")


def config_paths(host: Host, *, cwd: Path | None = None, platform: str | None = None) -> list[Path]:
    """The host's config files mcpmux knows, most specific first (project/workspace, then the user's)."""
    base, home, system = cwd or Path.cwd(), Path.home(), platform or sys.platform
    match host.name:
        case "claude-desktop":
            return [_app_config_dir(system) / "Claude" / "claude_desktop_config.json"]
        case "cursor":
            return [base / ".cursor" / "mcp.json", home / ".cursor" / "mcp.json"]
        case "vscode":
            return [base / ".vscode" / "mcp.json", _app_config_dir(system) / "Code" / "User" / "mcp.json"]
        case "claude-code":
            return [base / ".mcp.json", home / ".claude.json"]
        case "windsurf":
            return [home / ".codeium" / "windsurf" / "mcp_config.json"]


def default_config_path(host: Host, *, cwd: Path | None = None, for_writing: bool = False) -> Path:
    """To read: the first existing config file. To write: the user-level one, which the host reads in every project
    (a project file is shared through the repository, and mcpmux's absolute path is personal)."""
    paths = config_paths(host, cwd=cwd)
    if for_writing:
        return paths[-1]
    existing = next((p for p in paths if p.is_file()), None)
    if existing is not None:
        return existing
    looked = ", ".join(str(p) for p in paths)
    raise MCPMuxError(f"no {host.title} config found (looked for {looked}); pass --path FILE")


def _strip_jsonc(text: str) -> str:
    """JSON with `//` and `/* */` comments and trailing commas → plain JSON (strings left alone)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "}]":
            while out and out[-1].isspace():
                out.pop()
            if out and out[-1] == ",":
                out.pop()
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def has_comments(text: str) -> bool:
    """True if the text only parses as JSON once comments or trailing commas are removed."""
    try:
        json.loads(text)
    except json.JSONDecodeError:
        try:
            json.loads(_strip_jsonc(text))
        except json.JSONDecodeError:
            return False  # not JSON even without them: invalid, which the caller reports as such
        return True
    return False


def read_config(path: Path) -> dict[str, Any]:
    """A host config file as a dict (key order kept); `MCPMuxError` naming the file if it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MCPMuxError(f"cannot read {path}: {exc.strerror or exc}; check the path (--path FILE)") from exc
    if not text.strip():
        return {}
    try:
        data: Any = json.loads(_strip_jsonc(text))
    except json.JSONDecodeError as exc:
        raise MCPMuxError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix the file and try again") from exc
    if not isinstance(data, dict):
        raise MCPMuxError(f"{path}: the top level is not a JSON object; is this the right file?")
    return data  # pyright: ignore[reportUnknownVariableType]


def server_tables(host: Host, config: dict[str, Any], *, cwd: Path | None = None) -> dict[str, Any]:
    """The host's server entries, name → entry; Claude Code's local scope for `cwd` is added after the user scope."""
    servers: dict[str, Any] = {}
    top = config.get(host.servers_key)
    if isinstance(top, dict):
        servers.update(top)  # pyright: ignore[reportUnknownArgumentType]
    projects = config.get("projects")
    if host.name == "claude-code" and isinstance(projects, dict):
        here = str((cwd or Path.cwd()).resolve())
        local = cast(dict[str, Any], projects).get(here)
        scoped = cast(dict[str, Any], local).get("mcpServers") if isinstance(local, dict) else None
        if isinstance(scoped, dict):
            servers.update(cast(dict[str, Any], scoped))
    return servers
