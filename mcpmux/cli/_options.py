"""Options and settings shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", "-p", help="Profile name or path; default: the active profile (or ./profiles/demo.toml)."
    ),
]
READY_WAIT_SECONDS = 60.0
"""How long a one-shot command (tools, call, pin) waits for the profile's downstreams to start."""
