"""`mcpmux import HOST` and `mcpmux install HOST`: move from a host's own MCP config to mcpmux, and back into it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer

from mcpmux.cli._console import out_console, say
from mcpmux.errors import MCPMuxError
from mcpmux.hosts.configs import HOST_NAMES, INSTALLABLE


def _listed(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}."


ImportHostArg = Annotated[str, typer.Argument(help=_listed(HOST_NAMES))]
InstallHostArg = Annotated[str, typer.Argument(help=_listed(INSTALLABLE))]
PathOption = Annotated[
    Path | None, typer.Option("--path", help="The host's config file; default: where the host keeps it.")
]


def import_cmd(
    host: ImportHostArg,
    path: PathOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Profile name; default: the host's name.")] = None,
    project: Annotated[
        bool, typer.Option("--project", help="Write to ./profiles instead of your user profiles.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Move credentials into the keyring without asking.")] = False,
) -> None:
    """Write a profile equivalent to a host's MCP servers; credentials go into the keyring, never into the file."""
    from mcpmux.cli.secret_cmd import warn_unless_os_keyring
    from mcpmux.hosts.configs import default_config_path, get_host
    from mcpmux.hosts.importer import plan_import, profile_text, store_secrets
    from mcpmux.paths import state_paths
    from mcpmux.profile.load import load_profile
    from mcpmux.profile.starter import write_new
    from mcpmux.secrets.keyrings import backend_name
    from mcpmux.secrets.store import KeyringStore

    chosen = get_host(host)
    source = (path or default_config_path(chosen)).expanduser()
    plan = plan_import(chosen, source)
    folder = Path.cwd() / "profiles" if project else state_paths().profiles_dir
    target = folder / f"{name or chosen.name}.toml"
    if target.exists():
        raise MCPMuxError(f"{target} already exists; pass --name NEW to import under another name")
    secrets = plan.secrets
    if secrets and not yes:
        if not sys.stdin.isatty():
            where = ", ".join(s.where for s in secrets)
            raise MCPMuxError(f"{len(secrets)} credentials to move into the keyring ({where}); rerun with --yes")
        listed = "\n".join(f"  {s.where} → secret '{s.name}'" for s in secrets)
        say(f"These values look like credentials:\n{listed}")
        if not typer.confirm(f"Store them in the keyring ({backend_name()})?", default=True):
            secrets = ()
    anyio.run(store_secrets, secrets, KeyringStore())
    write_new(target, profile_text(plan), private=not project)
    try:
        load_profile(target)
    except MCPMuxError:
        target.unlink()
        raise
    say(f"wrote {target} ({len(plan.servers)} servers from {source})")
    for secret in secrets:
        say(f"stored {secret.where} as secret '{secret.name}' in {backend_name()}")
    if secrets:
        warn_unless_os_keyring()
    for secret in (s for s in plan.secrets if s not in secrets):
        say(f"not stored: {secret.where}; store it with: mcpmux secret set {secret.name}")
    for note in plan.notes:
        say(f"note: {note}")
    say(f"next: mcpmux install {chosen.name} --profile {target.stem}")


def install_cmd(
    host: InstallHostArg,
    profile: Annotated[str | None, typer.Option("--profile", "-p", help="Pin the host to this profile.")] = None,
    path: PathOption = None,
    replace: Annotated[bool, typer.Option("--replace", help="Remove the host's servers the profile fronts.")] = False,
    shared: Annotated[
        bool, typer.Option("--shared", help="The host's serve attaches to the profile's shared gateway.")
    ] = False,
) -> None:
    """Add mcpmux to a host's config (backup first, idempotent, everything else kept) and print the diff."""
    from mcpmux.hosts.configs import default_config_path, get_host
    from mcpmux.hosts.installer import install, mcpmux_entry
    from mcpmux.profile.lookup import resolve_profile
    from mcpmux.profile.trust import is_user_profile

    chosen = get_host(host)
    if chosen.name not in INSTALLABLE:
        raise MCPMuxError(f"install does not support {chosen.title} yet; use one of: {', '.join(INSTALLABLE)}")
    resolved = resolve_profile(profile) if profile or replace else None
    # A host starts mcpmux from a folder of its own choosing: only a user profile is found there by name.
    pinned = None if resolved is None or profile is None else profile
    if resolved is not None and pinned is not None and not is_user_profile(resolved.path):
        pinned = str(resolved.path)
    target = (path or default_config_path(chosen, for_writing=True)).expanduser()
    fronted = [s.name for s in resolved.servers] if replace and resolved is not None else []
    result = install(chosen, target, mcpmux_entry(chosen, pinned, shared=shared), fronted)
    if not result.changed:
        say(f"{target} already runs mcpmux this way; nothing changed")
        return
    say(result.diff, out_console, end="")  # the host's config: what other programs wrote, escaped
    if result.backup is not None:
        say(f"backup: {result.backup} (readable by you alone)")
    if result.backup is not None and result.credentials_in_backup:
        say(
            f"WARNING: the backup {result.backup} holds plaintext credentials "
            f"({', '.join(result.credentials_in_backup)}). Move them into the keyring with "
            f"`mcpmux import {chosen.name}` if mcpmux should run those servers, then delete the backup: "
            f"rm {shlex.quote(str(result.backup))}"
        )
    if result.removed:
        say(f"removed (now behind mcpmux): {', '.join(result.removed)}")
    say(f"installed mcpmux into {target}; restart {chosen.title} to use it")


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("install")(install_cmd)
