"""Keyring fixtures: a real file-backed keyring in a temp dir, for this process and for subprocesses.

Load it from tests/conftest.py with `pytest_plugins = ["tests.conftest_keyring"]`.

`keyrings.alt.file.PlaintextKeyring` is a real backend (a file of base64 values);
its file lives under `$XDG_DATA_HOME/python_keyring/`. The fixture selects it with
`PYTHON_KEYRING_BACKEND` (so anything that asks `keyring.get_keyring()` afresh, or
any subprocess, gets the same one) and installs the instance as keyring's current
backend for this process, restoring the previous one afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError
from keyrings.alt.file import PlaintextKeyring

FILE_BACKEND = "keyrings.alt.file.PlaintextKeyring"


def keyring_env(tmp_path: Path) -> dict[str, str]:
    """Environment variables that make a subprocess use the same file keyring as `file_keyring`."""
    return {"PYTHON_KEYRING_BACKEND": FILE_BACKEND, "XDG_DATA_HOME": str(tmp_path / "keyring")}


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaintextKeyring]:
    """A fresh, empty file keyring in `tmp_path`, current for this process and inherited by subprocesses."""
    for key, value in keyring_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    backend = keyring.core.load_env()
    assert isinstance(backend, PlaintextKeyring)
    assert Path(backend.file_path).is_relative_to(tmp_path), backend.file_path
    # keyring caches its backend in this module global; monkeypatch restores the previous one.
    monkeypatch.setattr(keyring.core, "_keyring_backend", backend)
    yield backend


class BlockingKeyring(KeyringBackend):
    """A backend that answers only once `release` is set, as a locked Secret Service waiting for a prompt does.

    With `read_only`, storing fails at once instead (PasswordSetError("read-only")).
    """

    # 0: keyring registers every KeyringBackend subclass and chains those with a priority above 0, so a test
    # backend that blocks would join the real chain for the rest of the run; the tests install it directly.
    priority = 0  # pyright: ignore[reportAssignmentType]

    def __init__(self, *, read_only: bool = False) -> None:
        super().__init__()
        self.release = threading.Event()
        self._read_only = read_only

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        if self._read_only:
            raise PasswordSetError("read-only")
        self.release.wait()

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait()
