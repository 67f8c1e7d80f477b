"""Registers every command group on the typer app; one import per module keeps `--help` cheap to extend."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from mcpmux.cli import audit_cmd, gateway_cmd, profile_cmd, secret_cmd

    gateway_cmd.register(app)
    profile_cmd.register(app)
    secret_cmd.register(app)
    audit_cmd.register(app)
