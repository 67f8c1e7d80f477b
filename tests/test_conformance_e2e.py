"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm) against mcpmux.

The suite's server mode connects to a server under test through a streamable-HTTP URL
and runs one scenario per fresh session: initialize, ping, logging, completion, tools
(text, image, audio, embedded resources, logging, progress, errors, sampling,
elicitation, JSON Schema 2020-12), resources (list, read, templates, subscribe),
prompts, and a few HTTP-only checks (SSE streams, DNS-rebinding protection). Its
scenarios need a server that implements fixed tools, resources and prompts, which
`fixtures/conformance_server.py` does (a stdio server).

Two runs, side by side, each behind the same test-only HTTP bridge
(`fixtures/stdio_http_bridge.py`, one stdio process per HTTP session):

    suite ──HTTP──▶ bridge ──stdio──▶ conformance_server.py                    (the baseline)
    suite ──HTTP──▶ bridge ──stdio──▶ mcpmux serve ──stdio──▶ conformance_server.py  (namespace = false)

The claim tested is "mcpmux fails no check that the downstream alone passes". A failure
seen in both runs, or in an HTTP-only scenario, comes from the bridge or the downstream,
not from mcpmux; `server-sse-polling` in particular can only warn here, since a stdio
server has no HTTP stream to close mid-call.

The suite comes from npm: $MCPMUX_CONFORMANCE_BIN, the repo's .cache/npm (as .ci/run
installs it), or PATH. Without it these tests skip, unless MCPMUX_REQUIRE_ALL=1.
Version 0.1.13 is the newest that runs on Node 20 (later ones import `fs.globSync`,
Node >= 22); its server scenarios are the same as 0.1.16's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.conftest import FIXTURES, REPO, uses_system_keyring
from tests.conftest_keyring import keyring_env
from tests.e2e_helpers import npm_bin

BRIDGE = FIXTURES / "stdio_http_bridge.py"
DOWNSTREAM = FIXTURES / "conformance_server.py"
WARM_PROCESSES = "2"
"""Spare processes each bridge keeps started ahead (the suite opens a new session for every scenario)."""
BRIDGE_START_SECONDS = 30.0
SUITE_SECONDS = 300.0
"""Bound on one whole suite run; a 2-core machine needs 25-40 s through mcpmux."""
STOP_SECONDS = 20.0
EXIT_SECONDS = 10.0
CALLED_TOOLS = {
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
}
"""Tools the suite's scenarios call (`test_reconnection` too, but only with raw HTTP in a pending scenario)."""
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def conformance_bin() -> str:
    """The suite's CLI from npm (0.1.13: later versions need Node >= 22)."""
    return npm_bin("@modelcontextprotocol/conformance@0.1.13", "conformance", "MCPMUX_CONFORMANCE_BIN")


def run_cli(cli: str, *args: str) -> str:
    """One quick CLI command (`--version`, `list`); a CLI that cannot start fails the test with its reason."""
    done = subprocess.run([cli, *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        hint = " (conformance >= 0.1.14 needs Node >= 22: install 0.1.13)" if "globSync" in done.stderr else ""
        pytest.fail(f"`conformance {' '.join(args)}` exited {done.returncode}{hint}:\n{done.stderr[-600:]}")
    return done.stdout


# --- results ----------------------------------------------------------------------------------


@dataclass
class Scenario:
    """The checks one scenario reported (each has `id`, `status` and maybe `errorMessage`)."""

    checks: list[dict[str, Any]]

    def count(self, status: str) -> int:
        return sum(1 for check in self.checks if check.get("status") == status)

    @property
    def passed(self) -> bool:
        """Ran, and no check failed (warnings and notes do not fail a scenario, as in the suite's own verdict)."""
        return bool(self.checks) and self.count("FAILURE") == 0

    def verdict(self) -> str:
        if not self.checks:
            return "no result"
        word = "pass" if self.passed else f"FAIL ({self.count('FAILURE')} of {len(self.checks)} checks)"
        warnings = self.count("WARNING")
        return f"{word}, {warnings} warning{'s' if warnings != 1 else ''}" if warnings else word

    def succeeded(self) -> set[str]:
        return {str(check.get("id")) for check in self.checks if check.get("status") == "SUCCESS"}

    def failures(self) -> list[str]:
        return [
            f"{check.get('id')}: {check.get('errorMessage')}"
            for check in self.checks
            if check.get("status") == "FAILURE"
        ]


@dataclass
class Run:
    """One suite run: its scenarios' results, how long it took, and where its logs are."""

    name: str
    results: dict[str, Scenario] = field(default_factory=dict[str, Scenario])
    seconds: float = 0.0
    exit_code: int | None = None
    logs: list[Path] = field(default_factory=list[Path])

    def result(self, scenario: str) -> Scenario:
        return self.results.get(scenario, Scenario([]))


@dataclass
class Conformance:
    version: str
    scenarios: list[str]
    baseline: Run
    mcpmux: Run
    home: Path
    """MCPMUX_HOME of the mcpmux run (its audit log is there)."""
    leftovers: list[int]

    def table(self) -> str:
        width = max(len(s) for s in self.scenarios) + 2
        lines = [
            f"MCP conformance suite {self.version}, server scenarios: the downstream alone vs through mcpmux",
            f"{'scenario':<{width}}{'downstream alone':<34}through mcpmux",
        ]
        for scenario in self.scenarios:
            alone, relayed = self.baseline.result(scenario), self.mcpmux.result(scenario)
            mark = "   <-- fails only through mcpmux" if alone.passed and not relayed.passed else ""
            lines.append(f"{scenario:<{width}}{alone.verdict():<34}{relayed.verdict()}{mark}")
        passed = [sum(run.result(s).passed for s in self.scenarios) for run in self.runs]
        lines.append(
            f"{len(self.scenarios)} scenarios: the downstream passes {passed[0]} ({self.baseline.seconds:.1f} s), "
            f"mcpmux passes {passed[1]} ({self.mcpmux.seconds:.1f} s)"
        )
        return "\n".join(lines)

    @property
    def runs(self) -> tuple[Run, Run]:
        return self.baseline, self.mcpmux


def read_results(out_dir: Path) -> dict[str, Scenario]:
    """`<out>/server-<scenario>-<timestamp>/checks.json`, one folder per scenario."""
    results: dict[str, Scenario] = {}
    for checks in sorted(out_dir.glob("*/checks.json")):
        match = RESULT_DIR.match(checks.parent.name)
        if match is not None:
            results[match["scenario"]] = Scenario(json.loads(checks.read_text()))
    return results


# --- processes ----------------------------------------------------------------------------------


def processes_tagged(tag: str) -> list[int]:
    """Live processes whose command line mentions `tag` (every bridge, mcpmux and downstream of these runs)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(") ")[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and tag.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def read_url(bridge: anyio.abc.Process, log: Path) -> str:
    """The URL the bridge prints once it listens."""
    assert bridge.stdout is not None
    try:
        with anyio.fail_after(BRIDGE_START_SECONDS):
            line = await BufferedByteReceiveStream(bridge.stdout).receive_until(b"\n", 4096)
    except (anyio.EndOfStream, anyio.IncompleteRead, TimeoutError):
        raise AssertionError(f"the HTTP bridge did not start listening; see {log}") from None
    return line.decode().strip()


async def stop_bridge(bridge: anyio.abc.Process) -> None:
    """Close the bridge's stdin (it then stops every process it started) and wait; kill only past the bound."""
    with anyio.CancelScope(shield=True):
        if bridge.stdin is not None:
            await bridge.stdin.aclose()
        with anyio.move_on_after(STOP_SECONDS):
            await bridge.wait()
        if bridge.returncode is None:
            bridge.kill()
            await bridge.wait()


async def run_suite(cli: str, run: Run, target: list[str], work: Path, env: dict[str, str]) -> None:
    """Put `target` behind a bridge and run every server scenario of the suite against it."""
    out_dir = work / f"results-{run.name}"
    bridge_log, suite_log = work / f"bridge-{run.name}.log", work / f"suite-{run.name}.log"
    run.logs = [suite_log, bridge_log]
    with bridge_log.open("wb") as bridge_err, suite_log.open("wb") as suite_out:
        command = [sys.executable, str(BRIDGE), "--warm", WARM_PROCESSES, "--", *target]
        bridge = await anyio.open_process(command, env=env, cwd=REPO, stderr=bridge_err)
        try:
            url = await read_url(bridge, bridge_log)
            started = time.monotonic()
            with anyio.move_on_after(SUITE_SECONDS) as bound:  # run_process kills the suite when cancelled
                suite = await anyio.run_process(
                    [cli, "server", "--url", url, "--suite", "all", "-o", str(out_dir)],
                    stdout=suite_out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
                run.exit_code = suite.returncode
            run.seconds = time.monotonic() - started
            if bound.cancelled_caught:
                raise AssertionError(
                    f"the suite ({run.name}) did not finish within {SUITE_SECONDS:g} s; see {run.logs}"
                )
        finally:
            await stop_bridge(bridge)
            await bridge.aclose()
    run.results = read_results(out_dir)


def write_profile(home: Path, tag: str) -> Path:
    """A user profile (trusted as the user's own) with the downstream exposed under its own names."""
    (home / "profiles").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    profile = home / "profiles" / "conformance.toml"
    profile.write_text(
        "[servers.everything]\n"
        f"command = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(DOWNSTREAM))}, '--tag', '{tag}']\n"
        "namespace = false\n"
    )
    return profile


async def run_both(cli: str, work: Path, profile: Path, env: dict[str, str], tag: str) -> tuple[Run, Run]:
    """The downstream alone and through mcpmux, at the same time."""
    baseline, relayed = Run("downstream"), Run("mcpmux")
    alone = [sys.executable, str(DOWNSTREAM), "--tag", tag]
    through_mcpmux = [sys.executable, "-m", "mcpmux", "serve", "--profile", str(profile)]
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_suite, cli, baseline, alone, work, env)
        tg.start_soon(run_suite, cli, relayed, through_mcpmux, work, env)
    return baseline, relayed


def leftover_processes(tag: str) -> list[int]:
    """Processes of these runs still alive once the bridges have exited (polled up to EXIT_SECONDS), then killed."""
    deadline = time.monotonic() + EXIT_SECONDS
    while (left := processes_tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition with a deadline, not a guess at how long something takes
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conformance]:
    """Both suite runs, once for this module (25-40 s through mcpmux on a 2-core machine)."""
    cli = conformance_bin()
    version = run_cli(cli, "--version").strip()
    scenarios = [
        line.strip()[2:] for line in run_cli(cli, "list", "--server").splitlines() if line.strip().startswith("- ")
    ]
    assert scenarios, "`conformance list --server` named no scenario"
    work = tmp_path_factory.mktemp("conformance")
    tag = f"conformance-{uuid.uuid4().hex[:12]}"
    home = work / f"home-{tag}"  # the tag marks every mcpmux command line (its profile's path)
    profile = write_profile(home, tag)
    env = {**os.environ, "MCPMUX_HOME": str(home)}
    if not uses_system_keyring():
        env.update(keyring_env(work))
    try:
        baseline, relayed = anyio.run(run_both, cli, work, profile, env, tag, backend="asyncio")
    finally:
        leftovers = leftover_processes(tag)
    yield Conformance(version, scenarios, baseline, relayed, home, leftovers)


# --- tests ----------------------------------------------------------------------------------


def test_the_downstream_alone_passes_every_conformance_scenario(conformance: Conformance):
    """The baseline the comparison rests on; a failure here is the fixture's or the bridge's, not mcpmux's."""
    run = conformance.baseline
    missing = [s for s in conformance.scenarios if s not in run.results]
    failed = {
        s: run.results[s].failures() for s in conformance.scenarios if s in run.results and not run.results[s].passed
    }
    assert not missing and not failed, (
        f"the downstream alone: scenarios without a result {missing}, failed {failed}; logs: {run.logs}\n"
        + conformance.table()
    )


def test_mcpmux_passes_every_conformance_scenario_the_downstream_passes(
    conformance: Conformance, capsys: pytest.CaptureFixture[str]
):
    with capsys.disabled():  # the table is the report CI shows, pass or fail
        sys.stdout.write("\n" + conformance.table() + "\n")
    regressions: dict[str, list[str]] = {}
    for scenario in conformance.scenarios:
        alone, relayed = conformance.baseline.result(scenario), conformance.mcpmux.result(scenario)
        lost = sorted(alone.succeeded() - relayed.succeeded())
        if (alone.passed and not relayed.passed) or lost:
            regressions[scenario] = relayed.failures() or [f"checks no longer passing: {lost or 'no result'}"]
    assert not regressions, f"through mcpmux only: {regressions}; logs: {conformance.mcpmux.logs}"


def test_every_tool_the_suite_called_went_through_mcpmux_and_is_in_its_audit_log(conformance: Conformance):
    """The mcpmux run really was relayed by mcpmux: each tool call scenario left its audit event."""
    events = [json.loads(line) for line in (conformance.home / "state" / "audit.jsonl").read_text().splitlines()]
    audited = {e.get("tool") for e in events if e.get("event") == "tool_call" and e.get("server") == "everything"}
    assert audited >= CALLED_TOOLS, f"no tool_call audit event for {sorted(CALLED_TOOLS - audited)}"


def test_the_suites_own_verdict_agrees_with_the_parsed_results(conformance: Conformance):
    """The suite's own verdict (its exit code) agrees with the parsed results: nothing failed unnoticed."""
    for run in conformance.runs:
        all_passed = all(run.result(s).passed for s in conformance.scenarios)
        assert (run.exit_code == 0) == all_passed, f"{run.name}: exit {run.exit_code}; see {run.logs[0]}"


def test_every_process_the_conformance_runs_started_has_exited(conformance: Conformance):
    assert conformance.leftovers == [], f"still running after the bridges exited (now killed): {conformance.leftovers}"
