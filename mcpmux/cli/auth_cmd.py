"""`mcpmux auth`: sign in to remote servers with OAuth, see who is signed in, sign out.

Tokens go to the keyring only (see mcpmux/oauth/storage.py) and are never printed:
`status` shows whether a server is signed in, when its token expires and what was granted.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
import orjson
import typer

from mcpmux.cli._console import cell, out_console, say
from mcpmux.cli._options import ProfileOption
from mcpmux.errors import ControlError, MCPMuxError
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.profile.model import Profile, ServerSpec
from mcpmux.secrets.store import KeyringStore

sub = typer.Typer(help="Sign in to remote servers that use OAuth (tokens stay in the keyring, never printed).")

ServerArgument = Annotated[str, typer.Argument(help="The server's name in the profile.", show_default=False)]


def _profile(name: str | None) -> Profile:
    from mcpmux.profile.lookup import resolve_profile

    return resolve_profile(name)


def _server(profile: Profile, name: str) -> ServerSpec:
    spec = profile.server(name)
    if spec is None:
        known = ", ".join(s.name for s in profile.servers if s.url is not None) or "none"
        raise MCPMuxError(f"profile {profile.path} has no server '{name}' (its remote servers: {known})")
    return spec


@sub.command("login")
def login_cmd(
    server: ServerArgument,
    profile: ProfileOption = None,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in URL instead of opening a browser.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the browser to come back.", min=1)] = 300.0,
) -> None:
    """Sign in to SERVER: the browser opens its sign-in page; the tokens go to the keyring."""
    from mcpmux.oauth.login import login
    from mcpmux.secrets.backends import default_store

    resolved = _profile(profile)
    spec = _server(resolved, server)
    storage = anyio.run(
        lambda: login(spec, default_store(), say=say, open_browser=not no_browser, wait_seconds=timeout)
    )
    say(f"signed in to server '{server}'{_granted(storage)}; the token is in the keyring")
    assert spec.url is not None
    if restarted := anyio.run(_tell_running_serves, server, spec.url):
        say(f"server '{server}' is starting again in {restarted} running serve(s)")
    from mcpmux.cli.secret_cmd import warn_unless_os_keyring

    warn_unless_os_keyring()


@sub.command("status")
def status_cmd(
    profile: ProfileOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Whether each remote server of the profile that uses OAuth is signed in, and until when."""
    resolved = _profile(profile)
    rows = anyio.run(_statuses, [s for s in resolved.servers if s.url is not None])
    if as_json:
        out_console.print_json(orjson.dumps(rows).decode())
        return
    if not rows:
        say(f"profile {resolved.path} has no remote servers")
        return
    from rich.table import Table

    table = Table("server", "url", "oauth", "expires", "scopes")
    for row in rows:
        expires = row["expires_in_seconds"]
        shown = "-" if expires is None else ("expired (refreshes on use)" if expires <= 0 else f"in {expires} s")
        table.add_row(cell(row["server"]), cell(row["url"]), cell(row["state"]), shown, cell(row["scopes"] or "-"))
    out_console.print(table)


async def _statuses(servers: list[ServerSpec]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for spec in servers:
        assert spec.url is not None
        row: dict[str, Any] = {"server": spec.name, "url": spec.url, "expires_in_seconds": None, "scopes": None}
        if spec.oauth is None:
            rows.append({**row, "state": "not used"})
            continue
        storage = KeyringTokenStorage(KeyringStore(), spec.name, spec.url)
        await storage.load()
        left = storage.seconds_left()
        row["state"] = "signed in" if storage.signed_in else "not signed in"
        row["expires_in_seconds"] = None if left is None or not storage.signed_in else int(left)
        row["scopes"] = storage.tokens.scope if storage.tokens else None
        row["client"] = spec.oauth.client_id or ("registered" if storage.client_info else None)
        rows.append(row)
    return rows


@sub.command("logout")
def logout_cmd(server: ServerArgument, profile: ProfileOption = None) -> None:
    """Forget SERVER's tokens and client registration (the keyring entry); sign in again with `auth login`."""
    resolved = _profile(profile)
    spec = _server(resolved, server)
    if spec.url is None:
        raise MCPMuxError(f"server '{server}' is a local server; it has no sign-in to forget")
    storage = KeyringTokenStorage(KeyringStore(), spec.name, spec.url)
    if not anyio.run(storage.forget):
        say(f"server '{server}' was not signed in; nothing to forget")
        return
    say(f"signed out of server '{server}': its tokens are gone from the keyring")


async def _tell_running_serves(server: str, url: str) -> int:
    """Ask each running `serve` to start `server` again if it failed for want of a sign-in; how many did."""
    from mcpmux.control import list_endpoints, request

    restarted = 0
    for endpoint in list_endpoints():
        try:
            reply = await request(endpoint.path, "signed_in", server=server, url=url)
        except ControlError:
            continue  # one that is exiting, or older and without the op: it signs in on its next start
        restarted += reply.get("restarted") is True
    return restarted


def _granted(storage: KeyringTokenStorage) -> str:
    tokens, left = storage.tokens, storage.seconds_left()
    parts = [f"scopes: {tokens.scope}"] if tokens and tokens.scope else []
    if left is not None:
        parts.append(f"expires at {time.strftime('%H:%M:%S', time.localtime(time.time() + left))}")
    return f" ({'; '.join(parts)})" if parts else ""


def register(app: typer.Typer) -> None:
    app.add_typer(sub, name="auth")
