"""`mcpmux profile trust|untrust` and the `--trust` option of the commands that start downstreams.

These commands live on the `profile` sub-app of `profile_cmd`, registered from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mcpmux.cli._console import err_console, out_console
from mcpmux.cli.profile_cmd import sub
from mcpmux.errors import MCPMuxError, ProfileError
from mcpmux.profile import lookup as profiles
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import Profile
from mcpmux.profile.trust import (
    describe,
    is_user_profile,
    load_records,
    require_trusted,
    trust_profile,
    untrust_profile,
)

TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Trust the profile's current content first (prints what it runs), like `mcpmux profile trust`.",
    ),
]


def _say(text: str) -> None:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def admit(profile: Profile, trust: bool = False) -> None:
    """Let `profile` run: trust it first when asked (`--trust`), else require that it is trusted."""
    if trust and not is_user_profile(profile.path):
        record = trust_profile(profile.path)
        _say(f"trusting {record.path} (sha256 {record.sha256[:12]}); it runs:\n{describe(profile)}")
        return
    require_trusted(profile)


def _show() -> None:
    records = load_records()
    if not records:
        _say("no profiles are trusted yet (profiles in your own profiles folder need no trust)")
        return
    table = Table("path", "sha256", "trusted at", "matches")
    for record in sorted(records.values(), key=lambda r: str(r.path)):
        matches = {True: "yes", False: "[red]changed[/red]", None: "[red]file missing[/red]"}[record.still_matches()]
        table.add_row(escape(str(record.path)), record.sha256[:12], record.trusted_at, matches)
    out_console.print(table)


@sub.command("trust")
def trust(
    target: Annotated[
        str | None,
        typer.Argument(help="Profile name or path; default: the one `serve` would use.", show_default=False),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="List trusted profiles and whether each still matches.")] = False,
) -> None:
    """Trust a profile's exact content, so that `serve`, `tools`, `call` and `profile use` run it."""
    if show:
        if target is not None:
            raise MCPMuxError("`mcpmux profile trust --show` takes no profile; drop the name or the --show")
        _show()
        return
    path = profiles.resolve_profile_path(target)
    profile = load_profile(path)  # an invalid profile is refused here, with its problems
    if is_user_profile(path):
        _say(f"{path} is in your own profiles folder: it is trusted without a record")
        return
    record = trust_profile(path)
    _say(f"trusted {record.path} (sha256 {record.sha256[:12]}); it runs:\n{describe(profile)}")


@sub.command("untrust")
def untrust(target: Annotated[str, typer.Argument(help="Profile name or path.")]) -> None:
    """Forget the trust of a profile: it will not run until trusted again."""
    try:
        path = profiles.resolve_profile_path(target)
    except ProfileError:
        if target.endswith(".toml") or "/" in target:  # a trusted file that is gone can still be forgotten
            path = Path(target).expanduser().absolute()
        else:
            raise
    if is_user_profile(path):
        raise MCPMuxError(f"{path} is in your own profiles folder, which is always trusted; move it out to untrust it")
    if not untrust_profile(path):
        raise MCPMuxError(f"{path} was not trusted; `mcpmux profile trust --show` lists the trusted ones")
    _say(f"untrusted {path}")


def register(app: typer.Typer) -> None:
    """Importing this module adds `trust` and `untrust` to `profile_cmd.sub` (the decorators above)."""
