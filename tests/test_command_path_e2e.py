"""A serve started by a GUI host, with a minimal PATH: a server's `command` in a folder not on that PATH is found
through the profile's `path` or the user's login shell, and when it is found nowhere, the host is told which
command, which PATH was searched, and the fix."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from mcpmux.errors import ProfileError
from mcpmux.profile.load import load_profile
from mcpmux.profile.trust import describe
from tests.conftest import FIXTURE_SERVER, host_session

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]
MINIMAL_PATH = "/usr/bin:/bin"
"""What launchd gives a macOS app, near enough; `fixture-mcp` is not on it."""
COMMAND = "fixture-mcp"


@pytest.fixture
def tools_bin(tmp_path: Path) -> Path:
    """A folder off serve's PATH holding `fixture-mcp`, a real MCP server (as `npx` is in ~/.nvm/…/bin)."""
    folder = tmp_path / "tools-bin"
    folder.mkdir()
    script = folder / COMMAND
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FIXTURE_SERVER}" "$@"\n')
    script.chmod(0o755)
    return folder


def login_shell(tmp_path: Path, folder: Path | None) -> Path:
    """A login shell whose profile scripts talk on stdout and put `folder` on its PATH (as ~/.zprofile does)."""
    shell = tmp_path / "login-shell"
    extra = f'PATH="{folder}:$PATH"; export PATH\n' if folder is not None else ""
    shell.write_text(f'#!/bin/sh\necho "Welcome back"\n{extra}[ "$1" = -l ] && shift\nexec /bin/sh "$@"\n')
    shell.chmod(0o755)
    return shell


def text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_a_command_in_a_folder_of_the_profiles_path_runs_under_a_minimal_path(
    write_profile: WriteProfile, tools_bin: Path
):
    profile = write_profile(f'path = ["{tools_bin}"]\n[servers.alpha]\ncommand = "{COMMAND}"\n')
    env = {"PATH": MINIMAL_PATH, "SHELL": "/nonexistent/shell"}
    async with host_session(profile, env=env) as host:
        with anyio.fail_after(30):
            echoed = await host.call_tool("alpha__echo", {"text": "found"})
            path = await host.call_tool("alpha__show_env", {"name": "PATH"})
    assert text(echoed) == "found"
    assert text(path) == f"{tools_bin}:{MINIMAL_PATH}"  # what the server runs in turn is found there too


async def test_a_command_found_only_on_the_login_shells_path_runs_with_that_path(
    write_profile: WriteProfile, tools_bin: Path, tmp_path: Path
):
    profile = write_profile(f'[servers.alpha]\ncommand = "{COMMAND}"\n')
    env = {"PATH": MINIMAL_PATH, "SHELL": str(login_shell(tmp_path, tools_bin))}
    async with host_session(profile, env=env) as host:
        with anyio.fail_after(30):
            echoed = await host.call_tool("alpha__echo", {"text": "found"})
            path = await host.call_tool("alpha__show_env", {"name": "PATH"})
    assert text(echoed) == "found"
    assert text(path).split(":")[0] == str(tools_bin)


async def test_a_command_found_nowhere_is_named_with_each_path_searched_and_the_fix(
    write_profile: WriteProfile, tools_bin: Path, tmp_path: Path
):
    profile = write_profile(f'[servers.alpha]\ncommand = "{COMMAND}"\n')
    shell = login_shell(tmp_path, None)
    env = {"PATH": MINIMAL_PATH, "SHELL": str(shell)}
    logged: list[types.LoggingMessageNotificationParams] = []
    told = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params)
        told.set()

    async with host_session(profile, env=env, logging_callback=on_log) as host:
        with anyio.fail_after(30):
            result = await host.call_tool("alpha__echo", {"text": "lost"})
            await told.wait()
    said = text(result)
    assert result.is_error
    assert said.startswith("tool 'alpha__echo' is unavailable: server 'alpha' failed to start: ")
    [log] = logged
    assert (log.level, log.logger) == ("error", "mcpmux")
    assert str(log.data).startswith("server 'alpha' failed and will not be restarted: ")
    for shown in (said, str(log.data)):
        assert f"command '{COMMAND}' not found (searched PATH={MINIMAL_PATH}, " in shown
        assert f"nor your login shell's ({shell}) PATH=" in shown
        assert 'add its folder to the profile: path = ["FOLDER"]' in shown
        assert f"`command -v {COMMAND}` in a terminal prints FOLDER/{COMMAND}" in shown


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["bin"]', "'bin' is not an absolute folder"),
        ('["/a/bin:/b/bin"]', "'/a/bin:/b/bin' holds ':'"),
        ('"/usr/local/bin"', "must be an array of strings, not a string"),
    ],
)
def test_validate_refuses_a_path_that_is_relative_holds_a_separator_or_is_not_a_list(
    tmp_path: Path, value: str, problem: str
):
    profile = tmp_path / "p.toml"
    profile.write_text(f'path = {value}\n[servers.alpha]\ncommand = "{COMMAND}"\n')
    with pytest.raises(ProfileError) as refused:
        load_profile(profile)
    [found] = refused.value.problems
    assert (found.line, found.key) == (1, "path")
    assert problem in found.message


def test_path_expands_the_home_folder_and_applies_to_every_local_server(tmp_path: Path):
    profile = tmp_path / "p.toml"
    servers = f'[servers.alpha]\ncommand = "{COMMAND}"\n[servers.web]\nurl = "https://example.com/mcp"\n'
    profile.write_text('path = ["~/.local/bin", "/opt/homebrew/bin"]\n' + servers)
    alpha, web = load_profile(profile).servers
    assert alpha.search_path == (str(Path.home() / ".local/bin"), "/opt/homebrew/bin")
    assert web.search_path == ()


def test_what_a_person_reads_before_trusting_names_the_folders_a_command_is_looked_up_in_first(tmp_path: Path):
    profile = tmp_path / "p.toml"
    profile.write_text('path = ["/opt/team/bin"]\n[servers.alpha]\ncommand = "npx"\nargs = ["-y", "some-mcp"]\n')
    assert describe(load_profile(profile)) == (
        "  server 'alpha': runs npx -y some-mcp; looked up first in /opt/team/bin"
    )
