"""Registers every command group on the typer app; one import per module keeps `--help` cheap to extend."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from mcpmux.cli import (
        audit_cmd,
        auth_cmd,
        doctor_cmd,
        gateway_cmd,
        host_cmd,
        pin_cmd,
        policy_cmd,
        profile_cmd,
        registry_cmd,
        secret_cmd,
        shared_cmd,
        status_cmd,
        trust_cmd,
        url_cmd,
    )

    gateway_cmd.register(app)
    profile_cmd.register(app)
    trust_cmd.register(app)  # adds `profile trust|untrust` to profile_cmd's sub-app
    secret_cmd.register(app)
    auth_cmd.register(app)
    audit_cmd.register(app)
    status_cmd.register(app)
    pin_cmd.register(app)
    policy_cmd.register(app)
    host_cmd.register(app)
    doctor_cmd.register(app)
    registry_cmd.register(app)
    shared_cmd.register(app)
    url_cmd.register(app)
