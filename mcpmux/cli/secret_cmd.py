"""`mcpmux secret`: store, delete and list the keyring secrets profiles reference.

There is deliberately no command that prints a value: the keyring's own tools do
that, behind the keyring's own access control.
"""

from __future__ import annotations

import sys
from typing import Annotated

import anyio
import typer
from rich.text import Text

from mcpmux.cli._console import cell, err_console, out_console, say, shown
from mcpmux.cli._json import print_json
from mcpmux.cli._options import JsonOption, ProfileOption, one_profile
from mcpmux.errors import MCPMuxError, ProfileError, SecretError
from mcpmux.profile.model import Profile
from mcpmux.secrets.backends import default_store, store_names
from mcpmux.secrets.keyrings import backend_name, backend_warning
from mcpmux.secrets.resolve import missing_message
from mcpmux.secrets.store import (
    SERVICE,
    KeyringStore,
    check_secret_name,
)

sub = typer.Typer(help="Store, delete and list keyring secrets (service 'mcpmux'). Values are never printed.")


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = typer.prompt(f"Value for secret '{name}'", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        value = value.removesuffix("\n").removesuffix("\r") if value.endswith("\n") else value
    if not value:
        raise SecretError(name, f"secret '{name}': the value is empty; nothing was stored")
    return value


@sub.command("set")
def set_secret(name: Annotated[str, typer.Argument(help="Secret name, as profiles reference it.")]) -> None:
    """Store a secret: prompted for (hidden, twice) on a terminal, else read from stdin.

    From stdin, one trailing newline is dropped, so `echo VALUE | mcpmux secret set NAME` works.
    """
    check_secret_name(name)
    value = _read_value(name)
    anyio.run(KeyringStore().set, name, value)
    err_console.print(f"stored secret '{name}' in {backend_name()} (service '{SERVICE}')", highlight=False)
    warn_unless_os_keyring()


def warn_unless_os_keyring() -> None:
    """After storing secrets: say loudly when they did not go into an OS keyring (e.g. a plaintext file)."""
    warning = backend_warning()
    if warning is not None:
        err_console.print(Text.assemble(("WARNING: ", "bold red"), str(warning)), soft_wrap=True)


@sub.command("delete")
def delete_secret(name: Annotated[str, typer.Argument(help="Secret name.")]) -> None:
    """Remove a secret from the keyring."""
    check_secret_name(name)
    if not anyio.run(KeyringStore().delete, name):
        raise SecretError(name, f"secret '{name}' is not in the keyring (service '{SERVICE}'); nothing to delete")
    err_console.print(f"deleted secret '{name}'", highlight=False)


def _profiles(names: list[str]) -> list[Profile]:
    from mcpmux.profile.load import load_profile
    from mcpmux.profile.lookup import list_profiles, resolve_profile

    if names:
        return [resolve_profile(name) for name in names]
    profiles: list[Profile] = []
    for entry in list_profiles():
        try:
            profiles.append(load_profile(entry.path))
        except ProfileError as exc:
            err_console.print(f"[yellow]warning:[/yellow] skipping {shown(entry.path)}: {shown(exc)}", highlight=False)
    return profiles


def references(profiles: list[Profile]) -> dict[str, list[str]]:
    """Secret name → the `profile/server` entries that reference it, sorted."""
    refs: dict[str, list[str]] = {}
    for profile in profiles:
        for server in profile.servers:
            for secret in server.secret_names:
                refs.setdefault(secret, []).append(f"{profile.name}/{server.name}")
    return {name: sorted(set(where)) for name, where in sorted(refs.items())}


async def _presence(names: list[str]) -> dict[str, bool]:
    store = default_store()  # what `serve` reads: MCPMUX_SECRETS may add the environment
    return {name: await store.get(name) is not None for name in names}


@sub.command("list")
def list_secrets(
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Profile name or path (repeatable); default: every profile found."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the secrets profiles reference, whether each is in the keyring, and who uses it."""
    from rich.table import Table

    refs = references(_profiles(profile or []))
    if as_json:
        present = anyio.run(_presence, list(refs))
        rows = [{"name": name, "present": present[name], "referenced_by": where} for name, where in refs.items()]
        print_json({"backend": backend_name(), "stores": store_names(), "secrets": rows})
        return
    err_console.print(f"keyring backend: {backend_name()}", highlight=False)
    if not refs:
        err_console.print("no secrets are referenced", highlight=False)
        return
    present = anyio.run(_presence, list(refs))
    table = Table("secret", "present", "referenced by")
    for name, where in refs.items():
        table.add_row(cell(name), "yes" if present[name] else "[red]no[/red]", cell(", ".join(where)))
    out_console.print(table)
    missing = [name for name, ok in present.items() if not ok]
    if missing:
        err_console.print(f"store missing ones with: mcpmux secret set {missing[0]}", highlight=False)


@sub.command("check")
def check_secrets(
    profile: Annotated[
        str | None,
        typer.Argument(help="Profile name or path; default: the one `serve` would use.", show_default=False),
    ] = None,
    profile_option: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that every secret a profile references can be read; exit 1 naming each missing one and its fix."""
    from mcpmux.profile.lookup import resolve_profile

    resolved = resolve_profile(one_profile(profile, profile_option))
    refs = references([resolved])
    where = ", ".join(store_names())
    if as_json:
        _check_json(resolved, refs)
        return
    if not refs:
        say(f"ok: {resolved.path} references no secrets")
        return
    present = anyio.run(_presence, list(refs))
    missing = [name for name, ok in present.items() if not ok]
    store = default_store()
    for name in missing:
        used_by = ", ".join(refs[name])
        say(f"missing: {missing_message(store, name)} (used by {used_by})")
    if missing:
        raise MCPMuxError(f"{len(missing)} of {len(refs)} secrets of {resolved.path} are missing from {where}")
    say(f"ok: all {len(refs)} secrets of {resolved.path} are present ({where})")


def _check_json(profile: Profile, refs: dict[str, list[str]]) -> None:
    present = anyio.run(_presence, list(refs))
    rows = [{"name": name, "present": present[name], "used_by": used} for name, used in refs.items()]
    ok = all(present.values())
    print_json({"ok": ok, "profile": str(profile.path), "stores": store_names(), "secrets": rows})
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="secret")
