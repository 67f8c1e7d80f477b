"""Processes and sessions: the echo server, `mcpmux serve`, profiles, RSS and leftover checks.

Every process the benchmark starts goes through the SDK's `stdio_client`, whose exit
closes stdin and then terminates the whole process tree. Each one (and each downstream
mcpmux spawns, via the profile's `env`) carries `MCPMUX_BENCH_TAG=<run id>` in its
environment, so `leftover_processes` can prove nothing outlived the run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio
import mcp_types as types
from mcp import Client, ClientSession, StdioServerParameters, stdio_client

ECHO_SERVER = Path(__file__).resolve().parent / "echo_server.py"
LINE_RELAY = Path(__file__).resolve().parent / "line_relay.py"
TAG_ENV = "MCPMUX_BENCH_TAG"


class BenchError(Exception):
    """A measurement could not be made (a call failed, a result was wrong, a process misbehaved)."""


@dataclass(slots=True)
class Endpoint:
    """One connected client and the names its echo server's tools have there.

    `session` is an initialized `ClientSession` (the 2025-11-25 handshake) or an
    entered `mcp.Client` (by default it probes `server/discover` and speaks 2026-07-28
    to a 2.x SDK server).
    """

    label: str
    session: ClientSession | Client
    prefix: str = ""
    serve_pid: int | None = None

    async def echo(self, text: str) -> None:
        result = await self.session.call_tool(self.prefix + "echo", {"text": text})
        if result.is_error:
            raise BenchError(f"{self.label}: echo failed: {_text(result)[:200]}")

    async def echo_checked(self, text: str) -> None:
        result = await self.session.call_tool(self.prefix + "echo", {"text": text})
        if result.is_error or _text(result) != text:
            raise BenchError(f"{self.label}: echo returned something else: {_text(result)[:200]}")

    async def blob(self, size: int) -> None:
        result = await self.session.call_tool(self.prefix + "blob", {"size": size})
        if result.is_error or len(_text(result)) != size:
            raise BenchError(f"{self.label}: blob({size}) returned {len(_text(result))} characters")


def _text(result: types.CallToolResult) -> str:
    block = result.content[0] if result.content else None
    return block.text if isinstance(block, types.TextContent) else ""


@dataclass(slots=True)
class Workspace:
    """A temporary directory for profiles, MCPMUX_HOMEs and server stderr; one tag for the run."""

    root: Path
    errlog: TextIO
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    _homes: int = 0
    _kept: dict[tuple[str, ...], tuple[StdioServerParameters, Path]] = field(
        default_factory=dict[tuple[str, ...], tuple[StdioServerParameters, Path]]
    )

    @classmethod
    @asynccontextmanager
    async def open(cls) -> AsyncIterator[Workspace]:
        with tempfile.TemporaryDirectory(prefix="mcpmux-bench-") as tmp:
            root = Path(tmp)
            with (root / "stderr.log").open("w") as errlog:
                try:
                    yield cls(root, errlog)
                except BaseException:
                    errlog.flush()
                    tail = (root / "stderr.log").read_text(errors="replace").splitlines()[-40:]
                    sys.stderr.write("".join(f"  server stderr: {line}\n" for line in tail))
                    raise

    # --- parameters -----------------------------------------------------------------
    def direct_params(self, name: str = "echo") -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable, args=[str(ECHO_SERVER), "--name", name], env={TAG_ENV: self.tag}
        )

    def floor_params(self) -> StdioServerParameters:
        """The echo server behind the bare line relay (bench/line_relay.py): the floor of any Python relay."""
        direct = self.direct_params()
        return StdioServerParameters(
            command=sys.executable, args=[str(LINE_RELAY), direct.command, *direct.args], env=direct.env
        )

    def profile_toml(self, names: list[str]) -> str:
        lines: list[str] = []
        for name in names:
            lines += [
                f"[servers.{name}]",
                f"command = {json.dumps(sys.executable)}",
                f"args = [{json.dumps(str(ECHO_SERVER))}, {json.dumps('--name')}, {json.dumps(name)}]",
                f"env = {{ {TAG_ENV} = {json.dumps(self.tag)} }}",
                "",
            ]
        return "\n".join(lines)

    def prepare_mcpmux(self, names: list[str], *, fresh: bool = True) -> tuple[StdioServerParameters, Path]:
        """Parameters for `mcpmux serve` of an echo server per name, and its MCPMUX_HOME.

        The profile goes in that home's own `profiles/` folder: a user's own profile needs
        no trust record, so the benchmark never touches trust state. With `fresh=False`
        the home of the last run of the same names is used again, as a user's is: what
        mcpmux remembered there (the servers' instructions) lets it answer `initialize`
        without waiting for them.
        """
        if not fresh and (kept := self._kept.get(tuple(names))) is not None:
            return kept
        self._homes += 1
        home = self.root / f"home-{self._homes}"
        (home / "profiles").mkdir(parents=True, mode=0o700)
        home.chmod(0o700)
        profile = home / "profiles" / f"bench-{len(names)}.toml"
        profile.write_text(self.profile_toml(names))
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "mcpmux", "serve", "--profile", str(profile), "--quiet"],
            env={"MCPMUX_HOME": str(home), TAG_ENV: self.tag},
        )
        self._kept[tuple(names)] = params, home
        return params, home

    # --- sessions -------------------------------------------------------------------
    @asynccontextmanager
    async def session(self, params: StdioServerParameters) -> AsyncIterator[ClientSession]:
        """A connected, not yet initialized session; leaving it ends the process tree."""
        async with stdio_client(params, errlog=self.errlog) as (read, write), ClientSession(read, write) as session:
            yield session

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[Endpoint]:
        async with self.session(self.direct_params()) as session:
            await session.initialize()
            yield Endpoint("direct", session)

    @asynccontextmanager
    async def floor(self) -> AsyncIterator[Endpoint]:
        async with self.session(self.floor_params()) as session:
            await session.initialize()
            relays = [pid for pid in children_of(os.getpid()) if str(LINE_RELAY).encode() in _cmdline(pid)]
            yield Endpoint("floor", session, serve_pid=relays[0] if len(relays) == 1 else None)

    @asynccontextmanager
    async def mcpmux(self, names: list[str]) -> AsyncIterator[Endpoint]:
        params, home = self.prepare_mcpmux(names)
        async with self.session(params) as session:
            await session.initialize()
            yield Endpoint("mcpmux", session, prefix="echo__", serve_pid=serve_pid(home))

    @asynccontextmanager
    async def modern_pair(self, names: list[str]) -> AsyncIterator[tuple[Endpoint, Endpoint]]:
        """`mcp.Client` (mode 'auto') directly and through mcpmux; its stdio transport also ends the tree."""
        params, home = self.prepare_mcpmux(names)
        async with (
            Client(stdio_client(self.direct_params(), errlog=self.errlog)) as direct,
            Client(stdio_client(params, errlog=self.errlog)) as mux,
        ):
            yield Endpoint("direct", direct), Endpoint("mcpmux", mux, prefix="echo__", serve_pid=serve_pid(home))


def serve_pid(home: Path) -> int | None:
    """The pid `mcpmux serve` recorded in its audit log's `serve_start` event."""
    try:
        lines = (home / "state" / "audit.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        event = json.loads(line)
        if event.get("event") == "serve_start":
            return int(event["pid"])
    return None


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB, from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def start_seconds(pid: int) -> float | None:
    """When `pid` was started, in seconds since boot (the kernel counts in clock ticks, 10 ms)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def children_of(pid: int) -> list[int]:
    """Live children of `pid`."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def spawn_window(pids: list[int]) -> float:
    """First to last start among `pids`, in seconds (0.0 for fewer than two)."""
    starts = [t for pid in pids if (t := start_seconds(pid)) is not None]
    return max(starts) - min(starts) if len(starts) > 1 else 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time `pid` has used so far: /proc/<pid>/schedstat (ns), else utime+stime from /proc/<pid>/stat."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tagged_processes(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries this run's tag."""
    marker = f"{TAG_ENV}={tag}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


async def leftover_processes(tag: str, wait_seconds: float = 5.0) -> list[int]:
    """Tagged processes still alive after `wait_seconds` (a clean run returns [])."""
    found = tagged_processes(tag)
    for _ in range(int(wait_seconds / 0.1)):
        if not found:
            break
        await anyio.sleep(0.1)
        found = tagged_processes(tag)
    return found
