"""The bundled demo profile runs the server releases its lock file's pins were taken from."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version

from tests.conftest import REPO

PINNED = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)==(?P<version>[0-9][A-Za-z0-9.]*)")


def demo_extra() -> list[str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["demo"]


def demo_commands() -> list[str]:
    servers = tomllib.loads((REPO / "profiles" / "demo.toml").read_text())["servers"]
    return [server["command"] for server in servers.values()]


def test_the_demo_extra_pins_each_demo_server_to_one_release() -> None:
    pins = {m["name"]: m["version"] for req in demo_extra() if (m := PINNED.fullmatch(req))}
    assert len(pins) == len(demo_extra()), f"every demo requirement is NAME==VERSION: {demo_extra()}"
    # Each server the demo profile runs is the console script of its own package, pinned here.
    assert sorted(pins) == sorted(demo_commands())


def test_the_installed_demo_servers_are_the_pinned_releases() -> None:
    for req in demo_extra():
        match = PINNED.fullmatch(req)
        assert match is not None, req
        assert version(match["name"]) == match["version"], f"pip install -e '.[demo]' installs {req}"


def test_the_demo_lock_matches_what_the_pinned_releases_serve() -> None:
    # --exit-code: 1 if any tool's definition differs from its pin, or a tool is not pinned.
    done = subprocess.run(
        [sys.executable, "-m", "mcpmux", "pin", "diff", "--profile", "demo", "--exit-code", "--trust"],
        capture_output=True,
        text=True,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 14 tools match their pins" in done.stderr
