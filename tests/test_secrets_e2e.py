"""No form of a secret reaches the host, any process's argv, the audit log or mcpmux's logs (real `mcpmux serve`)."""

from __future__ import annotations

import base64
import json
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, stdio_client

from mcpmux.secrets.redact import Redactor
from mcpmux.secrets.store import KeyringStore
from tests.conftest import fixture_server_toml, host_session, serve_params

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def forms(value: str) -> list[str]:
    raw = value.encode()
    b64 = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()]
    return [value, urllib.parse.quote(value, safe=""), *b64, *(b.rstrip("=") for b in b64)]


@pytest.fixture
async def stored_secret() -> AsyncIterator[tuple[str, str]]:
    """A secret in the real keyring backend of this run (file keyring, or the Secret Service in CI)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    # '/', '+', '?', '=' and '&' make every encoding differ from the value and from each other.
    value = f"tok/+?=&{uuid.uuid4().hex}"
    store = KeyringStore()
    with anyio.fail_after(30):
        await store.set(name, value)
    yield name, value
    with anyio.fail_after(30):
        await store.delete(name)


def _leaks(value: str, texts: list[str]) -> list[str]:
    return [t for t in texts if any(form in t for form in forms(value))]


async def test_no_form_of_a_secret_reaches_the_host_in_results_errors_progress_or_logs(
    write_profile: WriteProfile, mcpmux_home: Path, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    profile = write_profile(
        fixture_server_toml(
            "alpha", env=f'{{ API_TOKEN = {{ secret = "{name}" }}, AUTH = "Bearer {{secret:{name}}}" }}'
        )
    )
    seen: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        seen.append(json.dumps(params.model_dump(mode="json")))

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(str(message))

    with anyio.fail_after(60):
        async with (
            stdio_client(serve_params(profile)) as (read, write),
            ClientSession(read, write, logging_callback=on_log) as host,
        ):
            await host.initialize()
            results: list[Any] = [
                await host.call_tool("alpha__leak_env", {"name": "API_TOKEN"}, progress_callback=on_progress),
                await host.call_tool("alpha__leak_env", {"name": "AUTH"}),
                await host.call_tool("alpha__leak_env_error", {"name": "API_TOKEN"}),
                await host.call_tool("alpha__echo", {"text": f"the host itself sent {value}"}),
            ]
    dumped = [json.dumps(r.model_dump(mode="json")) for r in results]
    assert _leaks(value, dumped + seen) == []
    leaked, from_template, error, echoed = (r.model_dump(mode="json") for r in results)
    marker = f"[redacted:{name}]"
    assert leaked["structured_content"] == {
        "plain": marker,
        "base64": marker,
        "urlsafe_base64": marker,
        "url": marker,
        "json": f'"{marker}"',
        **dict.fromkeys(("u_lower", "u_upper", "u_every_other", "go"), marker),
    }
    assert from_template["structured_content"]["plain"] == f"Bearer {marker}"
    assert f"plain: {marker}" in seen  # progress messages come through, redacted
    assert error["is_error"] is True
    assert error["content"][0]["text"].count(marker) == 9
    assert echoed["content"][0]["text"] == f"the host itself sent {marker}"
    state = _state_texts(mcpmux_home)
    assert any(p.endswith("audit.jsonl") for p in state), list(state)
    assert _leaks(value, list(state.values())) == []


def _state_texts(home: Path) -> dict[str, str]:
    """Every file mcpmux wrote: audit log, downstream logs, trust records, active profile."""
    return {str(p): p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()}


def _all_command_lines() -> list[str]:
    lines: list[str] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue  # a process that ended while we looked
    return lines


def _environ_of_processes_holding(marker: str) -> list[bytes]:
    found: list[bytes] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker.encode() in environ.split(b"\0"):
                found.append(environ)
    return found


async def test_no_process_argv_shows_a_secret_while_mcpmux_serves_it(
    write_profile: WriteProfile, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    tag = f"MCPMUX_TEST_TAG={uuid.uuid4().hex}"  # finds this test's downstreams in /proc
    key, tag_value = tag.split("=")
    profile = write_profile(
        fixture_server_toml("alpha", env=f'{{ API_TOKEN = {{ secret = "{name}" }}, {key} = "{tag_value}" }}')
        + fixture_server_toml("beta", env=f'{{ AUTH = "Bearer {{secret:{name}}}", {key} = "{tag_value}" }}')
    )
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            await host.list_tools()  # every downstream is up, holding the secret in its environment
            command_lines = _all_command_lines()
            environs = _environ_of_processes_holding(tag)
    assert len(environs) == 2, "both downstreams should be running"
    # The secret is there, in the environment only the owner can read, and in no argv anywhere.
    assert all(value.encode() in environ for environ in environs)
    assert any(str(profile) in line for line in command_lines)
    assert _leaks(value, command_lines) == []


def test_a_dict_result_serialised_to_text_has_its_json_escaped_secret_redacted() -> None:
    value = 'quote"back\\slash-ünï'
    as_text = json.dumps({"plain": value}, ensure_ascii=False)
    redactor = Redactor({"db": value})
    assert redactor.redact_text(as_text) == '{"plain": "[redacted:db]"}'
    assert redactor.redact_text(json.dumps({"plain": value})) == '{"plain": "[redacted:db]"}'


async def test_a_secret_a_downstream_returns_u_escaped_in_either_hex_case_reaches_the_host_as_the_marker(
    write_profile: WriteProfile, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    profile = write_profile(fixture_server_toml("alpha", env=f'{{ API_TOKEN = {{ secret = "{name}" }} }}'))
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            result = await host.call_tool("alpha__leak_env", {"name": "API_TOKEN"})
    keys = ("u_lower", "u_upper", "u_every_other", "go")
    assert {k: (result.structured_content or {})[k] for k in keys} == dict.fromkeys(keys, f"[redacted:{name}]")
    # The text content is the dict as JSON text: the escapes escaped once more, and redacted there too.
    dumped = json.dumps(result.model_dump(mode="json"))
    assert value[8:] not in dumped and value[8:].upper() not in dumped  # nor the tail (its hex) in any case


async def test_a_secret_written_with_every_character_u_escaped_on_the_wire_reaches_the_host_as_the_marker(
    write_profile: WriteProfile, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    faulty = Path(__file__).parent / "fixtures" / "faulty_server.py"
    profile = write_profile(
        f'[servers.alpha]\ncommand = "{sys.executable}"\nargs = ["{faulty}", "--escape-results"]\n'
        f'env = {{ API_TOKEN = {{ secret = "{name}" }} }}\n'
    )
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            result = await host.call_tool("alpha__echo", {"text": f"it is {value}."})
    assert result.content[0].model_dump()["text"] == f"it is [redacted:{name}]."


async def test_a_result_cut_at_max_output_bytes_inside_a_secret_leaves_no_part_of_it(
    write_profile: WriteProfile, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    profile = write_profile(
        fixture_server_toml("alpha", env=f'{{ API_TOKEN = {{ secret = "{name}" }} }}', max_output_bytes="1024")
    )
    # mcpmux keeps 1024 - 512 - 64 = 448 bytes of the text: all of the secret but its last character.
    before = 448 - (len(value) - 1)
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            result = await host.call_tool("alpha__echo", {"text": "x" * before + value + "y" * 2000})
    text = result.content[0].model_dump()["text"]
    assert text.startswith("x" * before + f"[redacted:{name}]")
    assert "over its max_output_bytes of 1024" in result.content[-1].model_dump()["text"]
    dumped = json.dumps(result.model_dump(mode="json"))
    assert value[:8] not in dumped
