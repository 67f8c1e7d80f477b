"""Where mcpmux keeps its own state.

`MCPMUX_HOME`, when set, holds everything (tests and CI rely on it): config at its top, state in
its `state/` folder; otherwise the platform's config and state directories (via platformdirs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from mcpmux.errors import MCPMuxError

APP = "mcpmux"


@dataclass(frozen=True, slots=True)
class StatePaths:
    """Every file and folder of mcpmux's own state."""

    config_dir: Path
    state_dir: Path

    @property
    def profiles_dir(self) -> Path:
        """User-level profiles (trusted by being the user's own)."""
        return self.config_dir / "profiles"

    @property
    def active_profile_file(self) -> Path:
        return self.config_dir / "active-profile"

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.jsonl"

    @property
    def logs_dir(self) -> Path:
        """Per-downstream stderr logs."""
        return self.state_dir / "logs"

    def server_log(self, server: str) -> Path:
        return self.logs_dir / f"{server}.log"


def state_paths() -> StatePaths:
    """The state locations for this process, honouring `MCPMUX_HOME`."""
    home = os.environ.get("MCPMUX_HOME")
    if home:
        root = Path(home).expanduser()
        # Config at the top, state in its own folder, as the platform keeps them apart: a running serve
        # watches the config folder (profile edits, trust), and must not wake on every audit append.
        return StatePaths(config_dir=root, state_dir=root / "state")
    return StatePaths(
        config_dir=Path(platformdirs.user_config_dir(APP)),
        state_dir=Path(platformdirs.user_state_dir(APP)),
    )


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) owner-only, since it may hold logs and audit records."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def check_private(path: Path) -> None:
    """Refuse a folder of mcpmux state that others could write to (or that another user owns).

    Whoever can write there can rewrite trust records, the active profile or logs.
    A folder that does not exist yet is fine: `ensure_private_dir` creates it owner-only.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid != os.getuid():
        raise MCPMuxError(f"{path} belongs to another user (uid {info.st_uid}); use a folder of your own")
    if info.st_mode & 0o022:
        raise MCPMuxError(
            f"{path} is writable by other users (mode {info.st_mode & 0o777:o}); "
            f"make it yours alone with: chmod go-w {path}"
        )


def check_state_private(paths: StatePaths | None = None) -> None:
    """`check_private` for the config and state folders (`serve` calls it before starting anything)."""
    paths = paths or state_paths()
    for folder in dict.fromkeys((paths.config_dir, paths.state_dir)):
        check_private(folder)
