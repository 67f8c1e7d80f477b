"""`mcpmux serve`, `mcpmux tools` and `mcpmux call`: the commands that start downstreams."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import anyio
import typer
from rich.table import Table

from mcpmux import __version__
from mcpmux.cli._console import cell, err_console, out_console, say, shown
from mcpmux.cli._json import print_json
from mcpmux.cli._options import READY_WAIT_SECONDS, JsonOption, ProfileOption
from mcpmux.cli.tools_view import changes_json, find_route, print_tool, profile_json, tool_json
from mcpmux.cli.trust_cmd import TrustOption, admit
from mcpmux.errors import MCPMuxError, ProfileError
from mcpmux.printable import printable
from mcpmux.wire import as_object

if TYPE_CHECKING:
    from mcpmux.catalog.build import Catalog
    from mcpmux.integrity.check import IntegrityReport, ToolIntegrity
    from mcpmux.integrity.pins import PinSet
    from mcpmux.profile.model import Profile


_T = TypeVar("_T")


class _PrintableFormatter(logging.Formatter):
    """Log lines quote profiles and servers (a reload's refusal, a server's error): control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), lines=True)


def log_to_stderr(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("mcpmux: %(message)s"))
    logger = logging.getLogger("mcpmux")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def _run(fn: Callable[[], Awaitable[_T]]) -> _T:
    return anyio.run(fn, backend="asyncio")


def serve(
    profile: ProfileOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    trust: TrustOption = False,
    shared: Annotated[
        bool, typer.Option("--shared", help="Attach to the profile's shared gateway (one set of downstreams).")
    ] = False,
) -> None:
    """Run the gateway as a stdio MCP server for a host (stdout carries only the protocol).

    If it cannot start (profile missing, invalid or untrusted; state folder unsafe), a host still gets
    its `initialize` answered and is then told why, with the fix (front/degraded.py); a terminal is told
    on stderr and the command exits 1.
    """
    from mcpmux.cli.shared_cmd import serve_shared, wants_shared
    from mcpmux.paths import check_state_private, ensure_private_dir, state_paths
    from mcpmux.profile.lookup import resolve_profile

    log_to_stderr(verbose=not quiet)
    paths = state_paths()
    try:
        check_state_private(paths)  # refuse state folders others can write (trust records, active profile, logs)
        ensure_private_dir(paths.state_dir)  # the gateway needs it, and would fail only once the host is waiting
    except MCPMuxError as exc:
        _serve_problem(exc, control=False)  # the status endpoint would live in that folder: nothing goes there
    except OSError as exc:
        fix = "set MCPMUX_HOME to a folder of yours, or make that path one"
        _serve_problem(MCPMuxError(f"mcpmux cannot use {paths.state_dir} for its state: {exc}; {fix}"), control=False)
    try:
        resolved = resolve_profile(profile)
        admit(resolved, trust)
    except MCPMuxError as exc:
        _serve_problem(exc, control=True)
    if wants_shared(shared, resolved) and serve_shared(resolved, profile):
        return
    from mcpmux.serve import serve as serve_profile  # after: a shared serve never loads the gateway's code

    _run(lambda: serve_profile(resolved, follow_active=profile is None))


def _serve_problem(exc: MCPMuxError, *, control: bool) -> NoReturn:
    """Tell the host why serve cannot start (and stderr, and `mcpmux status`); a person at a terminal just sees it."""
    from mcpmux.serve import serve_unable

    if os.isatty(0):
        raise exc
    problem = problem_text(exc)
    err_console.print("mcpmux: cannot serve; the host is told why until it disconnects:", highlight=False)
    say(f"error: {problem}")
    _run(lambda: serve_unable(problem, control=control))
    raise typer.Exit(1)


def problem_text(exc: MCPMuxError) -> str:
    """The error and how to fix it; for a profile that exists, the command that lists all its problems."""
    text = str(exc)
    if isinstance(exc, ProfileError):
        files = [p.path for p in exc.problems if p.path.is_file()]
        if files:
            text += f"\nSee every problem with: mcpmux validate {shlex.quote(str(files[0]))}"
    return text


def tools(
    name: Annotated[
        str | None,
        typer.Argument(help="Show this one tool in full: description, input schema, verdicts.", show_default=False),
    ] = None,
    profile: ProfileOption = None,
    show_all: Annotated[bool, typer.Option("--all", help="Show denied tools too.")] = False,
    changed: Annotated[
        bool, typer.Option("--changed", help="Show what changed since the tools were pinned (diffs), not the catalog.")
    ] = False,
    as_json: JsonOption = False,
    trust: TrustOption = False,
) -> None:
    """Start the downstreams, print the merged, namespaced, policy-filtered catalog (or one tool in full), exit."""
    from mcpmux.gateway import open_gateway
    from mcpmux.integrity.pins import load_pins, lock_path
    from mcpmux.profile.lookup import resolve_profile

    resolved = resolve_profile(profile)
    admit(resolved, trust)
    log_to_stderr(verbose=False)

    async def collect() -> tuple[Catalog, list[tuple[str, str, str]]]:
        async with open_gateway(resolved, record_pins=not changed) as gateway:  # --changed only looks
            with err_console.status(f"starting {len(gateway.supervisor.states)} servers…"):
                with anyio.move_on_after(READY_WAIT_SECONDS):
                    await gateway.supervisor.ready.wait()
            states = gateway.supervisor.states.values()
            down = [(s.spec.name, s.status, s.last_error or "") for s in states if s.status != "running"]
            return gateway.supervisor.catalog, down

    catalog, down = _run(collect)
    pins = load_pins(lock_path(resolved))
    if changed:
        _print_changed(resolved, profile, catalog, pins, as_json)
    elif name is not None:
        _print_one(resolved, catalog, pins, name, as_json)
    elif as_json:
        _print_catalog_json(resolved, catalog, pins, show_all, down)
    else:
        _print_catalog(resolved, catalog, pins, show_all)
    if not as_json:
        for note in catalog.notes:
            say(f"note: {note}")
    for server, status, error in down:
        err_console.print(f"[red]server '{shown(server)}' {status}[/red]: {shown(error)}", highlight=False)
    if down:
        raise typer.Exit(1)


def _print_changed(resolved: Profile, given: str | None, catalog: Catalog, pins: PinSet, as_json: bool) -> None:
    from mcpmux.cli.pin_cmd import print_changes  # here: its imports are heavy, and serve needs none
    from mcpmux.integrity.check import profile_arg
    from mcpmux.integrity.pins import compare

    checks = [c for c in compare(pins, catalog.routes.values()) if c.route.server in pins.servers]
    if as_json:
        print_json({"profile": profile_json(resolved), "tools": changes_json(checks)})
        return
    count = print_changes(checks)
    where = f"--profile {profile_arg(resolved)}"
    summary = f"{count} tools differ from their pins; accept with `mcpmux pin update TOOL {where}`"
    err_console.print(summary if count else "no tool differs from its pin", highlight=False)


def _print_one(resolved: Profile, catalog: Catalog, pins: PinSet, name: str, as_json: bool) -> None:
    from mcpmux.integrity.check import apply_integrity

    route = find_route(catalog.routes, name, resolved)
    report = apply_integrity(resolved, [route], pins)
    entry = tool_json(route, report.tools.get(route.exposed))
    if as_json:
        print_json({"profile": profile_json(resolved), "tool": entry})
    else:
        print_tool(entry)


def _print_catalog_json(
    resolved: Profile, catalog: Catalog, pins: PinSet, show_all: bool, down: list[tuple[str, str, str]]
) -> None:
    from mcpmux.integrity.check import apply_integrity

    report = apply_integrity(resolved, catalog.routes.values(), pins)
    routes = [r for r in catalog.routes.values() if r.decision.allowed or show_all]
    entries = [tool_json(route, report.tools.get(route.exposed)) for route in routes]
    failed = [{"name": server, "status": status, "error": error or None} for server, status, error in down]
    body = {"profile": profile_json(resolved), "tools": entries, "servers_down": failed, "notes": list(catalog.notes)}
    print_json(body)


def _print_catalog(resolved: Profile, catalog: Catalog, pins: PinSet, show_all: bool) -> None:
    from mcpmux.integrity.check import apply_integrity

    report = apply_integrity(resolved, catalog.routes.values(), pins)
    table = Table(title=cell(f"profile {resolved.name}: {len(catalog.visible)} tools exposed"))
    table.add_column("tool", no_wrap=True)
    for column in ("server", "original", "policy", "integrity", "note"):
        table.add_column(column, overflow="fold")
    for route in catalog.routes.values():
        if not route.decision.allowed and not show_all:
            continue
        verdict = "allowed" if route.decision.allowed else f"[red]denied[/red] by {shown(route.decision.rule)}"
        integrity = _integrity_cell(report.tools.get(route.exposed))
        # The original name and the note come from the server: plain cells, never markup.
        names = (cell(route.exposed), cell(route.server), cell(route.tool))
        table.add_row(*names, verdict, integrity, cell(route.naming_note))
    out_console.print(table)
    _print_integrity(catalog, report, show_all)


def _integrity_cell(check: ToolIntegrity | None) -> str:
    """The state of a tool against its pin, unless unchanged, and how many scanner findings it has."""
    parts: list[str] = []
    if check is not None and check.state != "unchanged":
        parts.append(check.state.replace("_", " "))
    if check is not None and check.findings:
        parts.append(f"{len(check.findings)} findings")
    return shown("; ".join(parts))


def _print_integrity(catalog: Catalog, report: IntegrityReport, show_all: bool) -> None:
    """Below the table: hidden counts, each warning and hiding reason, and the scanner's findings (a heuristic)."""
    routes = catalog.routes.values()
    by_pins = [r for r in routes if not r.decision.allowed and r.decision.rule == "pins"]
    by_policy = sum(1 for r in routes if not r.decision.allowed) - len(by_pins)
    if by_policy and not show_all:
        out_console.print(f"{by_policy} tools hidden by policy (show them with --all)", highlight=False)
    if by_pins:
        out_console.print(
            f"{len(by_pins)} tools hidden by the integrity check (review with `mcpmux tools --changed`)",
            highlight=False,
        )
    for check in report.tools.values():
        if check.reason:
            label = "warning" if check.visible else "hidden"
            say(f"{label}: {check.exposed}: {check.reason}", out_console)
    for check in report.tools.values():
        for finding in check.findings:
            say(f"finding: {check.exposed}: {finding}", out_console)
    if any(check.findings for check in report.tools.values()):
        out_console.print(
            "findings are heuristic: read the tool's description before trusting or hiding it", highlight=False
        )


def _parse_arguments(raw: list[str]) -> dict[str, Any]:
    """One JSON object, or key=value pairs (values parsed as JSON when they are valid JSON, else strings)."""
    if len(raw) == 1 and raw[0].lstrip().startswith("{"):
        try:
            value = json.loads(raw[0])
        except json.JSONDecodeError as exc:
            raise MCPMuxError(f"arguments are not valid JSON: {exc}; pass an object like '{{\"key\": 1}}'") from exc
        if not isinstance(value, dict):
            raise MCPMuxError("arguments must be a JSON object")
        return value  # pyright: ignore[reportUnknownVariableType]
    arguments: dict[str, Any] = {}
    for item in raw:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise MCPMuxError(f"argument '{item}' is neither a JSON object nor key=value")
        try:
            arguments[key] = json.loads(text)
        except json.JSONDecodeError:
            arguments[key] = text
    return arguments


def call(
    tool: Annotated[str, typer.Argument(help="Exposed tool name, e.g. time__get_current_time.")],
    arguments: Annotated[list[str] | None, typer.Argument(help="A JSON object, or key=value pairs.")] = None,
    profile: ProfileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw CallToolResult as JSON.")] = False,
    trust: TrustOption = False,
) -> None:
    """Call one tool through the gateway (policy, secrets and audit apply), print the result, and exit."""
    from mcpmux.gateway import open_gateway
    from mcpmux.profile.lookup import resolve_profile
    from mcpmux.relay.host import HostInfo

    resolved = resolve_profile(profile)
    admit(resolved, trust)
    parsed = _parse_arguments(arguments or [])
    log_to_stderr(verbose=False)

    async def run_call() -> dict[str, Any]:
        async with open_gateway(resolved) as gateway:
            with anyio.move_on_after(READY_WAIT_SECONDS):
                await gateway.supervisor.ready.wait()
            gateway.relay.host.bind(HostInfo("handshake", "mcpmux-cli", __version__))
            return await gateway.relay.call(tool, parsed)

    result = _run(run_call)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        _print_result(result)
    if result.get("isError"):
        raise typer.Exit(1)


def _print_result(result: dict[str, Any]) -> None:
    content = result.get("content")
    for item in content if isinstance(content, list) else []:  # pyright: ignore[reportUnknownVariableType]
        block = as_object(item) or {}  # pyright: ignore[reportUnknownArgumentType]
        kind = block.get("type")
        if kind == "text":
            say(str(block.get("text", "")), out_console)  # the server's text: its control characters escaped
        else:
            say(f"[{kind} content]", out_console)
    structured = result.get("structuredContent")
    if structured is not None and not result.get("content"):
        out_console.print_json(data=structured, ensure_ascii=True)  # escapes bidi and zero-width characters too


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(tools)
    app.command()(call)
