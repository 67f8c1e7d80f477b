"""`mcpmux audit`: read the audit log."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from mcpmux.cli._console import err_console, out_console
from mcpmux.paths import state_paths

sub = typer.Typer(help="Read the audit log (one JSON line per decision and call outcome).")


def _cell(value: Any, style: str = "") -> Text:
    """Plain text, never markup: the log's values come from hosts and downstreams."""
    return Text("" if value is None else str(value), style=style)


@sub.command("tail")
def tail(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many of the latest events.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON lines to stdout.")] = False,
) -> None:
    """Show the latest audit events, oldest first."""
    from mcpmux.audit import tail_lines

    path = state_paths().audit_log
    raw = tail_lines(path, lines)
    if as_json:
        for line in raw:
            typer.echo(line.decode("utf-8", errors="replace"))
        return
    if not raw:
        err_console.print(f"no audit events yet in {path}", highlight=False)
        return
    import orjson
    from rich.table import Table

    table = Table()
    table.add_column("ts", no_wrap=True, min_width=24)  # always shown whole
    for header in ("host", "exposed", "decision", "outcome", "ms"):
        table.add_column(header, overflow="fold")
    for line in raw:
        event: dict[str, Any] = orjson.loads(line)
        name = event.get("event")
        if name == "tool_call":
            what = _cell(event.get("exposed"))
        else:  # lifecycle: show what happened to which server
            what = _cell(" ".join(str(part) for part in (name, event.get("server")) if part is not None), "dim")
        duration = event.get("duration_ms")
        table.add_row(
            _cell(event.get("ts")),
            _cell(event.get("host")),
            what,
            _cell(event.get("decision")),
            _cell(event.get("outcome")),
            _cell(f"{duration:.1f}" if isinstance(duration, int | float) else None),
        )
    out_console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="audit")
