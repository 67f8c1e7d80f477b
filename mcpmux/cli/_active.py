"""Which profile is active, for `profile list` and `status`: one line, or a JSON object."""

from __future__ import annotations

from typing import Any

from mcpmux.profile.lookup import DEFAULT_PROFILE, PROJECT_DIR, active_profile


def active_line() -> str:
    """What `serve` without `--profile` would use, and the fix when that is not what a host would find."""
    active = active_profile()
    if active is None:
        return (
            f"active profile: none (choose one with `mcpmux profile use NAME`; "
            f"until then commands use ./{PROJECT_DIR}/{DEFAULT_PROFILE}.toml of the folder they run in)"
        )
    if active.path is None:
        return (
            f"active profile: {active.recorded} does not resolve ({active.problem}); "
            "choose another with `mcpmux profile use NAME`"
        )
    if active.by_name:
        return (
            f"active profile: '{active.recorded}', recorded by name: here it is {active.path}, but a host that "
            f"starts `mcpmux serve` in another folder may not find it; record its path with "
            f"`mcpmux profile use {active.path}`"
        )
    return f"active profile: {active.path.stem} ({active.path})"


def active_json() -> dict[str, Any] | None:
    """The active profile for `--json`: what was recorded, its path from here (None: it does not resolve), and why."""
    active = active_profile()
    if active is None:
        return None
    path = None if active.path is None else str(active.path)
    return {"recorded": active.recorded, "path": path, "by_name": active.by_name, "problem": active.problem or None}
