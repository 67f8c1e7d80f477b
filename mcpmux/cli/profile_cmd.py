"""`mcpmux validate` and `mcpmux profile list|use|show`: thin commands over `mcpmux.profile`.

None of these starts a downstream. Problems print as `file:line: key.path: message (fix)`,
one per line and never wrapped, so editors and CI can jump to them.
"""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from mcpmux import profile_lookup as profiles
from mcpmux.cli._console import err_console, out_console
from mcpmux.errors import MCPMuxError, ProfileError
from mcpmux.profile import load_profile

sub = typer.Typer(help="List, choose and show profiles.", no_args_is_help=True)

Target = Annotated[
    str | None,
    typer.Argument(help="Profile name or path; default: the active profile.", show_default=False),
]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def validate(target: Target = None) -> None:
    """Check a profile (syntax, keys, types, names, secret references, policy) without starting anything."""
    try:
        profile = profiles.resolve_profile(target)
    except ProfileError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        # The problems are printed above; the error only sets the exit code and says how many.
        raise MCPMuxError(f"{_plural(len(exc.problems), 'problem')} found; fix them and validate again") from exc
    count = _plural(len(profile.servers), "server")
    err_console.print(f"ok: {profile.path} ({count})", markup=False, highlight=False, soft_wrap=True)


@sub.command("list")
def list_cmd() -> None:
    """List project (./profiles) and user profiles; `*` marks the active one."""
    entries = profiles.list_profiles()
    if not entries:
        err_console.print("no profiles found in ./profiles or the user profile folder", highlight=False)
        return
    project_names = {e.name for e in entries if e.source == "project"}
    table = Table("", "name", "source", "servers", "path")
    for entry in entries:
        try:
            servers = str(len(load_profile(entry.path).servers))
        except ProfileError:
            servers = "[red]invalid[/red]"
        # A user profile named like a project one is never picked by name: say so.
        shadowed = entry.source == "user" and entry.name in project_names
        source = f"{entry.source} (shadowed)" if shadowed else entry.source
        path = escape(str(entry.path))
        table.add_row("*" if entry.active else "", escape(entry.name), source, servers, path)
    out_console.print(table)


@sub.command("use")
def use(name: Annotated[str, typer.Argument(help="Profile name or path.")]) -> None:
    """Make a profile the active one; it must load cleanly first."""
    path = profiles.set_active_profile(name)
    err_console.print(f"active profile: {name} ({path})", markup=False, highlight=False, soft_wrap=True)


@sub.command("show")
def show(target: Target = None) -> None:
    """Print a profile's TOML and a summary of its servers (secrets by name only, never values)."""
    path = profiles.resolve_profile_path(target)
    out_console.print(Syntax(path.read_text(encoding="utf-8"), "toml", line_numbers=True, word_wrap=True))
    profile = load_profile(path)
    title = f"{profile.name}: {profile.description}" if profile.description else profile.name
    table = Table("server", "runs", "secrets", "enabled", title=escape(title))
    for server in profile.servers:
        runs = server.url or shlex.join([server.command or "", *server.args])
        secrets = ", ".join(server.secret_names) or "-"
        table.add_row(escape(server.name), escape(runs), escape(secrets), "yes" if server.enabled else "no")
    out_console.print(table)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(sub, name="profile")
