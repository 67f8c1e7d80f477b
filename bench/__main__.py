"""`python -m bench [--quick] [--json] [--rounds N] [--downstreams N] [--strict]`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib.metadata import version
from typing import Any

import anyio
from rich.console import Console

from bench import scenarios, startup
from bench.harness import Workspace, leftover_processes
from bench.results import Row, print_table
from bench.shared_bench import shared_hosts

SCENARIO_TIMEOUT_SECONDS = 300.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke test: small counts, 2 rounds, 5 downstreams")
    parser.add_argument("--json", action="store_true", help="print machine-readable results to stdout")
    parser.add_argument("--rounds", type=int, help="rounds for the steady-state scenarios (default 5)")
    parser.add_argument("--downstreams", type=int, help="downstreams in the fan-out scenario (default 20; 0 skips it)")
    parser.add_argument("--shared-servers", type=int, help="servers in the shared-mode scenario (default 10; 0 skips)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> scenarios.Config:
    cfg = scenarios.Config.quick() if args.quick else scenarios.Config()
    if args.rounds is not None:
        cfg = dataclasses.replace(cfg, rounds=max(1, args.rounds))
    if args.downstreams is not None:
        cfg = dataclasses.replace(cfg, fanout=max(0, args.downstreams))
    if args.shared_servers is not None:
        cfg = dataclasses.replace(cfg, shared_servers=max(0, args.shared_servers))
    return cfg


def header(cfg: scenarios.Config, quick: bool) -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": f"{platform.python_version()} ({sys.executable})",
        "cpus": f"{os.cpu_count()} (usable: {affinity})",
        "load average at start": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "platform": platform.platform(),
        "versions": f"mcp {version('mcp')}, mcpmux {version('mcpmux')}",
        "mode": "quick" if quick else "default",
        "config": dataclasses.asdict(cfg),
    }


async def run(cfg: scenarios.Config, log: Console) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    info: dict[str, Any] = {}
    started = time.perf_counter()

    def step(text: str) -> None:
        log.print(f"[dim]{time.perf_counter() - started:6.1f} s[/dim] {text}", highlight=False)

    async with Workspace.open() as ws:
        step("starting the echo server directly, behind a bare line relay, and through mcpmux")
        with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
            async with ws.direct() as direct, ws.floor() as floor, ws.mcpmux(["echo"]) as mux:
                info["serve_pid"] = mux.serve_pid
                endpoints = [direct, floor, mux]
                await scenarios.warm_up(endpoints, cfg.warmup_calls)
                rows += await timed(step, "sequential calls", scenarios.latency(endpoints, cfg))
                rows += await timed(step, "throughput", scenarios.throughput(endpoints, cfg))
                rows += await timed(step, "payloads", scenarios.payloads(endpoints, cfg))
                if (row := scenarios.steady_rss(mux, floor)) is not None:
                    rows.append(row)
        if cfg.modern_era:
            with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
                async with ws.modern_pair(["echo"]) as (direct, mux):
                    work = scenarios.modern_latency(direct, mux, cfg)
                    rows += await timed(step, "sequential calls from mcp.Client (2026-07-28 era)", work)
        if cfg.startup_rounds:
            with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
                rows += await timed(step, "start-up, 1 downstream", startup.startup(ws, cfg))
        if cfg.fanout:
            with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
                rows += await timed(step, f"start-up, {cfg.fanout} downstreams", startup.fanout(ws, cfg))
        if cfg.exit_rounds:
            with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
                rows += await timed(step, "exit after stdin closes", startup.exit_time(ws, cfg))
        if cfg.shared_servers:
            with anyio.fail_after(SCENARIO_TIMEOUT_SECONDS):
                work = shared_hosts(ws, cfg.shared_servers, cfg.latency_calls, cfg.rounds)
                rows += await timed(step, f"shared mode, 4 hosts, {cfg.shared_servers} downstreams", work)
        step("checking that every process has exited")
        leftovers = await leftover_processes(ws.tag)
        for pid in leftovers:  # ours: they carry this run's tag
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    info["leftover_processes"] = leftovers
    info["load average at end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    step("done")
    return rows, info


async def timed(step: Callable[[str], None], name: str, work: Awaitable[list[Row]]) -> list[Row]:
    step(name)
    return await work


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from(args)
    out = Console()
    if not out.is_terminal:
        out = Console(width=170)  # a pipe or CI log: wide enough that cells do not wrap
    log = Console(stderr=True)
    head = header(cfg, args.quick)
    rows, info = anyio.run(run, cfg, log, backend="asyncio")
    failed = [r.scenario for r in rows if r.passed is False]
    if info["leftover_processes"]:
        failed.append(f"leftover processes: {info['leftover_processes']}")
    if args.json:
        payload = {**head, **info, "rows": [r.as_json() for r in rows], "failed": failed}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        shown = {k: v for k, v in head.items() if k != "config"}
        print_table(out, shown, rows)
        out.print(
            f"processes left behind: {len(info['leftover_processes'])}; elapsed {info['elapsed_s']} s; "
            f"load average at end: {info['load average at end']}",
            highlight=False,
        )
        if max(os.getloadavg()[0], float(head["load average at start"].split(",")[0])) > (os.cpu_count() or 1):
            out.print("[yellow]the machine was busy (load above the CPU count): treat these numbers as noise[/yellow]")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
