"""Spawning downstreams: each is set to die with mcpmux, whichever way it was spawned."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mcpmux.downstream import process
from tests.conftest import FIXTURES, host_session

pytestmark = pytest.mark.anyio


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
async def test_a_downstream_is_killed_by_the_kernel_when_mcpmux_dies(write_profile: Any) -> None:
    # A SIGKILLed mcpmux cannot stop anything itself: only the parent-death signal ends a
    # downstream that ignores stdin EOF (the orphan sweep of a later serve is the second line).
    faulty = FIXTURES / "faulty_server.py"
    profile = write_profile(f'[servers.alpha]\ncommand = "{sys.executable}"\nargs = ["{faulty}"]\n')
    async with host_session(profile) as host:
        result = await host.call_tool("alpha__death_signal", {})
    assert result.structured_content == {"result": signal.SIGKILL}


def test_linux_spawns_through_setpriv_when_util_linux_has_it() -> None:
    # The fast path (no preexec_fn, so no full fork of mcpmux per spawn) is taken where it can be.
    if sys.platform.startswith("linux") and Path("/usr/bin/setpriv").exists():
        assert process._PDEATHSIG_PREFIX[1:] == ["--pdeathsig", "KILL", "--"]  # pyright: ignore[reportPrivateUsage]
        assert process._PDEATHSIG_HOOK is None  # pyright: ignore[reportPrivateUsage]
    else:
        assert process._PDEATHSIG_PREFIX == []  # pyright: ignore[reportPrivateUsage]


def test_the_age_of_this_process_counts_from_its_start_not_from_mcpmux_import() -> None:
    # A first initialize waits for new servers until mcpmux is this old: interpreter start-up counts.
    since_import = time.monotonic() - process._IMPORTED  # pyright: ignore[reportPrivateUsage]
    assert since_import <= process.process_age() < since_import + 3600
