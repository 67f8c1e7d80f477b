"""`mcpmux profile new`: a commented starter profile, or a copy of an existing one.

A template rather than tomli-w output, because the comments are the point: they teach
each section where it is used. The starter loads cleanly as written (no server is
active until one is uncommented).
"""

from __future__ import annotations

import os
from pathlib import Path

from mcpmux.errors import MCPMuxError
from mcpmux.paths import create_private

STARTER = """\
# Profile "{name}": which MCP servers mcpmux runs for a host, and what the host may call.
# Check it with `mcpmux validate {name}`; see every tool with `mcpmux tools --profile {name}`.

description = "{name}: describe what this profile is for"

# Inherit another profile's servers and policy (names, or paths relative to this file);
# this file's settings win, policy lists add up.
# extends = ["base"]

# A local server: `command` runs with `args`, speaking MCP on stdio.
# [servers.time]
# command = "mcp-server-time"
# args = ["--local-timezone", "UTC"]
# timeout_seconds = 60                 # per tool call

# Credentials never sit here: `{{ secret = "NAME" }}` points at the OS keyring,
# filled once with `mcpmux secret set NAME`.
# [servers.github]
# command = "npx"
# args = ["-y", "@modelcontextprotocol/server-github"]
# env = {{ GITHUB_PERSONAL_ACCESS_TOKEN = {{ secret = "github-pat" }} }}

# Which tools the host sees and may call: globs over exposed names (SERVER__TOOL); deny wins.
[policy]
default = "allow"
# allow = ["time__*"]
# deny = ["*__delete_*"]
"""


def starter_text(name: str) -> str:
    return STARTER.format(name=name)


def write_new(target: Path, text: str, *, private: bool) -> Path:
    """Create `target` with `text`; refuses to overwrite (exclusive creation makes that race-free).

    `private`: a user profile, in mcpmux's config folder, created 0600 in a 0700 folder like the rest of its
    state. Otherwise a project profile, meant to be committed and read by the team: 0644.
    """
    try:
        if private:
            create_private(target, text.encode())
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8") as handle:
                handle.write(text)
            if os.name != "nt":
                target.chmod(0o644)
    except FileExistsError as exc:
        raise MCPMuxError(f"{target} already exists; choose another name or edit that file") from exc
    return target


def copied_text(source: Path) -> str:
    """An existing profile's text, headed by where it came from; `extends` paths stay as written."""
    return f"# Copied from {source}.\n" + source.read_text(encoding="utf-8")
