"""Shared fixtures: state isolation, profiles written to temp dirs, a host session over real stdio."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from mcp import ClientSession, StdioServerParameters, stdio_client

pytest_plugins = ["tests.conftest_keyring"]

# Property tests run the same examples on every machine, so CI never fails on a draw nobody can repeat;
# `HYPOTHESIS_PROFILE=explore pytest` draws afresh (and more) to look for new counterexamples.
settings.register_profile("mcpmux", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mcpmux"))

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_SERVER = FIXTURES / "fixture_server.py"
REPO = Path(__file__).parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # mcpmux's relay runs on asyncio's pipe protocols


@pytest.fixture(autouse=True)
def mcpmux_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MCPMUX_HOME and a file keyring, so no test touches the user's state."""
    home = tmp_path / "home"
    monkeypatch.setenv("MCPMUX_HOME", str(home))
    if not uses_system_keyring():
        from tests.conftest_keyring import keyring_env  # imported late: pytest_plugins must load it first

        for key, value in keyring_env(tmp_path).items():
            monkeypatch.setenv(key, value)
    return home


def uses_system_keyring() -> bool:
    """In CI the end-to-end tests use the real Secret Service (GNOME Keyring on a private bus)."""
    return os.environ.get("MCPMUX_REQUIRE_SECRET_SERVICE") == "1" and "DBUS_SESSION_BUS_ADDRESS" in os.environ


def fixture_server_toml(name: str, *extra_args: str, **settings: str) -> str:
    args = ", ".join(f'"{a}"' for a in [str(FIXTURE_SERVER), *extra_args])
    lines = [f"[servers.{name}]", f'command = "{sys.executable}"', f"args = [{args}]"]
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_profile(tmp_path: Path) -> Iterator[object]:
    from mcpmux.profile.trust import trust_profile

    def write(text: str, name: str = "test") -> Path:
        path = tmp_path / "profiles" / f"{name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        trust_profile(path)  # a profile outside MCPMUX_HOME/profiles runs only once trusted (mcpmux.trust)
        return path

    yield write


def serve_params(profile: Path, *, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpmux", "serve", "--profile", str(profile)],
        env={**os.environ, **(env or {})},
        cwd=str(REPO),
    )


@asynccontextmanager
async def host_session(
    profile: Path, *, env: dict[str, str] | None = None, **session_options: Any
) -> AsyncGenerator[ClientSession]:
    """An SDK client acting as the host, with `mcpmux serve` as its stdio server (options go to ClientSession)."""
    async with (
        stdio_client(serve_params(profile, env=env)) as (read, write),
        ClientSession(read, write, **session_options) as session,
    ):
        await session.initialize()
        yield session


def processes_marked_by(pid: int) -> list[int]:
    """Live processes whose environment says a given mcpmux pid started them (see mcpmux.process.MARK_ENV)."""
    marker = f"MCPMUX_PARENT_PID={pid}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ")[1][0]
        except OSError:
            continue
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def gateways(mcpmux_home: Path) -> Iterator[None]:
    """Whatever shared gateway a test leaves running is ended (gently) and waited for: no test leaks one."""
    import signal

    import anyio

    from mcpmux.control import pid_alive
    from tests.e2e_helpers import gateway_pids, wait_for_exit

    yield
    for pid in gateway_pids(mcpmux_home):
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            anyio.run(wait_for_exit, pid, 15.0)
