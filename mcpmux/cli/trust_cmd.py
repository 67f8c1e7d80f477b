"""`mcpmux profile trust|untrust` and the `--trust` option of the commands that start downstreams.

These commands live on the `profile` sub-app of `profile_cmd`, registered from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mcpmux.cli._console import cell, out_console, say
from mcpmux.cli._json import print_json
from mcpmux.cli._options import ProfileOption, one_profile
from mcpmux.cli.profile_cmd import sub
from mcpmux.errors import MCPMuxError, ProfileError
from mcpmux.profile import lookup as profiles
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import Profile
from mcpmux.profile.trust import (
    TrustRecord,
    describe,
    foreign_files,
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


def _trusted_text(verb: str, record: TrustRecord, profile: Profile) -> str:
    """What was trusted: every file with the sha256 of its content (as `sha256sum` prints it), then what runs."""
    files = "".join(f"  {sha}  {path}\n" for path, sha in record.files.items())
    head = f"{verb} {record.path}, this exact content of each file it is read from (sha256, file):"
    return f"{head}\n{files}it runs:\n{describe(profile)}"


def admit(profile: Profile, trust: bool = False) -> None:
    """Let `profile` run: trust it first when asked (`--trust`), else require that it is trusted."""
    if trust and foreign_files(profile):
        # The profile loaded here is the one that runs: its parsed content is what gets trusted.
        say(_trusted_text("trusting", trust_profile(profile), profile))
        return
    require_trusted(profile)


def _show_json() -> None:
    rows: list[dict[str, Any]] = []
    for record in sorted(load_records().values(), key=lambda r: str(r.path)):
        state = record.still_matches()
        matches = "yes" if state else ("changed" if state is False else "file missing")
        extends = [{"path": str(path), "sha256": sha} for path, sha in record.extends]
        about = {"path": str(record.path), "sha256": record.sha256, "trusted_at": record.trusted_at}
        rows.append(about | {"matches": matches, "extends": extends})
    print_json({"trusted": rows})


def _show() -> None:
    records = load_records()
    if not records:
        say("no profiles are trusted yet (profiles in your own profiles folder need no trust)")
        return
    table = Table("path", "sha256", "trusted at", "matches")
    for record in sorted(records.values(), key=lambda r: str(r.path)):
        state = record.still_matches()
        matches = cell("yes") if state else cell("changed" if state is False else "file missing", "red")
        table.add_row(cell(record.path), cell(record.sha256[:12]), cell(record.trusted_at), matches)
        for path, sha in record.extends:  # every file it extends, trusted with it
            table.add_row(cell(f"  extends {path}", "dim"), cell(sha[:12], "dim"), cell(""), cell(""))
    out_console.print(table)


@sub.command("trust")
def trust(
    target: Annotated[
        str | None,
        typer.Argument(help="Profile name or path; default: the one `serve` would use.", show_default=False),
    ] = None,
    profile_option: ProfileOption = None,
    show: Annotated[bool, typer.Option("--show", help="List trusted profiles and whether each still matches.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --show: print one JSON object to stdout.")] = False,
) -> None:
    """Trust a profile's exact content (its file and every file it extends), so that `serve`, `tools`, `call` run it."""
    target = one_profile(target, profile_option)
    if as_json and not show:
        raise typer.BadParameter("only the list of trusted profiles prints JSON: add --show", param_hint="--json")
    if show:
        if target is not None:
            raise MCPMuxError("`mcpmux profile trust --show` takes no profile; drop the name or the --show")
        if as_json:
            _show_json()
        else:
            _show()
        return
    path = profiles.resolve_profile_path(target)
    profile = load_profile(path)  # an invalid profile is refused here, with its problems
    if not foreign_files(profile):
        say(f"{path} and every file it extends are in your own profiles folder: trusted without a record")
        return
    # Trust exactly what was loaded (and is printed below), not a second read of the files.
    say(_trusted_text("trusted", trust_profile(profile), profile))


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
    if untrust_profile(path):
        say(f"untrusted {path}")
        return
    if is_user_profile(path):
        raise MCPMuxError(f"{path} is in your own profiles folder, which is always trusted; move it out to untrust it")
    raise MCPMuxError(f"{path} was not trusted; `mcpmux profile trust --show` lists the trusted ones")


def register(app: typer.Typer) -> None:
    """Importing this module adds `trust` and `untrust` to `profile_cmd.sub` (the decorators above)."""
