"""Finding profiles: by name or path, project and user folders, the active profile, the default.

A NAME is looked up as `profiles/NAME.toml` in the current directory and each of its
parents up to the repository root (the first folder holding `.git`; the walk also stops
below `$HOME` and the filesystem root), nearest first, then in the user profiles folder;
a PATH is used as is.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcpmux.errors import Problem, ProfileError
from mcpmux.paths import state_paths, write_private
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import Profile

PROJECT_DIR = "profiles"
DEFAULT_PROFILE = "demo"


def profile_hash(path: Path) -> str:
    """sha256 of the file's exact bytes: what trust and audit records pin."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    name: str
    path: Path
    source: Literal["project", "user"]
    active: bool


def _is_path(value: str, base: Path) -> bool:
    return "/" in value or os.sep in value or value.endswith(".toml") or (base / value).expanduser().is_file()


def project_dirs(base: Path) -> list[Path]:
    """`profiles/` folders from `base` up to the repository root, nearest first (existing or not)."""
    try:
        home: Path | None = Path.home().resolve()
    except RuntimeError:  # no home directory known
        home = None
    folders: list[Path] = []
    for folder in (base.resolve(), *base.resolve().parents):
        # The filesystem root and $HOME are never a project: a stray ~/profiles is not the team's.
        if folder == home or folder.parent == folder:
            break
        folders.append(folder / PROJECT_DIR)
        if (folder / ".git").exists():
            break
    return folders


def _search_dirs(base: Path) -> list[tuple[Literal["project", "user"], Path]]:
    project: list[tuple[Literal["project", "user"], Path]] = [("project", d) for d in project_dirs(base)]
    return [*project, ("user", state_paths().profiles_dir)]


def _profile_files(base: Path) -> Iterator[tuple[Literal["project", "user"], Path]]:
    for source, folder in _search_dirs(base):
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
            if not path.name.endswith(".lock.toml"):  # tool pins beside a profile (pins.py), not a profile
                yield source, path


def find_profile(name_or_path: str, *, cwd: Path | None = None) -> Path:
    """A path (has `/`, ends in `.toml`, or exists) as is; a name in the project folders, then the user's."""
    base = cwd or Path.cwd()
    if _is_path(name_or_path, base):
        path = (base / Path(name_or_path).expanduser()).resolve()
        if path.is_file():
            return path
        raise ProfileError([Problem(path, None, "", "no such profile file", "check the path")])
    candidates = [folder / f"{name_or_path}.toml" for _, folder in _search_dirs(base)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    names = sorted({path.stem for _, path in _profile_files(base)})
    available = f"available: {', '.join(names)}" if names else "no profiles exist yet"
    looked = ", ".join(str(c) for c in candidates)
    message = f"no profile named '{name_or_path}' (looked for {looked}; {available})"
    fix = "run `mcpmux profile list` to see the names, or pass a path"
    raise ProfileError([Problem(candidates[0], None, "", message, fix)])


def list_profiles(*, cwd: Path | None = None) -> list[ProfileEntry]:
    """Project profiles first, then the user's; a name in both is listed twice (the project one wins lookups)."""
    base, name, active = cwd or Path.cwd(), active_profile_name(), None
    with contextlib.suppress(ProfileError):  # a stale active name just marks nothing active
        active = None if name is None else find_profile(name, cwd=base)
    return [ProfileEntry(path.stem, path, source, path.resolve() == active) for source, path in _profile_files(base)]


def active_profile_name() -> str | None:
    """What `mcpmux profile use` recorded: an absolute path (a name, if an older mcpmux wrote it); None if nothing."""
    try:
        value = state_paths().active_profile_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


@dataclass(frozen=True, slots=True)
class ActiveProfile:
    """The recorded active profile and what it resolves to from one folder."""

    recorded: str
    path: Path | None
    problem: str = ""

    @property
    def by_name(self) -> bool:
        """Recorded as a bare name, which resolves differently (or not at all) from another folder."""
        return not Path(self.recorded).is_absolute()


def active_profile(*, cwd: Path | None = None) -> ActiveProfile | None:
    """The active profile as `serve` started in `cwd` would find it; None if none was chosen."""
    recorded = active_profile_name()
    if recorded is None:
        return None
    try:
        return ActiveProfile(recorded, find_profile(recorded, cwd=cwd))
    except ProfileError as exc:
        return ActiveProfile(recorded, None, "; ".join(p.message for p in exc.problems))


def set_active_profile(name_or_path: str, *, cwd: Path | None = None) -> Path:
    """Record the active profile once it resolves and loads cleanly; returns its path.

    The absolute path is recorded, never the name: a host starts `mcpmux serve` in a folder
    of its own choosing, where a project profile's name does not resolve, and where a user
    profile's name could be shadowed by that folder's own `profiles/NAME.toml`.
    """
    path = find_profile(name_or_path, cwd=cwd)
    load_profile(path)
    # Written whole (temp file + rename): a running `serve` watching this file never reads half a name.
    write_private(state_paths().active_profile_file, (str(path) + "\n").encode())
    return path


def resolve_profile_path(arg: str | None, *, cwd: Path | None = None) -> Path:
    """The profile to use: `arg`, else the active one, else `./profiles/demo.toml`."""
    base = cwd or Path.cwd()
    chosen = arg or active_profile_name()
    if chosen is not None:
        return find_profile(chosen, cwd=base)
    demo = base / PROJECT_DIR / f"{DEFAULT_PROFILE}.toml"
    if demo.is_file():
        return demo.resolve()
    fix = "run `mcpmux profile use NAME`, or pass `--profile NAME`"
    message = f"no profile given, no active profile set, and no {PROJECT_DIR}/{DEFAULT_PROFILE}.toml here"
    raise ProfileError([Problem(state_paths().active_profile_file, None, "", message, fix)])


def resolve_profile(arg: str | None, *, cwd: Path | None = None) -> Profile:
    """Find and load the profile to use (see `resolve_profile_path`)."""
    return load_profile(resolve_profile_path(arg, cwd=cwd))
