"""The host's `initialize` answer carries the downstreams' instructions and exactly their capabilities."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mcpmux.secrets.store import KeyringStore
from tests.conftest import FIXTURES, fixture_server_toml, host_session

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def slow_server(name: str, seconds: float, instructions: str) -> str:
    args = [str(FIXTURES / "faulty_server.py"), "--name", name, "--slow-start", str(seconds)]
    quoted = ", ".join(f'"{a}"' for a in [*args, "--instructions", instructions])
    return f'[servers.{name}]\ncommand = "{sys.executable}"\nargs = [{quoted}]\n'


async def seen_started(profile: Path) -> None:
    """One session that waits for every server's first start, so mcpmux has learned their facts."""
    async with host_session(profile) as host:
        await host.list_tools()


async def test_downstream_instructions_reach_the_host_attributed_per_server_once_seen(
    write_profile: WriteProfile,
):
    profile = write_profile(
        fixture_server_toml("alpha", "--instructions", "Call echo before anything else.")
        + fixture_server_toml("beta")
        + fixture_server_toml("gamma", "--instructions", "Gamma is read-only.", namespace="false")
    )
    await seen_started(profile)
    async with host_session(profile) as host:
        instructions = (await host.initialize()).instructions or ""
    assert instructions.startswith("mcpmux gateway, profile 'test'.")
    assert (
        "## Instructions from server 'alpha' (its tools are prefixed 'alpha__')\nCall echo before anything else."
        in (instructions)
    )
    assert "## Instructions from server 'gamma' (its tools keep their names)\nGamma is read-only." in instructions
    assert "from server 'beta'" not in instructions  # it has none


async def test_a_new_slow_server_delays_initialize_boundedly_and_is_remembered_for_the_next_run(
    write_profile: WriteProfile,
):
    profile = write_profile(slow_server("sloth", 6, "Sloth answers slowly."))
    began = time.monotonic()
    async with host_session(profile) as host:
        first = (await host.initialize()).instructions or ""
        answered_after = time.monotonic() - began
        await host.list_tools()  # waits for the server's first start, which records its facts
    assert "Sloth answers slowly." not in first  # not known within the bounded wait
    assert answered_after < 6  # by the time mcpmux is 0.85 s old (later on a busy machine), not the server's 6 s

    async with host_session(profile) as host:
        second = (await host.initialize()).instructions or ""
    assert "## Instructions from server 'sloth'" in second
    assert "Sloth answers slowly." in second


async def test_instructions_with_invisible_characters_are_withheld_from_the_host(write_profile: WriteProfile):
    hidden = "Helpful server.\U000e0049\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065"
    profile = write_profile(fixture_server_toml("alpha", "--instructions", hidden))
    await seen_started(profile)
    async with host_session(profile) as host:
        instructions = (await host.initialize()).instructions or ""
    assert "Helpful server." not in instructions
    assert "withheld by mcpmux: they contain invisible characters" in instructions


async def test_a_secret_in_downstream_instructions_is_redacted_for_the_host_and_the_cache(
    write_profile: WriteProfile, mcpmux_home: Path
):
    name, value = f"instr-{uuid.uuid4().hex[:8]}", f"tok-{uuid.uuid4().hex}"
    store = KeyringStore()
    with anyio.fail_after(30):
        await store.set(name, value)
    try:
        toml = fixture_server_toml(
            "alpha", "--instructions", f"token is {value}", env=f'{{ TOKEN = "{{secret:{name}}}" }}'
        )
        profile = write_profile(toml)
        await seen_started(profile)
        async with host_session(profile) as host:
            instructions = (await host.initialize()).instructions or ""
    finally:
        with anyio.fail_after(30):
            await store.delete(name)
    assert "token is" in instructions
    assert value not in instructions
    cached = [p.read_text() for p in (mcpmux_home / "state" / "cache").glob("alpha.*.facts.json")]
    assert cached and "token is" in cached[0] and value not in cached[0]


async def test_capabilities_advertised_are_those_the_downstreams_have(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + fixture_server_toml("beta"))
    await seen_started(profile)
    async with host_session(profile) as host:
        caps = (await host.initialize()).capabilities
    # SDK servers built with MCPServer offer tools, prompts and resources, without subscribe, completions or logging.
    assert caps.tools is not None and caps.tools.list_changed  # mcpmux itself announces catalog changes
    assert caps.prompts is not None
    assert caps.resources is not None and not caps.resources.subscribe
    assert caps.completions is None
    assert caps.logging is None
