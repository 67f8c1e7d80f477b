"""`mcpmux import HOST`: a host's MCP server entries → an equivalent profile, with no credential left in plain text.

`plan_import` is pure over the parsed config: it maps each entry to a `[servers.NAME]`
table and collects what it could not convert as notes. An env or header value whose name
looks like a credential (profile.py's own test) becomes a `PendingSecret` and, in the
table, a `{ secret = "NAME" }` reference; the caller stores the values in the keyring
(`store_secrets`) before the profile is written. VS Code's `${input:ID}` prompts become
`{secret:ID}` templates (the value is the user's to store).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import tomli_w

from mcpmux.errors import MCPMuxError
from mcpmux.hosts.configs import Host, read_config, server_tables
from mcpmux.profile.credentials import is_credential_name  # one rule for both
from mcpmux.secrets.store import SecretStore

_INPUT = re.compile(r"\$\{input:([A-Za-z0-9._-]{1,128})\}")
_OTHER_VARIABLE = re.compile(r"\$\{[^}]*\}")
_HANDLED = {"command", "args", "env", "cwd", "url", "serverUrl", "headers", "type", "disabled"}

Table = dict[str, object]


@dataclass(frozen=True, slots=True)
class PendingSecret:
    """A credential found in the host config: its keyring name, its value, and where it was."""

    name: str
    value: str
    where: str


@dataclass(frozen=True, slots=True)
class ImportPlan:
    host: Host
    source: Path
    servers: Mapping[str, Table]
    secrets: tuple[PendingSecret, ...]
    notes: tuple[str, ...]
    """What was not converted, or converted with a change the user should know about."""


def server_name_for(host_name: str) -> str:
    """A host's server name as a profile server name: [A-Za-z0-9_-], no `__`, at most 32 characters."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", host_name).strip("-")
    while "__" in name:
        name = name.replace("__", "_")
    return name[:32] or "server"


def secret_name_for(server: str, var: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", f"{server}-{var}".lower()).strip("-")[:128]


def _escape(text: str, template: bool) -> str:
    return text.replace("{", "{{").replace("}", "}}") if template else text


class _Converter:
    def __init__(self, host: Host, source: Path) -> None:
        self.host, self.source = host, source
        self.secrets: dict[str, PendingSecret] = {}
        self.notes: list[str] = []

    def value(self, server: str, table: str, var: str, raw: object) -> object | None:
        where = f"servers.{server}.{table}.{var}"
        if not isinstance(raw, str):
            self.notes.append(f"{where}: {type(raw).__name__} value not converted (profiles take strings)")
            return None
        inputs = _INPUT.findall(raw)
        for secret in inputs:
            self.notes.append(f"{where}: VS Code input '{secret}' → secret; store it with `mcpmux secret set {secret}`")
        # Literal braces are doubled only where a template is made (a plain string is never read as one).
        template = bool(inputs) or "{secret:" in raw
        pieces: list[str] = _INPUT.split(raw)  # literal, input id, literal, ...
        text = "".join(_escape(p, template) if i % 2 == 0 else "{secret:" + p + "}" for i, p in enumerate(pieces))
        if other := _OTHER_VARIABLE.search(_INPUT.sub("", raw)):
            self.notes.append(f"{where}: kept {other.group(0)!r} literally (mcpmux does not expand it)")
        if inputs or not text or not is_credential_name(var):
            return text
        name = secret_name_for(server, var)
        self.secrets[name] = PendingSecret(name, raw, where)
        return {"secret": name}

    def mapping(self, server: str, table: str, raw: object) -> Table:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.notes.append(f"servers.{server}.{table}: not an object; not converted")
            return {}
        converted = {k: self.value(server, table, str(k), v) for k, v in cast(dict[str, object], raw).items()}
        return {k: v for k, v in converted.items() if v is not None}

    def entry(self, name: str, raw: Mapping[str, Any]) -> Table | None:
        url = raw.get(self.host.url_key or "url") or raw.get("url") or raw.get("serverUrl")
        command, kind = raw.get("command"), raw.get("type")
        table: Table = {}
        if isinstance(command, str) and command:
            table["command"] = command
            args = raw.get("args", [])
            if isinstance(args, list) and all(isinstance(a, str) for a in cast(list[object], args)):
                if args:
                    table["args"] = args
            else:
                self.notes.append(f"servers.{name}.args: not a list of strings; not converted")
            if isinstance(raw.get("cwd"), str):
                table["cwd"] = raw["cwd"]
            if env := self.mapping(name, "env", raw.get("env")):
                table["env"] = env
        elif isinstance(url, str) and url:
            table["url"] = url
            if headers := self.mapping(name, "headers", raw.get("headers")):
                table["headers"] = headers
            if kind == "sse":
                self.notes.append(f"servers.{name}: was an SSE server; mcpmux connects over streamable HTTP")
        else:
            self.notes.append(f"servers.{name}: has neither 'command' nor a URL; skipped")
            return None
        if raw.get("disabled") is True:
            table["enabled"] = False
        for key in sorted(set(raw) - _HANDLED):
            self.notes.append(f"servers.{name}.{key}: not converted (mcpmux has no equivalent)")
        return table


def plan_import(host: Host, source: Path, *, cwd: Path | None = None) -> ImportPlan:
    """Read `source` (a config file of `host`) and convert every server entry it holds."""
    entries = server_tables(host, read_config(source), cwd=cwd)
    converter = _Converter(host, source)
    servers: dict[str, Table] = {}
    for original, raw in entries.items():
        name = server_name_for(original)
        while name in servers:
            name = f"{name[:29]}-{len(servers) + 1}"
        if name != original:
            converter.notes.append(f"server '{original}' is named '{name}' (profile names are [A-Za-z0-9_-])")
        if not isinstance(raw, dict):
            converter.notes.append(f"servers.{name}: not an object; skipped")
            continue
        table = converter.entry(name, cast(dict[str, Any], raw))
        if table is not None:
            servers[name] = table
    if name_of_mcpmux := next((n for n, t in servers.items() if _is_mcpmux(t)), None):
        del servers[name_of_mcpmux]
        converter.notes.append(f"server '{name_of_mcpmux}' is mcpmux itself; skipped")
    if not servers:
        raise MCPMuxError(f"{source}: no {host.title} MCP servers found to import (under '{host.servers_key}')")
    return ImportPlan(host, source, servers, tuple(converter.secrets.values()), tuple(converter.notes))


def _is_mcpmux(table: Table) -> bool:
    command = table.get("command")
    return isinstance(command, str) and Path(command).name in ("mcpmux", "mcpmux.exe")


def profile_text(plan: ImportPlan) -> str:
    """The profile as TOML: a comment saying where it came from, then the tables."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    header = [
        f"# Imported from {plan.host.title} ({plan.source}) by `mcpmux import {plan.host.name}` on {when}.",
        "# Credentials were moved into the OS keyring; `{ secret = ... }` names the entry. Check it with",
        "# `mcpmux validate`, list secrets with `mcpmux secret list`.",
        "",
    ]
    body = {"description": f"Imported from {plan.host.title}", "servers": dict(plan.servers)}
    return "\n".join(header) + tomli_w.dumps(body)


async def store_secrets(secrets: tuple[PendingSecret, ...], store: SecretStore) -> None:
    for secret in secrets:
        await store.set(secret.name, secret.value)
