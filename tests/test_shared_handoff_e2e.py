"""End to end, shared mode's handoff: a host's stdin and stdout go to the gateway with the hello.

The host here is a raw JSON-RPC writer on `subprocess.Popen` pipes, so the test knows its pipes and can
ask the kernel which processes hold them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.to_thread
import orjson
import pytest

from mcpmux.paths import state_paths
from mcpmux.shared import address, sock
from mcpmux.shared.address import gateway_key, socket_path
from tests.conftest import REPO, fixture_server_toml, processes_marked_by
from tests.e2e_helpers import audit_events, gateway_pids

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


class RawHost:
    """`mcpmux serve --shared` on pipes this test holds the other ends of."""

    def __init__(self, profile: Path, stdin: IO[bytes] | int = subprocess.PIPE) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcpmux", "serve", "--shared", "--profile", str(profile)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            cwd=REPO,
            env={**os.environ, "MCPMUX_SHARED_IDLE_SECONDS": "30"},
        )
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(orjson.dumps(m) + b"\n" for m in messages))
        self.proc.stdin.flush()

    async def line(self) -> dict[str, Any] | None:
        """The next message from mcpmux; None once its output ended."""
        raw = await anyio.to_thread.run_sync(self.stdout.readline, abandon_on_cancel=True)
        return orjson.loads(raw) if raw else None

    async def answer(self, request_id: int) -> dict[str, Any]:
        while (message := await self.line()) is not None:
            if message.get("id") == request_id and "method" not in message:
                return message
        raise AssertionError(f"mcpmux's output ended before answering request {request_id}")

    async def start(self) -> None:
        self.send(INITIALIZE)
        await self.answer(0)
        self.send(INITIALIZED)

    def close(self) -> None:
        """Close its input as a host does, and end it if it does not exit on its own."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.stdout.close()


def call(request_id: int, tool: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]


def holders(pipe: IO[bytes]) -> set[int]:
    """Every other process with an end of the pipe or socket that `pipe` is one end of."""
    info = os.fstat(pipe.fileno())
    wanted = {f"pipe:[{info.st_ino}]"}
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = {str(fd.readlink()) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if links & wanted:
            found.add(int(entry.name))
    return found


async def test_an_attached_hosts_stdio_is_held_by_the_gateway_alone_and_its_serve_only_waits(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    host = RawHost(profile)
    try:
        with anyio.fail_after(60):
            await host.start()
            host.send(call(1, "alpha__echo", {"text": "over the handoff"}))
            answer = await host.answer(1)
        (gateway,) = gateway_pids(mcpmux_home)
        downstreams = processes_marked_by(gateway)
        assert answer["result"]["content"][0]["text"] == "over the handoff"
        assert host.proc.stdin is not None
        # No process relays the host's bytes: the gateway reads its stdin and writes its stdout itself,
        # and neither the waiting serve nor a downstream keeps an end (which would hide the gateway's death).
        assert holders(host.proc.stdin) == {gateway}
        assert holders(host.stdout) == {gateway}
        assert len(downstreams) == 1
        assert cmdline(host.proc.pid)[-1] == b"wait"
    finally:
        host.close()
    assert host.proc.returncode == 0  # the gateway said "done": the host's input ended and all was answered


async def test_a_host_that_ends_its_serve_mid_call_has_the_call_cancelled_and_another_host_goes_on(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    leaving, staying = RawHost(profile), RawHost(profile)
    try:
        with anyio.fail_after(60):
            await leaving.start()
            await staying.start()
            leaving.send(call(1, "alpha__slow", {"steps": 1}, token="p1"))
            while (message := await leaving.line()) is not None:
                if message.get("method") == "notifications/progress":
                    break
            leaving.proc.send_signal(signal.SIGTERM)  # as a host ends its server, stdin still open
            while await leaving.line() is not None:  # its output ends once the gateway let it go
                pass
            staying.send(call(2, "alpha__echo", {"text": "still here"}))
            answer = await staying.answer(2)
        assert answer["result"]["content"][0]["text"] == "still here"
        (detached,) = audit_events(mcpmux_home, "host_detached")
        assert (detached["host"], detached["cancelled"]) == ("raw", 1)
        assert len(gateway_pids(mcpmux_home)) == 1
    finally:
        leaving.close()
        staying.close()


async def test_a_host_whose_stdin_is_a_file_is_piped_through_its_serve(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None, tmp_path: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    requests = tmp_path / "requests.jsonl"
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    requests.write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in (INITIALIZE, INITIALIZED, listing)))
    with requests.open("rb") as stdin:
        host = RawHost(profile, stdin=stdin)
        try:
            with anyio.fail_after(60):
                answer = await host.answer(1)
                while await host.line() is not None:
                    pass
        finally:
            host.close()
    assert "alpha__echo" in {tool["name"] for tool in answer["result"]["tools"]}
    assert host.proc.returncode == 0


async def test_a_serve_handing_over_a_file_instead_of_pipes_is_refused(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None, tmp_path: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    host = RawHost(profile)  # starts the gateway
    try:
        with anyio.fail_after(60):
            await host.start()
        key = gateway_key(profile)
        (tmp_path / "a-file").write_bytes(b"")
        with (tmp_path / "a-file").open("rb") as planted, socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(socket_path(state_paths(), key)))
            conn.sendall(address.hello(key, pid=os.getpid(), handoff=True))
            welcome = orjson.loads(sock.read_line(conn, address.MAX_HELLO_BYTES))
            sock.send_stdio(conn, [planted.fileno(), planted.fileno()])
            ended = conn.recv(1)
        log = address.log_path(state_paths(), key).read_text()
        assert welcome["handoff"] is True
        assert ended == b""  # the gateway hung up on it
        assert "refused a host on the shared gateway's socket: a descriptor handed over is neither" in log
    finally:
        host.close()
