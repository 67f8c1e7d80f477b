"""Every file mcpmux writes into its state is 0600 in 0700 folders, whatever the umask (README: "Where state lives")."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcpmux.downstream.logs import rotate_running, rotated_path
from mcpmux.paths import create_private, ensure_private_dir, open_private, write_private
from tests.conftest import FIXTURES, fixture_server_toml


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The common umask (022), under which a file created without an explicit mode is 0644 and a folder 0755."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mcpmux(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def modes(root: Path) -> dict[str, str]:
    """Every folder and file under `root` (itself included) → its permission bits, as octal text."""
    found = {".": oct(root.stat().st_mode & 0o777)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = oct(path.lstat().st_mode & 0o777)
    return found


def test_every_folder_and_file_a_round_of_commands_leaves_in_the_state_is_owner_only(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    work = tmp_path / "work"
    (work / "profiles").mkdir(parents=True)
    mcpmux("profile", "new", "mine", "--user", cwd=work)  # a user profile: the config folder's profiles/
    # A lazy server writes a catalog cache and handshake facts; a user profile's pins go to pins/.
    lazy = fixture_server_toml("alpha", start='"lazy"')
    (mcpmux_home / "profiles" / "mine.toml").write_text(lazy)
    mcpmux("tools", "--profile", "mine", cwd=work)  # logs, cache, pins, audit log (and its key, without a keyring)
    mcpmux("profile", "use", "mine", cwd=work)  # active-profile
    project = work / "profiles" / "team.toml"
    project.write_text(fixture_server_toml("beta"))
    mcpmux("profile", "trust", str(project), cwd=work)  # trust.json
    config = tmp_path / "claude_desktop_config.json"
    shutil.copy(FIXTURES / "hosts" / "claude_desktop_config.json", config)
    mcpmux("import", "claude-desktop", "--path", str(config), "--yes", cwd=work)  # an imported user profile

    seen = modes(mcpmux_home)
    for name in ("profiles/mine.toml", "profiles/claude-desktop.toml", "pins/mine.lock.toml", "trust.json"):
        assert name in seen
    assert any(name.startswith("state/cache/alpha.") for name in seen)
    assert any(name.startswith("state/logs/") and name.endswith(".log") for name in seen)
    wrong = {
        name: mode
        for name, mode in seen.items()
        if mode != oct(0o700 if stat.S_ISDIR((mcpmux_home / name).lstat().st_mode) else 0o600)
    }
    assert wrong == {}
    # A project profile is the team's, to commit: `profile new` without --user keeps it readable.
    mcpmux("profile", "new", "shared", cwd=work)
    assert (work / "profiles" / "shared.toml").stat().st_mode & 0o777 == 0o644


def test_the_helpers_create_files_0600_and_every_missing_folder_0700(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    write_private(deep / "whole.json", b"{}")
    create_private(deep / "new.toml", b"x = 1\n")
    with open_private(deep / "appended.log") as log:
        log.write(b"line\n")
    for folder in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("whole.json", "new.toml", "appended.log"):
        assert (deep / name).stat().st_mode & 0o777 == 0o600
    assert ensure_private_dir(deep) == deep  # an existing folder is fine
    with pytest.raises(FileExistsError):
        create_private(deep / "new.toml", b"never overwritten")
    assert (deep / "new.toml").read_bytes() == b"x = 1\n"


def test_a_log_rotated_while_its_server_runs_stays_0600(tmp_path: Path) -> None:
    log = tmp_path / "alpha.1.log"
    with open_private(log) as f:
        f.write(b"x" * 200)
    assert rotate_running(log, 100)
    assert rotated_path(log).stat().st_mode & 0o777 == 0o600
    assert log.stat().st_mode & 0o777 == 0o600
