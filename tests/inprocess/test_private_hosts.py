"""`shared = false` in-process: a host that stops reading holds back its own copies, not only the shared servers."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from mcpmux.downstream.memory import memory_connect
from mcpmux.downstream.private import SharedSupervisor
from mcpmux.front.hosts import Hosts
from mcpmux.gateway import open_gateway
from mcpmux.profile.load import load_profile
from tests.inprocess.scripted import ScriptedServer
from tests.inprocess.test_front import echo

pytestmark = pytest.mark.anyio


class Gate:
    """The shared servers' side of a host's back-pressure, as the gateway hands it over (shared/daemon.py)."""

    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def test_a_host_that_stops_reading_holds_back_its_own_copies_and_the_shared_servers(tmp_path: Path) -> None:
    path = tmp_path / "inprocess.toml"
    path.write_text('[servers.alpha]\ncommand = "in-process"\n[servers.own]\ncommand = "in-process"\nshared = false\n')
    servers = {"alpha": ScriptedServer({"echo": echo}), "own": ScriptedServer({"echo": echo})}
    connect = memory_connect(dict(servers), None)
    async with open_gateway(load_profile(path), connect=connect, kind=SharedSupervisor) as gateway:
        hosts = Hosts(gateway.supervisor, gateway.audit)
        front = hosts.attach()
        view = hosts.views[front]
        with anyio.fail_after(5):
            await view.ready.wait()
        shared = Gate()
        flow = hosts.flow(front, shared)
        flow.pause_reading()
        paused = (shared.paused, view.own.flow.paused)
        flow.resume_reading()
        resumed = (shared.paused, view.own.flow.paused)
        names = sorted(view.catalog.routes)
        hosts.detach(front)
    assert paused == (True, True) and resumed == (False, False)
    assert names == ["alpha__echo", "own__echo"]
    assert "own" not in gateway.supervisor.states  # the gateway's own supervisor never runs it
