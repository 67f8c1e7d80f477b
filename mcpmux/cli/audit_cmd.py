"""`mcpmux audit`: read, query, summarise and verify the audit log (rotated files included)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.text import Text

from mcpmux.cli._audit_lines import event_line
from mcpmux.cli._console import cell, err_console, out_console
from mcpmux.cli._json import print_json, print_json_line
from mcpmux.cli._options import TIME_HELP, JsonOption, parse_time_option
from mcpmux.paths import state_paths
from mcpmux.printable import printable

sub = typer.Typer(help="Read the audit log (one JSON line per decision, call outcome and lifecycle event).")


def _ms(value: Any) -> Text:
    return cell(f"{value:.1f}" if isinstance(value, int | float) else None)


def _events_table(events: Sequence[Mapping[str, Any]], *, caption: str | None = None) -> Any:
    from rich.table import Table

    table = Table(caption=caption)
    table.add_column("ts", no_wrap=True, min_width=24)  # always shown whole
    for header in ("host", "exposed", "decision", "outcome", "ms", "detail"):
        table.add_column(header, overflow="fold")
    for event in events:
        name = event.get("event")
        if name == "tool_call":
            what = cell(event.get("exposed"))
            outcome = event.get("outcome")
            detail = event.get("error") or (event.get("rule") if event.get("decision") != "allowed" else None)
        else:  # lifecycle: show what happened to which server
            what = cell(" ".join(str(part) for part in (name, event.get("server")) if part is not None), "dim")
            outcome = None
            detail = event.get("error")
        style = "red" if outcome in ("error", "timeout", "unavailable", "tool_error") else ""
        style = "yellow" if outcome in ("denied", "unknown") else style
        table.add_row(
            cell(event.get("ts")),
            cell(event.get("host")),
            what,
            cell(event.get("decision")),
            cell(outcome, style),
            _ms(event.get("duration_ms")),
            cell(detail, "dim"),
        )
    return table


def _when(value: str | None, option: str) -> str | None:
    """A time option as the log writes times (`mcpmux.timespec` reads it)."""
    from mcpmux.audit.log import utc_timestamp

    when = parse_time_option(value, option)
    return None if when is None else utc_timestamp(when)


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for value in values or () for part in value.split(",") if part.strip())


@sub.command("tail")
def tail(
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="How many of the latest events.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")] = False,
    event: Annotated[
        str, typer.Option("--event", help="Only these events (glob, any case): tool_call, 'downstream_*', …")
    ] = "*",
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON lines to stdout.")] = False,
) -> None:
    """Show the latest audit events, oldest first, one line each; with -f, keep following the log."""
    from mcpmux.audit.query import EventFilter
    from mcpmux.audit.read import follow as follow_log

    path = state_paths().audit_log
    where = EventFilter(event=event)
    raw = _latest(path, lines, where)
    if not raw and not follow:
        which = "audit events yet" if event == "*" else f"events matching --event {event!r}"
        err_console.print(f"no {which} in {path}", highlight=False, markup=False, soft_wrap=True)
        return
    _print_lines(raw, as_json)
    if follow:
        try:
            for line in follow_log(path):
                _print_lines(_kept([line], where), as_json)
        except KeyboardInterrupt:
            return


def _kept(raw: Sequence[bytes], where: Any) -> list[bytes]:
    from mcpmux.audit.read import parse_line

    return [line for line in raw if (e := parse_line(line)) is not None and where.matches(e)]


def _latest(path: Any, n: int, where: Any) -> list[bytes]:
    """The last `n` lines whose events `where` keeps: read backwards, further each round, until there are `n`."""
    from mcpmux.audit.read import tail_lines

    want = n
    while True:
        raw = tail_lines(path, want)
        kept = _kept(raw, where)
        if len(kept) >= n or len(raw) < want:
            return kept[len(kept) - n :] if n else []
        want *= 4


def _print_lines(raw: Sequence[bytes], as_json: bool) -> None:
    from mcpmux.audit.read import parse_line

    for line in raw:
        if as_json:
            # As written, but bidi and zero-width characters as JSON escapes (a raw control character
            # cannot be in a valid JSON line, so escaping it only shows a damaged line for what it is).
            typer.echo(printable(line.decode("utf-8", errors="replace")))
        elif (event := parse_line(line)) is not None:
            out_console.print(event_line(event), soft_wrap=True, highlight=False)


@sub.command("query")
def query(
    since: Annotated[str | None, typer.Option(help=f"From: {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option(help=f"Before: {TIME_HELP}")] = None,
    tool: Annotated[str | None, typer.Option(help="Exposed or original tool name (glob).")] = None,
    server: Annotated[str | None, typer.Option(help="Downstream server name (glob).")] = None,
    host: Annotated[str | None, typer.Option(help="Host client name (glob, any case), e.g. 'cursor*'.")] = None,
    outcome: Annotated[list[str] | None, typer.Option(help="ok, tool_error, denied, unknown, error, …")] = None,
    decision: Annotated[list[str] | None, typer.Option(help="allowed, denied or unknown.")] = None,
    event: Annotated[str, typer.Option(help="Event kind (glob); '*' includes lifecycle events.")] = "tool_call",
    limit: Annotated[int | None, typer.Option(min=1, help="Only the latest N matches.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print matching events as JSON lines to stdout.")] = False,
) -> None:
    """Find events: e.g. what Cursor called on the git server since yesterday, how long each took, what was denied."""
    from mcpmux.audit.query import EventFilter, select, stats, total
    from mcpmux.audit.read import read_events

    where = EventFilter(
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        event=event,
        tool=tool,
        server=server,
        host=host,
        outcomes=_split(outcome),
        decisions=_split(decision),
    )
    found = select(read_events(state_paths().audit_log), where, limit)
    if as_json:
        for e in found:
            print_json_line(e)  # orjson escapes controls; `printable` the rest
        return
    if not found:
        err_console.print("no matching audit events", highlight=False)
        return
    summary = total(stats(found))
    p50, p95 = summary.latency(50), summary.latency(95)
    caption = f"{summary.calls} calls · {summary.denied} denied · {summary.errors} errors"
    if p50 is not None and p95 is not None:
        caption += f" · p50 {p50:.1f} ms · p95 {p95:.1f} ms"
    out_console.print(_events_table(found, caption=caption))


@sub.command("stats")
def stats_cmd(
    since: Annotated[str | None, typer.Option(help=f"From: {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option(help=f"Before: {TIME_HELP}")] = None,
    by: Annotated[str, typer.Option(help="Group by tool, server or host.")] = "tool",
    as_json: JsonOption = False,
) -> None:
    """Calls, error and denial rates, and p50/p95/p99 latency per tool, server or host."""
    from rich.table import Table

    from mcpmux.audit.query import EventFilter, select, stats, total
    from mcpmux.audit.read import read_events

    if by not in ("tool", "server", "host"):
        raise typer.BadParameter(f"{by!r} is not one of tool, server, host", param_hint="--by")
    where = EventFilter(since=_when(since, "--since"), until=_when(until, "--until"))
    groups = stats(select(read_events(state_paths().audit_log), where), by)
    if as_json:
        every = total(groups).as_dict() if groups else None
        body = {"by": by, "since": where.since, "until": where.until, "groups": [g.as_dict() for g in groups]}
        print_json({**body, "total": every})
        return
    if not groups:
        err_console.print("no tool calls in that period", highlight=False)
        return
    table = Table()
    table.add_column(by, overflow="fold")
    for header in ("calls", "errors", "error %", "denied", "denied %", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(header, justify="right")
    rows = [*groups, total(groups)] if len(groups) > 1 else groups
    for n, g in enumerate(rows):
        row = g.as_dict()
        table.add_row(
            cell(g.key, "bold" if n == len(groups) else ""),
            cell(g.calls),
            cell(g.errors),
            cell(f"{g.error_rate:.1%}"),
            cell(g.denied),
            cell(f"{g.denial_rate:.1%}"),
            *(_ms(row[f"p{q}_ms"]) for q in (50, 95, 99)),
            end_section=n == len(groups) - 1,
        )
    out_console.print(table)


@sub.command("verify")
def verify_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object to stdout.")] = False,
) -> None:
    """Check the keyed chain: report every edited, removed or reordered line, a cut head or tail; exit 1 on any."""
    from mcpmux.audit.key import available_keys
    from mcpmux.audit.verify import verify

    path = state_paths().audit_log
    keys, key_notes = available_keys(path)
    report = verify(path, keys, key_notes)
    if as_json:
        body = {
            "ok": report.ok,
            "files": [str(f) for f in report.files],
            "events": report.events,
            "problems": [{"file": str(p.file), "line": p.line, "message": p.message} for p in report.problems],
            "notes": report.notes,
            "segments": [
                {"key": s.key, "start": s.start, "end": s.end, "first_seq": s.first_seq, "last_seq": s.last_seq}
                | {"events": s.events}
                for s in report.segments
            ],
            "anchor": report.anchor,
            "key_notes": key_notes,
        }
        print_json(body)
    else:
        lines = [str(p) for p in report.problems] + [f"note: {note}" for note in report.notes]
        lines += [f"segment {segment}" for segment in report.segments]
        lines += [report.anchor] if report.anchor else []
        verdict = "intact" if report.ok else f"{len(report.problems)} problem(s)"
        lines.append(f"{report.events} events in {len(report.files)} file(s) of {path}: chain {verdict}")
        for line in lines:
            err_console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="audit")
