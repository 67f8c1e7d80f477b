"""`mcpmux gateway --http [HOST:]PORT`: the profile's shared gateway in the foreground, serving hosts by URL too.

It listens on loopback only, asks every request for the user's bearer token (`mcpmux gateway token`
prints it), and also listens on the profile's Unix socket, so `serve --shared` hosts attach to the
same downstreams. It never ends for being idle: Ctrl-C or SIGTERM ends it.
"""

from __future__ import annotations

import json
from typing import Annotated

import anyio
import typer

from mcpmux.cli._console import out_console, say
from mcpmux.cli._json import print_json
from mcpmux.cli._options import JsonOption, ProfileOption
from mcpmux.cli.trust_cmd import TrustOption
from mcpmux.errors import MCPMuxError

sub = typer.Typer(
    help="Serve the profile's shared gateway by URL (MCP streamable HTTP on loopback) in the foreground.",
    invoke_without_command=True,
)

HTTP_HELP = "Serve hosts by URL on [HOST:]PORT: HOST a loopback address (default 127.0.0.1), PORT 0 for a free one."


def _address(value: str | None) -> str | None:
    from mcpmux.shared.loopback import parse_address

    if value is not None:
        try:
            parse_address(value)
        except MCPMuxError as exc:
            raise typer.BadParameter(str(exc).removeprefix("--http ")) from None
    return value


@sub.callback()
def gateway(
    ctx: typer.Context,
    http: Annotated[str | None, typer.Option("--http", help=HTTP_HELP, callback=_address)] = None,
    profile: ProfileOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    trust: TrustOption = False,
) -> None:
    """Run the profile's shared gateway in the foreground, serving hosts by URL and `serve --shared` hosts."""
    if ctx.invoked_subcommand is not None:
        return
    if http is None:
        raise typer.BadParameter("give the address to serve on, e.g. --http 127.0.0.1:0", param_hint="--http")
    _run(http, profile, quiet=quiet, trust=trust)


def _run(http: str, profile: str | None, *, quiet: bool, trust: bool) -> None:
    from mcpmux.cli.gateway_cmd import log_to_stderr
    from mcpmux.cli.trust_cmd import admit
    from mcpmux.paths import check_state_private, state_paths
    from mcpmux.profile.lookup import resolve_profile
    from mcpmux.shared import address, sock
    from mcpmux.shared.daemon import run_gateway
    from mcpmux.shared.http import HttpServing, bind
    from mcpmux.shared.loopback import parse_address
    from mcpmux.shared.token import load_or_create

    log_to_stderr(verbose=not quiet)
    paths = state_paths()
    check_state_private(paths)
    resolved = resolve_profile(profile)
    admit(resolved, trust)
    follow = profile is None  # as `serve --shared` names it: one gateway for "the active profile"
    key = address.gateway_key(None if follow else resolved.path)
    socket_path = address.socket_path(paths, key)
    sock.private_folder(address.shared_dir(paths))
    if (running := sock.connect(socket_path)) is not None:  # replacing its socket would orphan its hosts
        running.close()
        raise MCPMuxError(
            f"a shared gateway of profile {resolved.path} is already running (socket {socket_path}); "
            "end it first: `mcpmux status` shows its pid"
        )
    token = load_or_create(paths)
    listener, bound = bind(parse_address(http))

    def announce(url: str) -> None:
        say(f"mcpmux: serving profile {resolved.path} by URL: {url}")
        say(
            "mcpmux: every request needs `Authorization: Bearer <token>`; "
            f"`mcpmux gateway token --url {url}` prints a host entry with it"
        )

    async def run() -> None:
        serving = HttpServing(listener, bound, token, announce)
        await run_gateway(resolved, key=key, follow_active=follow, paths=paths, http=serving)

    with listener:
        anyio.run(run, backend="asyncio")


@sub.command("token")
def token_command(
    url: Annotated[
        str | None, typer.Option("--url", help="Print a host entry for this URL (what `gateway --http` printed).")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Print the bearer token hosts send to a gateway serving by URL (created on first use; keep it secret)."""
    from mcpmux.paths import state_paths
    from mcpmux.shared.token import load_or_create, token_path

    paths = state_paths()
    token = load_or_create(paths)
    entry = {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {token}"}} if url else None
    if json_out:
        print_json({"token": token, "path": str(token_path(paths)), "entry": entry})
    elif entry is not None:
        out_console.print(json.dumps({"mcpServers": {"mcpmux": entry}}, indent=2), markup=False, highlight=False)
    else:
        out_console.print(token, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="gateway")
