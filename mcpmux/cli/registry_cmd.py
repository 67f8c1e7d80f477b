"""`mcpmux search TERM` and `mcpmux add NAME[@VERSION]`: servers from an MCP registry, by name, into a profile.

`add` writes an ordinary `[servers.NAME]` table (see `mcpmux.registry.mapping`); secret
inputs go to the keyring before the profile is written, and the profile only names them.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from typing import Annotated, cast

import anyio
import typer
from rich.table import Table

from mcpmux.cli._console import cell, out_console, say
from mcpmux.errors import MCPMuxError, ProfileError, RegistryError
from mcpmux.profile.model import Profile
from mcpmux.registry.client import RegistryClient, choose_registry
from mcpmux.registry.document import Listing
from mcpmux.registry.inputs import KEEP, Answer, Ask, Input, PendingSecret
from mcpmux.registry.mapping import KINDS, plan_server, server_name_for

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        help="Registry base URL (default: $MCPMUX_REGISTRY, the profile's 'registry', registry.toml, the official).",
    ),
]
OfflineOption = Annotated[bool, typer.Option("--offline", help="Use only answers cached by earlier runs.")]
ProfileArg = Annotated[
    str | None, typer.Option("--profile", "-p", help="Profile name or path; default: the active one.")
]


def _client(flag: str | None, profile: Profile | None, offline: bool) -> RegistryClient:
    from mcpmux.profile.trust import trust_status

    registry = profile.registry if profile is not None else None
    trusted = profile is not None and trust_status(profile) in ("user", "trusted")
    url, source = choose_registry(flag, registry, trusted)
    say(f"registry: {url} ({source})")
    return RegistryClient(url, offline=offline)


def _kinds(listing: Listing) -> str:
    """What a listing can run as: its package types, and `remote`."""
    packages, remotes = listing.server.get("packages"), listing.server.get("remotes")
    found: list[str] = []
    for package in cast(list[object], packages) if isinstance(packages, list) else []:
        if isinstance(package, dict):
            found.append(str(cast(dict[str, object], package).get("registryType")))
    found += ["remote"] if isinstance(remotes, list) and remotes else []
    return ", ".join(dict.fromkeys(found)) or "-"


def search(
    term: Annotated[str, typer.Argument(help="Part of a server's name, e.g. 'github' or 'filesystem'.")],
    profile: ProfileArg = None,
    registry: RegistryOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many results.")] = 30,
    offline: OfflineOption = False,
) -> None:
    """Find servers in an MCP registry (latest versions; deprecated and deleted ones are left out)."""
    from mcpmux.profile.lookup import resolve_profile

    try:
        chosen: Profile | None = resolve_profile(profile)
    except ProfileError:
        if profile is not None:
            raise
        chosen = None  # searching needs no profile; only a named one must load
    client = _client(registry, chosen, offline)
    listings, malformed = client.search(term, limit=limit)
    if client.stale:
        say(f"note: {client.stale}")
    shown = [entry for entry in listings if entry.active]
    if not shown:
        say(f"no active servers match '{term}'")
    else:
        table = Table("name", "version", "runs", "description")
        for entry in shown:
            table.add_row(cell(entry.name), cell(entry.version), cell(_kinds(entry)), cell(entry.description))
        out_console.print(table)
        say(f"add one with: mcpmux add {shown[0].name}")
    if hidden := len(listings) - len(shown):
        say(f"{hidden} deprecated or deleted {'entry' if hidden == 1 else 'entries'} left out")
    if malformed:
        say(f"{malformed} malformed {'entry' if malformed == 1 else 'entries'} left out (not readable as server.json)")


def _asker(interactive: bool) -> Ask:
    from mcpmux.secrets.store import KeyringStore

    def stored(name: str) -> bool:
        return anyio.run(KeyringStore().get, name) is not None

    def ask(spec: Input) -> Answer:
        label = spec.what + (f" ({spec.description})" if spec.description else "")
        label += f" [{'/'.join(spec.choices)}]" if spec.choices else ""
        if spec.secret_name is not None and stored(spec.secret_name):
            if not interactive:
                return KEEP
            keep = f"{label}; Enter keeps the stored one"
            value: str = typer.prompt(keep, default="", hide_input=True, show_default=False)
            return value or KEEP
        if not interactive or not spec.required:
            return None
        if spec.default is not None:
            return typer.prompt(label, default=spec.default, hide_input=spec.secret)
        return typer.prompt(label, hide_input=spec.secret)

    return ask


def _answers(pairs: list[str]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MCPMuxError(f"--set '{pair}' is not KEY=VALUE; write e.g. --set API_KEY=… or --set port=8080")
        answers[key.lstrip("-")] = value
    return answers


def add(
    name: Annotated[str, typer.Argument(help="Registry name, e.g. io.github.owner/server; NAME@VERSION pins one.")],
    profile: ProfileArg = None,
    registry: RegistryOption = None,
    values: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE for one input (env var, header, argument); repeatable.")
    ] = None,
    server: Annotated[str | None, typer.Option("--name", help="Server name in the profile.")] = None,
    via: Annotated[str | None, typer.Option("--via", help=f"Use this kind of entry: {', '.join(KINDS)}.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a server of the same name.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the entry; store and write nothing.")] = False,
    offline: OfflineOption = False,
) -> None:
    """Add a server from an MCP registry to a profile, as an ordinary [servers.NAME] entry."""
    from mcpmux.registry.install import check_free, entry_text, open_target, restore, write_profile

    if via is not None and via not in KINDS:
        raise MCPMuxError(f"--via '{via}' is not one of {', '.join(KINDS)}")
    registry_name, _, version = name.partition("@")
    target = open_target(profile)
    client = _client(registry, target.profile, offline)
    listing = client.server(registry_name, version or "latest")
    if client.stale:
        say(f"note: {client.stale}")
    if not listing.active:
        raise RegistryError(
            f"{listing.name}@{listing.version} is {listing.status} in the registry, so it is not added; "
            f"find a replacement with `mcpmux search {server_name_for(listing.name)}`"
        )
    chosen = server or server_name_for(listing.name)
    check_free(target, chosen, force)
    plan = plan_server(listing, chosen, _answers(values or []), _asker(sys.stdin.isatty()), via)
    comment = f"Added by `mcpmux add {listing.name}@{listing.version}` from {client.base} ({plan.via})."
    text = entry_text(target, chosen, plan.table, comment, force)
    url, args = plan.table.get("url"), cast(list[str], plan.table.get("args", []))
    runs = str(url) if url else shlex.join([str(plan.table["command"]), *args])
    say(f"{listing.name}@{listing.version} → [servers.{chosen}] in {target.path}: {runs}")
    for note in plan.notes:
        say(f"note: {note}")
    if dry_run:
        from mcpmux.profile.edit import server_toml

        typer.echo(server_toml(chosen, plan.table, comment), nl=False)
        return
    write_profile(target, text)
    try:
        _store(plan.secrets)
    except BaseException:
        restore(target)
        raise
    _after(target.profile, chosen, plan.table)


def _store(secrets: tuple[PendingSecret, ...]) -> None:
    from mcpmux.cli.secret_cmd import warn_unless_os_keyring
    from mcpmux.secrets.keyrings import backend_name
    from mcpmux.secrets.store import KeyringStore

    store = KeyringStore()
    for secret in secrets:
        anyio.run(store.set, secret.name, secret.value)
        say(f"stored {secret.where} as secret '{secret.name}' in {backend_name()}")
    if secrets:
        warn_unless_os_keyring()


def _after(before: Profile, server: str, table: dict[str, object]) -> None:
    from mcpmux.profile.trust import trust_command, trust_status

    say(f"added server '{server}'; check it with: mcpmux validate {before.path}")
    command = table.get("command")
    if isinstance(command, str) and shutil.which(command) is None:
        say(f"note: '{command}' is not on PATH here; install it before the server can start")
    if trust_status(before) != "user":
        say(f"the profile changed, and it runs only once trusted; review it, then: {trust_command(before.path)}")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("add")(add)
