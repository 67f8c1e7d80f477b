"""`mcpmux audit verify` as a subprocess, on a log a real `mcpmux serve` wrote, against an attacker without the key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mcpmux.audit.chain import GENESIS
from tests.audit_helpers import rechain
from tests.conftest import REPO, fixture_server_toml, host_session
from tests.e2e_helpers import serve_pid, wait_for_exit

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
Lines = list[bytes]


def audit_verify() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpmux", "audit", "verify"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=os.environ,  # MCPMUX_HOME and the keyring of this test
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def _call_line(lines: Lines, n: int) -> int:
    """The index of the n-th `tool_call` line."""
    return [i for i, raw in enumerate(lines) if b'"event":"tool_call"' in raw][n]


ATTACKS: list[tuple[str, Callable[[Lines], Lines], str]] = [
    (
        "an event removed and the chain re-hashed",
        lambda lines: rechain(lines[: _call_line(lines, 1)] + lines[_call_line(lines, 1) + 1 :], keep_macs=False),
        "but the anchor records seq",
    ),
    (
        "an event removed and the rest re-chained with their old MACs",
        lambda lines: rechain(lines[: _call_line(lines, 1)] + lines[_call_line(lines, 1) + 1 :]),
        "edited: its MAC does not match its content",
    ),
    ("the head cut", lambda lines: lines[2:], "the log does not start with its head record"),
    (
        "the head cut and the chain re-hashed from the start",
        lambda lines: rechain(lines[2:], keep_macs=False, start=(1, GENESIS)),
        "but the anchor records seq",
    ),
    ("the tail cut", lambda lines: lines[:-1], "the newest 1 event was removed"),
]


async def test_audit_verify_names_the_keyring_key_and_finds_a_removed_event_a_cut_head_and_a_cut_tail(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            for n in range(4):
                await host.call_tool("alpha__echo", {"text": f"call {n}"})
        await wait_for_exit(serve_pid(mcpmux_home))
    intact = audit_verify()
    assert intact.returncode == 0, intact.stderr
    assert "keyed with the key in the OS keyring (" in intact.stderr
    assert "service 'mcpmux', entry 'audit:hmac-key')" in intact.stderr
    assert "the anchor matches the newest event" in intact.stderr
    assert "1 file(s)" in intact.stderr and "chain intact" in intact.stderr
    log = mcpmux_home / "state" / "audit.jsonl"
    original = log.read_bytes().splitlines(keepends=True)
    for attack, tamper, words in ATTACKS:
        log.write_bytes(b"".join(tamper(list(original))))
        found = audit_verify()
        assert found.returncode == 1, f"{attack}: not found\n{found.stderr}"
        assert words in found.stderr, f"{attack}:\n{found.stderr}"
