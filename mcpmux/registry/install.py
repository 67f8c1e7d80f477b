"""Writing a planned server into a profile file: never over an existing server unless asked, never left invalid.

The profile must load cleanly before (`add` does not build on a broken file) and after: the
file is replaced whole (temp file + `os.replace`, keeping its mode), and if the result does
not load, the old text is put back and the problems are reported. A profile changed by
someone else while `add` ran (between read and write) is not overwritten.

The profile is written before the secrets are stored, and put back if storing fails, so a
failure leaves neither a profile that names missing secrets nor secrets no profile names.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from mcpmux.errors import ProfileError, RegistryError
from mcpmux.profile.edit import server_toml, with_server
from mcpmux.profile.load import load_profile, load_profile_and_text
from mcpmux.profile.lookup import resolve_profile_path
from mcpmux.profile.model import Profile


@dataclass(frozen=True, slots=True)
class Target:
    """The profile `add` writes to, as read: its path, the loaded profile and its own file's text."""

    path: Path
    profile: Profile
    text: str

    @property
    def own_servers(self) -> set[str]:
        """Servers defined in this file itself (not only inherited through `extends`)."""
        return set(cast(dict[str, object], tomllib.loads(self.text).get("servers", {})))


def open_target(profile: str | None) -> Target:
    path = resolve_profile_path(profile)
    loaded, text = load_profile_and_text(path)
    return Target(path, loaded, text)


def check_free(target: Target, server: str, force: bool) -> None:
    """Refuse to write over a server that exists, unless `force` (and only over one of this file's own)."""
    if server in target.own_servers:
        if not force:
            raise RegistryError(
                f"{target.path}: server '{server}' already exists; pass --force to replace it, "
                "or --name OTHER to add this one beside it"
            )
    elif target.profile.server(server) is not None:
        raise RegistryError(
            f"{target.path}: server '{server}' comes from a profile it extends; pass --name OTHER, or edit that file"
        )


def entry_text(target: Target, server: str, table: dict[str, object], comment: str, force: bool) -> str:
    """The profile's new text: `table` as server `server`, every other line unchanged."""
    return with_server(target.text, server, server_toml(server, table, comment), replace=force)


def write_profile(target: Target, text: str) -> Profile:
    """Replace the profile's file with `text` and load it; on any problem, the old text is put back."""
    if target.path.read_bytes().decode("utf-8", errors="replace") != target.text:
        raise RegistryError(f"{target.path} changed while mcpmux was adding to it; run the command again")
    _replace(target.path, text)
    try:
        return load_profile(target.path)
    except ProfileError as exc:
        _replace(target.path, target.text)
        problems = "; ".join(str(p) for p in exc.problems)
        message = f"the new entry does not validate, so {target.path} was left as it was: {problems}"
        raise RegistryError(message) from exc


def restore(target: Target) -> None:
    """Put the profile's text back as it was read (a step after writing it failed)."""
    _replace(target.path, target.text)


def _replace(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        Path(temp).chmod(mode)
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise
