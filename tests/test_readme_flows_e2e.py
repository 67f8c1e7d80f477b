"""The README's quick start and "Connect a host" flow, run as written: each command is read from the README itself.

So a README that drifts from what mcpmux does fails here. Commands run through bash with the venv's
`bin` first on PATH (what `. .venv/bin/activate` does) and a fresh MCPMUX_HOME (conftest); the
quick start's setup commands (make the venv, `pip install -e`, `pytest`) are checked to be what
`.ci/run` itself runs, since re-running them inside the test suite would install into the venv
under test and run the suite within itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
VENV_BIN = str(Path(sys.executable).parent)
SETUP = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[demo]" && '
pytestmark = pytest.mark.anyio


def section(title: str) -> str:
    """The README's text under `## title`, up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.MULTILINE | re.DOTALL)
    assert match is not None, f"README has no section '## {title}'"
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def shell_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def shell(line: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=shell_env(**env),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


async def host_tools(command: str, args: list[str], *, cwd: Path, env: dict[str, str]) -> set[str]:
    """Start a host config's entry as the host does (its command, args and env, in a folder of the host's choosing)."""
    params = StdioServerParameters(command=command, args=args, env=env, cwd=str(cwd))
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return {tool.name for tool in (await session.list_tools()).tools}


def test_the_quick_start_runs_as_written() -> None:
    start, then = blocks(section("Quick start"), "sh")
    first, second = start.splitlines()
    # The setup is .ci/run's own: a venv at .venv with this package and its dev extra (which holds the demo one).
    ci = (REPO / ".ci" / "run").read_text()
    assert first.startswith(SETUP)
    assert second == 'pip install -e ".[dev]" && pytest'
    assert "[[ -x .venv/bin/python ]] || python3 -m venv .venv" in ci
    assert 'pip install -q --disable-pip-version-check -e ".[dev]"' in ci
    assert "exec python -m pytest -q" in ci
    tools = shell(first.removeprefix(SETUP))
    assert tools.returncode == 0, tools.stderr
    assert "time__get_current_time" in tools.stdout
    assert "git__git_log" in tools.stdout
    assert "git__git_commit" not in tools.stdout  # hidden by the demo's policy
    for line in then.splitlines():
        command, _, comment = line.partition("  #")
        done = shell(command)
        if "refused" in comment:  # `# refused: denied by policy.deny[1]`: exit 1 naming that rule
            rule = comment.rsplit(" ", 1)[-1]
            assert done.returncode == 1, (line, done.stdout, done.stderr)
            assert rule in done.stdout + done.stderr, line
        else:
            assert done.returncode == 0, (line, done.stdout, done.stderr)
    tail = shell("mcpmux audit tail -n 3 --json").stdout
    assert '"git__git_commit"' in tail  # the refused call was audited


async def test_connect_a_host_runs_as_written(tmp_path: Path) -> None:
    text = section("Connect a host")
    elsewhere = tmp_path / "host-chosen-folder"  # a host starts mcpmux in a folder of its own choosing
    elsewhere.mkdir()
    assert shell("mcpmux profile trust demo").returncode == 0  # the quick start's --trust
    assert "`mcpmux profile use NAME`" in text
    used = shell("mcpmux profile use demo")
    assert used.returncode == 0, used.stderr
    assert "`which mcpmux`" in text
    assert shell("which mcpmux").stdout.strip() == str(Path(VENV_BIN) / "mcpmux")
    entries: list[tuple[str, list[str]]] = []
    for block in blocks(text, "json"):
        config = json.loads(block)
        entry = (config.get("mcpServers") or config["servers"])["mcpmux"]
        entries.append((entry["command"], entry["args"]))
    (claude,) = [line for line in blocks(text, "sh")[0].splitlines() if line.startswith("claude mcp add")]
    command, *args = shlex.split(claude.partition(" -- ")[2])
    entries.append((command, args))
    assert len(entries) == 3  # Claude Desktop and Cursor, VS Code, Claude Code
    for command, args in dict.fromkeys((c, tuple(a)) for c, a in entries):  # all three are `mcpmux serve`
        resolved = shell(f"command -v {shlex.quote(command)}").stdout.strip()  # the host's PATH has the venv
        names = await host_tools(resolved, list(args), cwd=elsewhere, env=shell_env())
        assert "time__get_current_time" in names
        assert "git__git_commit" not in names


async def test_install_writes_an_entry_a_host_runs_from_anywhere_with_its_own_environment(
    tmp_path: Path, mcpmux_home: Path
) -> None:
    # "`mcpmux install HOST` writes this entry for you": into the user's Claude Desktop config.
    assert "`mcpmux install HOST` writes this entry for you" in section("Connect a host")
    home = tmp_path / "user"
    assert shell("mcpmux profile trust demo").returncode == 0
    installed = shell("mcpmux install claude-desktop --profile demo", HOME=str(home), XDG_CONFIG_HOME="")
    assert installed.returncode == 0, installed.stderr
    config = json.loads((home / ".config" / "Claude" / "claude_desktop_config.json").read_text())
    entry = config["mcpServers"]["mcpmux"]
    # A desktop host starts it with a minimal environment of its own plus the entry's env: not this shell's.
    keyring = {k: v for k, v in os.environ.items() if k in ("PYTHON_KEYRING_BACKEND", "XDG_DATA_HOME")}
    keyring |= {k: v for k, v in os.environ.items() if k.startswith("DBUS_")}
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), **keyring, **entry.get("env", {})}
    names = await host_tools(entry["command"], entry["args"], cwd=tmp_path, env=env)
    assert "time__get_current_time" in names
