"""The registry API's answers, checked: `GET /v0.1/servers` (a `ServerList`) and `…/versions/{v}` (a `ServerResponse`).

    {"servers": [{"server": {server.json}, "_meta": {"io.modelcontextprotocol.registry/official":
                  {"status": "active", "isLatest": true, …}}}, …],
     "metadata": {"nextCursor": "…", "count": 30}}

Everything here came from the network, so every field is checked before use and a bad answer
is a `RegistryError` naming what was wrong; fields mcpmux does not use are left alone.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from mcpmux.errors import RegistryError

OFFICIAL = "io.modelcontextprotocol.registry/official"
"""The `_meta` key under which the registry itself (not the publisher) describes an entry."""

STATUSES = ("active", "deprecated", "deleted")

NAME = re.compile(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+")
"""A registry server name (the schema's pattern): reverse-DNS namespace, one slash, a name."""
MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Listing:
    """One server version as the registry lists it."""

    name: str
    version: str
    description: str
    status: str | None
    """`active`, `deprecated` or `deleted`; None when the registry says nothing (a registry of your own may not)."""
    server: Mapping[str, object]
    """The whole server.json, for `mapping`."""
    title: str = ""

    @property
    def active(self) -> bool:
        return self.status in (None, "active")


@dataclass(frozen=True, slots=True)
class Page:
    listings: tuple[Listing, ...]
    next_cursor: str | None
    malformed: int = 0
    """Entries left out because they could not be read (one bad entry does not hide the rest)."""


def check_name(name: str) -> str:
    """`name` if it is a registry server name, else a `RegistryError` saying what one looks like."""
    if len(name) > MAX_NAME or not NAME.fullmatch(name):
        raise RegistryError(
            f"'{name}' is not a registry server name: they look like io.github.owner/server "
            "(find one with `mcpmux search TERM`)"
        )
    return name


def _object(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise RegistryError(f"{where} is not a JSON object")
    return cast(dict[str, object], value)


def _text(table: Mapping[str, object], key: str, where: str, *, required: bool = True) -> str:
    value = table.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise RegistryError(f"{where}: '{key}' is missing or not a string")
    return value


def parse_listing(data: object, where: str) -> Listing:
    """One `ServerResponse`; `where` names it in errors (the URL it came from)."""
    item = _object(data, where)
    server = _object(item.get("server"), f"{where}: 'server'")
    name = check_name(_text(server, "name", where))
    meta = _object(item.get("_meta", {}), f"{where}: '_meta'")
    official = _object(meta.get(OFFICIAL, {}), f"{where}: '_meta.{OFFICIAL}'")
    status = official.get("status")
    if status is not None and not isinstance(status, str):
        raise RegistryError(f"{where}: the registry status of {name} is not a string")
    version = _text(server, "version", where)
    if len(version) > 255 or not version.isprintable():
        raise RegistryError(f"{where}: the version of {name} is not a printable version string")
    return Listing(
        name=name,
        version=version,
        description=_text(server, "description", where, required=False),
        status=status,
        server=server,
        title=_text(server, "title", where, required=False),
    )


def parse_page(data: object, where: str) -> Page:
    """One `ServerList` page: its listings and the cursor of the next page (None on the last)."""
    page = _object(data, where)
    servers = page.get("servers")
    if not isinstance(servers, list):
        raise RegistryError(f"{where}: 'servers' is missing or not a list; is this an MCP registry (API v0.1)?")
    listings: list[Listing] = []
    for index, item in enumerate(cast(list[object], servers)):
        try:
            listings.append(parse_listing(item, f"{where}: servers[{index}]"))
        except RegistryError:
            continue
    metadata = _object(page.get("metadata", {}), f"{where}: 'metadata'")
    cursor = metadata.get("nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise RegistryError(f"{where}: 'metadata.nextCursor' is not a string")
    return Page(tuple(listings), cursor or None, len(cast(list[object], servers)) - len(listings))
