"""`mcpmux doctor`: a checklist of what a profile needs here, with the fix for each failure."""

from __future__ import annotations

import anyio
import typer

from mcpmux.cli._console import cell, err_console, out_console
from mcpmux.cli._json import print_json
from mcpmux.cli._options import JsonOption, ProfileOption

_MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


def doctor(profile: ProfileOption = None, as_json: JsonOption = False) -> None:
    """Check Python, packages, keyring, the profile (valid, trusted, commands, secrets), hosts and state folders."""
    from rich.table import Table

    from mcpmux.doctor import run_doctor
    from mcpmux.secrets.store import KeyringStore

    with err_console.status("checking…"):
        checks = anyio.run(run_doctor, profile, KeyringStore())
    failed = sum(1 for c in checks if c.status == "fail")
    if as_json:
        rows = [{"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in checks]
        print_json({"ok": not failed, "checks": rows})
        if failed:
            raise typer.Exit(1)
        return
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    for _ in ("result", "fix"):
        table.add_column(overflow="fold")  # paths and commands are shown whole, never cut with "…"
    for check in checks:
        # Details quote profiles and other programs' host configs: plain cells, control characters escaped.
        table.add_row(_MARKS[check.status], cell(check.name), cell(check.detail), cell(check.fix))
    out_console.print(table, soft_wrap=True)
    if failed:
        err_console.print(f"{failed} problem{'s' if failed != 1 else ''} found", highlight=False)
        raise typer.Exit(1)
    err_console.print("no problems found", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
