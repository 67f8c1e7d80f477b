"""The shared gateway process: one set of downstreams, one front per attached host, until idle.

Started detached by the first `serve --shared` of a profile (spawn.py). Each connection on its socket
is a host: its peer uid is checked, its hello must match this gateway (profile key, mcpmux version,
attach protocol), and then its bytes are the host's MCP wire, served by a front of its own
(front/hosts.py). After the last host detaches the gateway waits `idle_seconds`, then removes its
socket, ends its downstreams and exits. Signals are handled as in `serve`: gently first, at once on a
second signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio

from mcpmux import __version__, reload
from mcpmux.audit import lifecycle
from mcpmux.control import ControlServer, endpoint_path
from mcpmux.downstream.flow import ReadGate
from mcpmux.downstream.orphans import sweep_orphans
from mcpmux.downstream.private import SharedSupervisor
from mcpmux.downstream.process import child_watcher
from mcpmux.front.hosts import Hosts
from mcpmux.front.server import Front
from mcpmux.gateway import Gateway, open_gateway
from mcpmux.paths import StatePaths, state_paths
from mcpmux.profile.model import Profile
from mcpmux.secrets.store import SecretStore
from mcpmux.serve import Shutdown, signed_in, status_report, watch_signals
from mcpmux.shared import address, handoff, sock
from mcpmux.shared.host_socket import serve_host
from mcpmux.shared.http import HttpServing
from mcpmux.shared.rows import host_row

logger = logging.getLogger("mcpmux")

IDLE_SECONDS = 30.0
"""How long the gateway outlives its last host (`MCPMUX_SHARED_IDLE_SECONDS` overrides): a host that restarts
its server finds the downstreams still up."""
HELLO_SECONDS = 5.0
FIRST_HOST_SECONDS = 10.0


def idle_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("MCPMUX_SHARED_IDLE_SECONDS", IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


@dataclass(slots=True, eq=False)
class Attached:
    """One host on this gateway, as `mcpmux status` shows it."""

    front: Front
    pipe_pid: int | None
    handed_off: bool
    """The gateway serves the host's stdio itself (else the serve pipes the host's bytes: a terminal or a file)."""
    since: float = field(default_factory=time.time)


class HostFlow:
    """One host's back-pressure: the shared downstreams are held back while any host is not reading."""

    def __init__(self, gate: ReadGate, paused: set[HostFlow]) -> None:
        self._gate = gate
        self._paused = paused

    def pause_reading(self) -> None:
        if not self._paused:
            self._gate.pause_reading()
        self._paused.add(self)

    def resume_reading(self) -> None:
        if self in self._paused:
            self._paused.discard(self)
            if not self._paused:
                self._gate.resume_reading()


class SharedGateway:
    def __init__(self, gateway: Gateway, key: str, idle: float) -> None:
        self.gateway = gateway
        self.key = key
        self.idle = idle
        self.hosts = Hosts(gateway.supervisor, gateway.audit)
        self.attached: list[Attached] = []
        self._connecting = 0
        self._changed = anyio.Event()
        self._paused: set[HostFlow] = set()

    async def accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        async with anyio.create_task_group() as tg:
            while True:
                conn, _ = await loop.sock_accept(listener)
                self._connecting += 1
                tg.start_soon(self._serve_host, conn)

    async def _serve_host(self, conn: socket.socket) -> None:
        attached: Attached | None = None
        fds: list[int] = []  # the host's stdin and stdout, when its serve handed them over
        try:
            with conn:
                attached = await self._greet(conn, fds)
                if attached is None:
                    return
                self._connecting -= 1
                self.attached.append(attached)
                self._touch()
                flow = HostFlow(self.gateway.supervisor.flow, self._paused)
                try:
                    held_back = self.hosts.flow(attached.front, flow)
                    if fds:
                        detach = partial(self.hosts.detach, attached.front)
                        await handoff.serve_handed_off(attached.front, conn, fds, held_back, detach)
                    else:
                        await serve_host(attached.front, conn, held_back)
                finally:
                    flow.resume_reading()  # a host that left while not reading holds nobody back
                    self.attached.remove(attached)
                    self.hosts.detach(attached.front)
        finally:
            handoff.close_all(fds)
            if attached is None:
                self._connecting -= 1
            self._touch()

    async def _greet(self, conn: socket.socket, fds: list[int]) -> Attached | None:
        """The hello: the peer must be this user's, and speak this gateway's version, for this profile.

        A hello may offer the host's stdin and stdout: the welcome asks for them, and they come next (into
        `fds`, the caller's to close); this gateway then serves them itself (handoff.py)."""
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        uid = sock.peer_uid(conn)
        if uid is not None and uid != os.getuid():
            logger.warning("refused a connection from uid %s on the shared gateway's socket", uid)
            return None
        data = b""
        with anyio.move_on_after(HELLO_SECONDS):
            while b"\n" not in data and len(data) < address.MAX_HELLO_BYTES:
                chunk = await loop.sock_recv(conn, address.MAX_HELLO_BYTES)
                if not chunk:
                    return None
                data += chunk
        line, _, rest = data.partition(b"\n")
        why = address.mismatch(line, self.key) if b"\n" in data else "no hello line"
        if why is None and rest:
            why = "bytes followed the hello before the gateway answered it"
        if why is not None:
            with contextlib.suppress(OSError):
                await loop.sock_sendall(conn, address.refusal(why))
            return None
        wanted = handoff.wants_handoff(line)
        await loop.sock_sendall(conn, address.welcome(os.getpid(), handoff=wanted))
        if wanted:
            with anyio.move_on_after(HELLO_SECONDS):
                await handoff.receive_fds(conn, fds)
            if (why := handoff.fds_mismatch(fds)) is not None:
                logger.warning("refused a host on the shared gateway's socket: %s", why)
                return None
        pipe_pid = sock.peer_pid(conn)
        return Attached(self.hosts.attach(pipe_pid=pipe_pid), pipe_pid, handed_off=wanted)

    def _touch(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def until_idle(self) -> None:
        """Return once no host has been attached (or attaching) for `idle` seconds.

        The first host gets at least FIRST_HOST_SECONDS: the serve that started the gateway attaches
        only once it hears "ready", which on a loaded machine may take longer than a short grace."""
        grace = max(self.idle, FIRST_HOST_SECONDS)
        while True:
            changed = self._changed
            if self.attached or self._connecting:
                await changed.wait()
                grace = self.idle
                continue
            with anyio.move_on_after(grace):
                await changed.wait()
                continue
            return

    def status(self) -> list[dict[str, Any]]:
        return [
            host_row(
                self.hosts,
                entry.front,
                entry.since,
                transport="socket",
                pipe_pid=entry.pipe_pid,
                stdio="handed over" if entry.handed_off else "piped",
            )
            for entry in self.attached
        ]


async def run_gateway(
    profile: Profile,
    *,
    key: str,
    follow_active: bool,
    ready: Ready | None = None,
    paths: StatePaths | None = None,
    store: SecretStore | None = None,
    http: HttpServing | None = None,
) -> None:
    """Serve every host that attaches on the profile's socket until idle or signalled; `ready` hears "ready".

    With `http` it also serves hosts by URL (shared/http.py), and runs until signalled: never idle."""
    with child_watcher():  # as in serve: downstream exits watched through pidfds, not a thread each
        await _run(profile, key=key, follow_active=follow_active, ready=ready, paths=paths, store=store, http=http)


async def _run(
    profile: Profile,
    *,
    key: str,
    follow_active: bool,
    ready: Ready | None,
    paths: StatePaths | None,
    store: SecretStore | None,
    http: HttpServing | None,
) -> None:
    paths = paths or state_paths()
    path = address.socket_path(paths, key)
    shutdown = Shutdown()
    reason = "idle: no host attached"
    async with anyio.create_task_group() as guard:
        guard.start_soon(watch_signals, shutdown)
        async with open_gateway(profile, paths=paths, store=store, kind=SharedSupervisor) as gateway:
            gateway.audit.write(
                lifecycle.serve_start(os.getpid(), __version__, profile_files=profile.source_hashes, shared=True)
            )
            shared = SharedGateway(gateway, key, idle_seconds())
            listener = sock.listen(path)
            inode = path.stat().st_ino
            listener.setblocking(False)
            with shutdown.serving, listener:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sweep_orphans)
                    control = ControlServer(
                        {
                            "status": partial(_status, shared, follow_active, http),
                            "signed_in": partial(signed_in, gateway),
                        }
                    )
                    await tg.start(control.serve, endpoint_path(paths=paths))
                    tg.start_soon(partial(reload.watch, gateway, follow_active=follow_active))
                    tg.start_soon(shared.accept, listener)
                    if http is not None:
                        await tg.start(http.serve, shared.hosts)
                    if ready is not None:
                        ready.say("ready")
                    await (shared.until_idle() if http is None else anyio.sleep_forever())
                    shutdown.begun = True
                    _unlink_if_ours(path, inode)  # a serve from now on starts a new gateway
                    tg.cancel_scope.cancel()
            _unlink_if_ours(path, inode)
            if shutdown.signalled:
                reason = f"received {shutdown.signalled[0]}"
            gateway.audit.write(lifecycle.serve_stop(os.getpid(), reason, shared=True))
        guard.cancel_scope.cancel()


async def _status(
    shared: SharedGateway, follow_active: bool, http: HttpServing | None, params: dict[str, Any]
) -> dict[str, Any]:
    report_ = await status_report(shared.gateway, follow_active)
    hosts = shared.status() + (http.status() if http else [])
    report_["url"] = http.url if http else None
    report_["shared"] = True
    report_["hosts"] = hosts
    report_["host"] = ", ".join(str(h["name"] or "?") for h in hosts) or None
    return report_


def _unlink_if_ours(path: Any, inode: int) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_ino == inode:
            path.unlink()


class Ready:
    """Tells the serve that started this gateway how its start went: one line, once ("ready" or why not)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd if fd >= 0 else None

    def say(self, line: str) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, line.replace("\n", " ").encode() + b"\n")
        with contextlib.suppress(OSError):
            os.close(fd)
