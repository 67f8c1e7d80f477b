"""Options and settings shared by several commands: one spelling and one reading of each, everywhere."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

PROFILE_HELP = "Profile name or path; default: the active profile (or ./profiles/demo.toml)."


def complete_profile(incomplete: str) -> list[str]:
    """Shell completion of -p/--profile: the names `profile list` shows from here."""
    from mcpmux.profile.lookup import list_profiles

    try:
        names = {entry.name for entry in list_profiles()}
    except OSError:  # an unreadable folder: no suggestions rather than an error in the middle of a command line
        return []
    return sorted(name for name in names if name.startswith(incomplete))


ProfileOption = Annotated[
    str | None, typer.Option("--profile", "-p", help=PROFILE_HELP, autocompletion=complete_profile)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object to stdout (its shape: README, 'JSON output').")
]
TIME_HELP = "10m, 2h, 3d, 1w (ago), +2h (from now), now, today, yesterday, or ISO 8601 (local unless Z/offset)."

READY_WAIT_SECONDS = 60.0
"""How long a one-shot command (tools, call, pin) waits for the profile's downstreams to start."""


def parse_time_option(value: str | None, option: str) -> datetime | None:
    """The value of a time option (`mcpmux.timespec`), or a usage error naming `option` and the accepted forms."""
    from mcpmux.timespec import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def one_profile(argument: str | None, option: str | None) -> str | None:
    """The profile a command was given as its argument or with -p/--profile (the same one if both)."""
    if argument is not None and option is not None and argument != option:
        raise typer.BadParameter(
            f"two profiles given ({argument!r} and {option!r}); give one, as the argument or with -p",
            param_hint="-p/--profile",
        )
    return argument if argument is not None else option
