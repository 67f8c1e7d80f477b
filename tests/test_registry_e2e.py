"""`mcpmux search` and `mcpmux add`, driven as the installed command against a loopback registry.

The registry (tests/fixtures/registry_server.py) serves real-world-shaped server.json documents
(tests/fixtures/registry/servers.json): npm, pypi, oci and nuget packages, remotes with headers,
templated arguments, deprecated and deleted entries, a hostile entry, and enough servers to page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from tests.conftest import uses_system_keyring
from tests.fixtures.registry_server import FixtureRegistry
from tests.test_remote_e2e import remote_server

MCPMUX = Path(sys.executable).parent / "mcpmux"
ORIGINAL = """\
# Work profile: shared with the team.
description = "work"

[servers.time]
command = "mcp-server-time"   # keep this comment
args = ["--local-timezone", "UTC"]

# What the host may call.
[policy]
default = "allow"
deny = ["*__delete_*"]
"""
SECRETS = (
    "weather-weather-api-key",
    "database-manager-db-password",
    "hybrid-x-api-key",
    "loopback-echo-token",
    "filesystem-token",
)


@pytest.fixture
def registry() -> Iterator[FixtureRegistry]:
    with FixtureRegistry() as running:
        yield running


@pytest.fixture
def profile(mcpmux_home: Path) -> Path:
    """A user profile (trusted as the user's own) with comments, a server and a policy."""
    path = mcpmux_home / "profiles" / "work.toml"
    path.parent.mkdir(parents=True)
    path.write_text(ORIGINAL)
    return path


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    """In CI the keyring is the session's real Secret Service, shared by every test: leave it as found."""
    yield
    if uses_system_keyring():  # elsewhere each test has a file keyring of its own
        for name in SECRETS:
            run("secret", "delete", name)


def run(
    *args: str, registry: FixtureRegistry | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("MCPMUX_REGISTRY", None)
    if registry is not None:
        env["MCPMUX_REGISTRY"] = registry.url
    return subprocess.run(
        [str(MCPMUX), *args], env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def servers(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())["servers"]


def test_search_lists_latest_active_servers_and_says_how_many_deprecated_or_deleted_were_left_out(
    registry: FixtureRegistry,
):
    found = run("search", "weather", registry=registry)
    assert found.returncode == 0, found.stderr
    assert "io.github.example/weather" in found.stdout and "0.5.0" in found.stdout and "pypi" in found.stdout
    assert "old-weather" not in found.stdout and "weather-leak" not in found.stdout
    assert "2 deprecated or deleted entries left out" in found.stderr
    assert registry.requests == ["/v0.1/servers?search=weather&version=latest&limit=30"]


def test_search_follows_next_cursor_until_the_limit(registry: FixtureRegistry):
    found = run("search", "tool-", "--limit", "25", registry=registry)
    assert found.returncode == 0, found.stderr
    assert all(f"io.github.example/tool-{n:02d}" in found.stdout for n in range(1, 24))
    assert [r.split("cursor=")[-1] for r in registry.requests if "cursor=" in r] == ["MTA%3D", "MjA%3D"]


def test_add_appends_an_npm_entry_keeping_every_other_line_and_validate_accepts_it(
    registry: FixtureRegistry, profile: Path, tmp_path: Path
):
    added = run(
        "add", "io.github.modelcontextprotocol/filesystem", "-p", "work", "--set", f"allowed_dir={tmp_path}",
        registry=registry,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    text = profile.read_text()
    assert text.startswith(ORIGINAL.split("# What the host may call.")[0])
    assert text.endswith('# What the host may call.\n[policy]\ndefault = "allow"\ndeny = ["*__delete_*"]\n')
    assert servers(profile)["filesystem"] == {
        "command": "npx",
        "args": ["-y", "@modelcontextprotocol/server-filesystem@2026.1.14", str(tmp_path)],
    }
    assert "/v0.1/servers/io.github.modelcontextprotocol%2Ffilesystem/versions/latest" in registry.requests
    assert "# Added by `mcpmux add io.github.modelcontextprotocol/filesystem@2026.1.14`" in text
    checked = run("validate", "work")
    assert checked.returncode == 0, checked.stderr


def test_a_secret_input_goes_to_the_keyring_and_the_profile_only_names_it(
    registry: FixtureRegistry, profile: Path, file_keyring: PlaintextKeyring
):
    value = f"sk-{uuid.uuid4().hex}"
    added = run(
        "add", "io.github.example/weather", "-p", "work", "--set", f"WEATHER_API_KEY={value}", registry=registry
    )
    assert added.returncode == 0, added.stderr
    assert servers(profile)["weather"] == {
        "command": "uvx",
        "args": ["weather-mcp-server@0.5.0"],
        "env": {"WEATHER_API_KEY": {"secret": "weather-weather-api-key"}, "WEATHER_UNITS": "celsius"},
    }
    assert value not in profile.read_text() and value not in added.stdout + added.stderr
    assert keyring.get_password("mcpmux", "weather-weather-api-key") == value
    checked = run("secret", "check", "work")
    assert checked.returncode == 0 and "ok: all 1 secrets" in checked.stderr


def test_add_of_name_at_version_installs_exactly_that_version(registry: FixtureRegistry, profile: Path):
    added = run("add", "io.github.example/weather@0.4.0", "-p", "work", "--set", "WEATHER_API_KEY=k", registry=registry)
    assert added.returncode == 0, added.stderr
    assert servers(profile)["weather"]["args"] == ["weather-mcp-server@0.4.0"]
    assert registry.requests == ["/v0.1/servers/io.github.example%2Fweather/versions/0.4.0"]


def test_add_never_overwrites_an_existing_server_without_force(registry: FixtureRegistry, profile: Path):
    first = run("add", "io.github.example/weather", "-p", "work", "--set", "WEATHER_API_KEY=k", registry=registry)
    assert first.returncode == 0, first.stderr
    before = profile.read_text()
    again = run("add", "io.github.example/weather@0.4.0", "-p", "work", "--set", "WEATHER_API_KEY=k", registry=registry)
    assert again.returncode == 1
    assert "server 'weather' already exists; pass --force to replace it" in again.stderr
    assert profile.read_text() == before
    forced = run(
        "add",
        "io.github.example/weather@0.4.0",
        "-p",
        "work",
        "--force",
        "--set",
        "WEATHER_API_KEY=k",
        registry=registry,
    )
    assert forced.returncode == 0, forced.stderr
    text = profile.read_text()
    assert servers(profile)["weather"]["args"] == ["weather-mcp-server@0.4.0"]
    assert text.count("[servers.weather]") == 1 and text.count("# Added by") == 1
    assert "mcp-server-time" in text and "# What the host may call." in text


def test_an_existing_secret_is_kept_when_no_new_value_is_given(
    registry: FixtureRegistry, profile: Path, file_keyring: PlaintextKeyring
):
    keyring.set_password("mcpmux", "weather-weather-api-key", "stored-before")
    added = run("add", "io.github.example/weather", "-p", "work", registry=registry)
    assert added.returncode == 0, added.stderr
    assert servers(profile)["weather"]["env"]["WEATHER_API_KEY"] == {"secret": "weather-weather-api-key"}
    assert keyring.get_password("mcpmux", "weather-weather-api-key") == "stored-before"


@pytest.mark.parametrize(("name", "status"), [("old-weather", "deprecated"), ("weather-leak", "deleted")])
def test_deprecated_and_deleted_entries_are_not_added(registry: FixtureRegistry, profile: Path, name: str, status: str):
    refused = run("add", f"io.github.example/{name}", "-p", "work", registry=registry)
    assert refused.returncode == 1
    assert f"is {status} in the registry, so it is not added" in refused.stderr
    assert profile.read_text() == ORIGINAL


def test_a_missing_required_input_is_named_with_the_set_flag_that_gives_it(registry: FixtureRegistry, profile: Path):
    refused = run("add", "io.github.modelcontextprotocol/filesystem", "-p", "work", registry=registry)
    assert refused.returncode == 1
    assert "argument <allowed_dir> (A directory the server may access)" in refused.stderr
    assert "--set allowed_dir=VALUE" in refused.stderr
    assert profile.read_text() == ORIGINAL


def test_a_docker_entry_keeps_env_values_and_secrets_off_the_command_line(registry: FixtureRegistry, profile: Path):
    password = f"pw-{uuid.uuid4().hex}"
    sets = ["db_type=postgres", f"db_password={password}", "database_name=shop", "DB_USERNAME=app", "port=5432"]
    added = run(
        "add", "com.example/database-manager", "-p", "work", *[a for s in sets for a in ("--set", s)],
        "--set", "read-only=true", registry=registry,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    entry = servers(profile)["database-manager"]
    assert entry["command"] == "docker"
    assert entry["args"] == [
        *("run", "-i", "--rm", "--network=host", "-e", "DB_TYPE", "-e", "DB_PASSWORD"),
        *("-e", "DB_USERNAME", "-e", "SSL_MODE", "example/database-manager-mcp:3.1.0"),
        *("--host", "localhost", "--port", "5432", "--read-only", "shop"),
    ]
    assert entry["env"] == {
        "DB_TYPE": "postgres",
        "DB_PASSWORD": {"secret": "database-manager-db-password"},
        "DB_USERNAME": "app",
        "SSL_MODE": "prefer",
    }
    assert password not in profile.read_text()
    assert run("validate", "work").returncode == 0


def test_a_remote_prefers_streamable_http_and_its_secret_header_becomes_a_reference(
    registry: FixtureRegistry, profile: Path, file_keyring: PlaintextKeyring
):
    added = run(
        "add", "com.example/hybrid", "-p", "work", "--via", "remote", "--set", "X-API-Key=key-1", registry=registry
    )
    assert added.returncode == 0, added.stderr
    assert servers(profile)["hybrid"] == {
        "url": "https://mcp.example.com/mcp",
        "headers": {"X-API-Key": {"secret": "hybrid-x-api-key"}, "X-Region": "us-east-1"},
    }
    assert keyring.get_password("mcpmux", "hybrid-x-api-key") == "key-1"


def test_an_entry_that_would_run_a_shell_or_reach_outside_its_registry_is_refused_with_every_reason(
    registry: FixtureRegistry, profile: Path
):
    refused = run("add", "io.github.mallory/shell-runner", "-p", "work", registry=registry)
    assert refused.returncode == 1
    for reason in (
        "runtime 'sh' is not how npm packages run",
        "'--registry=https://mallory.example' is not a valid npm package name",
        "version '>=1.0' is not an exact version",
        "'http://mallory.example/mcp' is plain http to another machine",
    ):
        assert reason in refused.stderr
    assert profile.read_text() == ORIGINAL


def test_a_registry_that_answers_with_another_server_than_the_one_asked_for_is_refused(
    registry: FixtureRegistry, profile: Path
):
    registry.impostor = next(e for e in registry.entries if e["server"]["name"] == "com.example/hybrid")
    refused = run("add", "io.github.example/sample-nuget", "-p", "work", registry=registry)
    assert refused.returncode == 1
    assert "answered with com.example/hybrid@1.5.0, not the io.github.example/sample-nuget@latest asked for" in (
        refused.stderr
    )
    assert profile.read_text() == ORIGINAL


def test_a_bundle_only_entry_says_what_mcpmux_can_run(registry: FixtureRegistry, profile: Path):
    refused = run("add", "io.github.example/text-editor-bundle", "-p", "work", registry=registry)
    assert refused.returncode == 1
    assert (
        "'mcpb' packages are not supported (mcpmux runs npm, pypi, nuget, oci packages and remotes)" in refused.stderr
    )


def test_a_nuget_entry_runs_with_dnx_and_its_fixed_arguments(registry: FixtureRegistry, profile: Path):
    added = run("add", "io.github.example/sample-nuget", "-p", "work", "--dry-run", registry=registry)
    assert added.returncode == 0, added.stderr
    entry = tomllib.loads(added.stdout)["servers"]["sample-nuget"]
    assert entry == {"command": "dnx", "args": ["Example.SampleMcpServer@0.5.0", "--yes", "--", "mcp", "start"]}
    assert profile.read_text() == ORIGINAL


def test_an_unknown_set_key_is_refused_naming_it(registry: FixtureRegistry, profile: Path):
    refused = run(
        "add", "io.github.example/weather", "-p", "work", "--set", "WEATHER_API_KEY=k", "--set", "WEATHR_UNITS=kelvin",
        registry=registry,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "has no input named WEATHR_UNITS" in refused.stderr
    assert profile.read_text() == ORIGINAL


def test_answers_come_from_the_cache_when_the_registry_is_down_or_offline_is_asked(
    registry: FixtureRegistry, profile: Path
):
    assert run("search", "weather", registry=registry).returncode == 0
    registry.failing = True
    down = run("search", "weather", registry=registry)
    assert down.returncode == 0, down.stderr
    assert "io.github.example/weather" in down.stdout
    assert "the registry answered HTTP 503: using the answer cached at" in down.stderr
    offline = run("search", "weather", "--offline", registry=registry)
    assert offline.returncode == 0 and "offline (--offline): using the answer cached at" in offline.stderr
    never = run("search", "github", registry=registry)
    assert never.returncode == 1
    assert "and there is no cached answer for" in never.stderr


def test_the_profile_chooses_its_registry_only_when_it_is_trusted(registry: FixtureRegistry, tmp_path: Path):
    project = tmp_path / "project"
    (project / "profiles").mkdir(parents=True)
    (project / ".git").mkdir()
    path = project / "profiles" / "team.toml"
    path.write_text(f'registry = "{registry.url}"\n\n[servers.time]\ncommand = "mcp-server-time"\n')
    untrusted = run("search", "weather", "-p", "team", cwd=project)
    assert untrusted.returncode == 1
    assert "is not trusted, and an untrusted profile does not choose where servers come from" in untrusted.stderr
    assert registry.requests == []
    assert run("profile", "trust", "team", cwd=project).returncode == 0
    trusted = run("add", "io.github.example/sample-nuget", "-p", "team", cwd=project)
    assert trusted.returncode == 0, trusted.stderr
    assert f"registry: {registry.url} (the profile's 'registry' key)" in trusted.stderr
    assert "the profile changed, and it runs only once trusted" in trusted.stderr
    assert "sample-nuget" in servers(path)


def test_a_user_setting_names_the_registry_when_nothing_more_specific_does(
    registry: FixtureRegistry, profile: Path, mcpmux_home: Path
):
    (mcpmux_home / "registry.toml").write_text(f'url = "{registry.url}"\n')
    found = run("search", "weather", "-p", "work")
    assert found.returncode == 0, found.stderr
    assert f"registry: {registry.url} ({mcpmux_home / 'registry.toml'})" in found.stderr
    (mcpmux_home / "registry.toml").write_text('url = "http://registry.example.com"\n')
    refused = run("search", "weather", "-p", "work")
    assert refused.returncode == 1 and "is plain http to another machine" in refused.stderr


async def _call_echo(profile: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(
        [str(MCPMUX), "call", "loopback-echo__echo", '{"text": "via the registry"}', "-p", profile], check=False
    )


@pytest.mark.anyio
async def test_a_remote_added_from_the_registry_is_relayed_with_its_token_from_the_keyring(
    registry: FixtureRegistry, profile: Path
):
    token = f"tok-{uuid.uuid4().hex}"
    async with remote_server(token) as (_, port):
        sets = ("--set", f"port={port}", "--set", f"token={token}")
        added = await anyio.to_thread.run_sync(
            lambda: run("add", "io.github.example/loopback-echo", "-p", "work", *sets, registry=registry)
        )
        assert added.returncode == 0, added.stderr
        called = await _call_echo("work")
    assert servers(profile)["loopback-echo"] == {
        "url": f"http://127.0.0.1:{port}/mcp",
        "headers": {"Authorization": "Bearer {secret:loopback-echo-token}"},
    }
    assert token not in await anyio.Path(profile).read_text()
    assert called.returncode == 0, called.stderr
    assert b"via the registry" in called.stdout
