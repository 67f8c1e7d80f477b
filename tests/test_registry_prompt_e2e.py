"""`mcpmux add` on a terminal: required inputs are prompted for, secrets hidden, a stored secret kept on Enter.

The command runs on a real pseudo-terminal that is its controlling terminal (as in a shell),
so the hidden prompt turns echo off as it would for a person.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from tests.conftest import uses_system_keyring
from tests.fixtures.registry_server import FixtureRegistry

MCPMUX = Path(sys.executable).parent / "mcpmux"
SECRET = "weather-weather-api-key"
# Makes the pty the child's controlling terminal, then runs mcpmux (a new session has none).
ON_TERMINAL = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@pytest.fixture
def registry() -> Iterator[FixtureRegistry]:
    with FixtureRegistry() as running:
        yield running


@pytest.fixture(autouse=True)
def forget_secret() -> Iterator[None]:
    yield
    if uses_system_keyring():  # the session's real Secret Service is shared by every test: leave it as found
        subprocess.run([str(MCPMUX), "secret", "delete", SECRET], capture_output=True, check=False)


class Terminal:
    """mcpmux running on a pseudo-terminal: read what it shows, type answers."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", ON_TERMINAL, str(MCPMUX), *args], stdin=slave, stdout=slave, stderr=slave, env=env
        )
        os.close(slave)
        self.shown = ""

    def _read(self, deadline: float) -> bool:
        """Read what is shown until `deadline`; False once the terminal is closed (the command ended)."""
        ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every process holding the terminal has ended
            return False
        self.shown += chunk.decode(errors="replace")
        return bool(chunk)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.shown:
            assert time.monotonic() < deadline, f"never showed {text!r}; showed:\n{self.shown}"
            assert self._read(deadline), f"ended before showing {text!r}; showed:\n{self.shown}"

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        """Read everything until the command ends (so it never blocks on a full terminal), then its exit code."""
        deadline = time.monotonic() + timeout
        try:
            while self._read(deadline):
                assert time.monotonic() < deadline, f"did not end; showed:\n{self.shown}"
            return self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.master)


def test_a_required_secret_is_asked_for_hidden_and_a_stored_one_is_kept_on_enter(
    registry: FixtureRegistry, mcpmux_home: Path, file_keyring: PlaintextKeyring
):
    profile = mcpmux_home / "profiles" / "work.toml"
    profile.parent.mkdir(parents=True)
    profile.write_text('[servers.time]\ncommand = "mcp-server-time"\n')
    env = {**os.environ, "MCPMUX_REGISTRY": registry.url}
    typed = f"typed-{uuid.uuid4().hex}"

    first = Terminal("add", "io.github.example/weather", "-p", "work", env=env)
    # The space after the colon is written by getpass once echo is off and typeahead flushed: type only then.
    first.wait_for("environment variable WEATHER_API_KEY (API key for the weather service): ")
    first.type(typed)
    assert first.finish() == 0, first.shown
    assert typed not in first.shown  # echo was off
    assert keyring.get_password("mcpmux", SECRET) == typed
    entry = tomllib.loads(profile.read_text())["servers"]["weather"]
    assert entry["env"] == {"WEATHER_API_KEY": {"secret": SECRET}, "WEATHER_UNITS": "celsius"}

    again = Terminal("add", "io.github.example/weather@0.4.0", "-p", "work", "--force", env=env)
    again.wait_for("Enter keeps the stored one: ")
    again.type("")
    assert again.finish() == 0, again.shown
    assert keyring.get_password("mcpmux", SECRET) == typed
    assert tomllib.loads(profile.read_text())["servers"]["weather"]["args"] == ["weather-mcp-server@0.4.0"]
