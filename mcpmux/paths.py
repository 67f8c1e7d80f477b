"""Where mcpmux keeps its own state.

`MCPMUX_HOME`, when set, holds everything (tests and CI rely on it): config at its top, state in
its `state/` folder; otherwise the platform's config and state directories (via platformdirs).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs

from mcpmux.errors import MCPMuxError

APP = "mcpmux"
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")


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
        """Per-downstream stderr logs (in one folder per profile) and crash reports."""
        return self.state_dir / "logs"

    def profile_logs_dir(self, profile: Path) -> Path:
        """The downstream logs of one profile file: `logs/<name>-<8 hex of its path's sha256>/`.

        Keyed by the file's real path, not its name: a project's `demo` and a user's `demo` never share.
        """
        real = profile.expanduser().resolve()
        name = _UNSAFE_IN_NAME.sub("_", real.name.removesuffix(".toml"))[:40] or "profile"
        return self.logs_dir / f"{name}-{hashlib.sha256(str(real).encode()).hexdigest()[:8]}"

    def server_log(self, profile: Path, server: str, pid: int | None = None) -> Path:
        """One downstream's stderr log for one serve process: `<server>.<pid>.log` in its profile's log folder.

        Per process, so two serves of one profile (two hosts, say) never write into each other's log;
        `mcpmux logs` shows the newest, and each start keeps only a few of dead serves (downstream/logs.py).
        """
        return self.profile_logs_dir(profile) / f"{server}.{os.getpid() if pid is None else pid}.log"


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


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and each missing parent owner-only, since it may hold logs, trust records and audit records.

    pathlib's `mkdir(parents=True)` gives the parents the umask's mode (0755), hence one level at a time.
    A folder that already exists is left as it is (`check_private` and `mcpmux doctor` judge it).
    """
    missing: list[Path] = []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return path


def write_private(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` whole, 0600 from its creation (never chmod-ed after the content is in).

    A temp file beside it (mkstemp: 0600, never following a planted link) renamed over it: a reader
    (a running serve watching the file) sees the old content or the new, never half. `durable` fsyncs first.
    """
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_private(path: Path, data: bytes) -> None:
    """Create `path` 0600 with `data`; `FileExistsError` if it exists (O_EXCL: race-free, and never through a link)."""
    ensure_private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def open_private(path: Path, mode: str = "ab") -> BinaryIO:
    """Open `path` for writing ("ab": append, "wb": truncate), creating it 0600; its folder must exist."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    if mode == "ab":
        flags |= os.O_APPEND
    elif mode == "wb":
        flags |= os.O_TRUNC
    else:
        raise ValueError(f"open_private takes 'ab' or 'wb', not {mode!r}")
    return os.fdopen(os.open(path, flags, PRIVATE_FILE_MODE), mode)


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
