"""`mcpmux pin diff` and `mcpmux pin update [TOOL…]`: review and accept tool definitions.

Both start the profile's downstreams to read their current definitions, compare
them with the profile's lock file (see `mcpmux.pins`), and exit.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Annotated

import typer

from mcpmux.cli._console import err_console, out_console, say, shown
from mcpmux.cli._json import print_json
from mcpmux.cli._options import READY_WAIT_SECONDS, JsonOption, ProfileOption
from mcpmux.cli.trust_cmd import TrustOption, admit
from mcpmux.errors import MCPMuxError
from mcpmux.integrity.pins import PinCheck, RouteLike, accept, accept_all, compare, load_pins, lock_path, save_pins
from mcpmux.profile.model import Profile

pin_app = typer.Typer(help="Review and accept tool definitions (the profile's lock file).", no_args_is_help=True)


def _live_routes(profile: Profile) -> list[RouteLike]:
    """Start the downstreams, wait for them (bounded), and return every route; fail if a downstream is down."""
    import anyio

    from mcpmux.gateway import open_gateway

    async def collect() -> tuple[list[RouteLike], list[str]]:
        async with open_gateway(profile, record_pins=False) as gateway:
            with err_console.status(f"starting {len(gateway.supervisor.states)} servers…"):
                with anyio.move_on_after(READY_WAIT_SECONDS):
                    await gateway.supervisor.ready.wait()
            states = gateway.supervisor.states.values()
            down = [f"server '{s.spec.name}' {s.status}: {s.last_error or ''}" for s in states if s.status != "running"]
            return list(gateway.supervisor.catalog.routes.values()), down

    routes, down = anyio.run(collect, backend="asyncio")
    for line in down:
        err_console.print(f"[red]{shown(line)}[/red]", highlight=False)
    if down:
        # Pinning a partial catalog would forget nothing but could mislead: the user re-runs once all are up.
        raise MCPMuxError(f"{len(down)} server(s) did not start, so their tools cannot be compared; fix them first")
    return routes


def print_changes(checks: Sequence[PinCheck]) -> int:
    """Print the diff of each changed tool and each new one; return how many there were."""
    shown = 0
    for check in checks:
        # Definitions are the server's text (descriptions above all): printed with control characters escaped.
        if check.status == "changed" and check.diff:
            say(check.diff, out_console, end="")
        elif check.status == "new":
            header = f"new tool {check.route.exposed} ({check.route.server}/{check.route.tool}), not pinned:\n"
            say(header + check.current.definition, out_console)
        else:
            continue
        shown += 1
    return shown


@pin_app.command("diff")
def diff(
    profile: ProfileOption = None,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when anything differs (for CI).")] = False,
    as_json: JsonOption = False,
    trust: TrustOption = False,
) -> None:
    """Show what changed since the tools were pinned (readable diffs), and the tools not pinned yet."""
    from mcpmux.cli.tools_view import changes_json, profile_json
    from mcpmux.profile.lookup import resolve_profile

    resolved = resolve_profile(profile)
    admit(resolved, trust)
    path = lock_path(resolved)
    checks = compare(load_pins(path), _live_routes(resolved))
    if as_json:  # the summary below goes to stderr, as always
        shown = sum(1 for c in checks if c.status != "unchanged")
        print_json({"profile": profile_json(resolved), "lock": str(path), "tools": changes_json(checks)})
    else:
        shown = print_changes(checks)
    if not shown:
        err_console.print(f"all {len(checks)} tools match their pins in {path}", highlight=False)
    else:
        err_console.print(f"{shown} tools differ from {path}; accept with `mcpmux pin update [TOOL…]`", highlight=False)
    if shown and exit_code:
        raise typer.Exit(1)


@pin_app.command("update")
def update(
    tools: Annotated[
        list[str] | None, typer.Argument(help="Exposed tool names to accept; default: every tool.")
    ] = None,
    profile: ProfileOption = None,
    trust: TrustOption = False,
) -> None:
    """Accept the current definitions of TOOLs (default: all tools) and write them to the lock file."""
    from mcpmux.profile.lookup import resolve_profile

    resolved = resolve_profile(profile)
    admit(resolved, trust)
    path = lock_path(resolved)
    pins = load_pins(path)
    routes = _live_routes(resolved)
    by_name = {r.exposed: r for r in routes}
    unknown = [name for name in tools or () if name not in by_name]
    if unknown:
        hints = [
            f"{n} (did you mean {c[0]}?)" if (c := difflib.get_close_matches(n, by_name, 1)) else n for n in unknown
        ]
        raise MCPMuxError(f"no such tool in profile {resolved.name}: {', '.join(hints)}; see `mcpmux tools --all`")
    chosen = [by_name[name] for name in tools] if tools else routes
    changed = [c for c in compare(pins, chosen) if c.status != "unchanged"]
    updated = accept(pins, chosen) if tools else accept_all(pins, chosen)
    save_pins(path, updated, resolved.name)
    for check in changed:
        say(f"pinned {check.route.exposed} ({check.status})")
    err_console.print(f"{len(changed)} of {len(chosen)} tools newly pinned in {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(pin_app, name="pin")
