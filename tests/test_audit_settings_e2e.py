"""The profile's `[audit]` settings through a real `mcpmux serve`, with the SDK client as the host."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import orjson
import pytest
from mcp import ClientSession, stdio_client

from mcpmux.audit.key import keyring_key
from mcpmux.secrets.store import KeyringStore
from tests.conftest import REPO, fixture_server_toml, host_session, serve_params
from tests.e2e_helpers import ListChanged, audit_events

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def calls(home: Path) -> list[dict[str, Any]]:
    return audit_events(home, "tool_call")


def args_digest(arguments: Any) -> str:
    """The digest `serve` records, under the audit key it made in this run's keyring."""
    key = keyring_key(create=False)
    assert key is not None, "serve made no audit key in the keyring"
    return key.args_digest(arguments)


@pytest.fixture
async def stored_secret() -> AsyncIterator[tuple[str, str]]:
    """A secret in the real keyring backend of this run (file keyring, or the Secret Service in CI)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    value = f"tok/+?=&{uuid.uuid4().hex}"  # every encoding of it differs from the value
    store = KeyringStore()
    with anyio.fail_after(30):
        await store.set(name, value)
    yield name, value
    with anyio.fail_after(30):
        await store.delete(name)


# ---- args -------------------------------------------------------------------------------------------------------


ARGS_RECORDS: list[tuple[str, Callable[[Any], Any]]] = [
    ("", lambda arguments: args_digest(arguments)),
    ('[audit]\nargs = "digest"\n', lambda arguments: args_digest(arguments)),
    ('[audit]\nargs = "none"\n', lambda arguments: None),
]


@pytest.mark.parametrize(("audit", "expected"), ARGS_RECORDS, ids=["default", "digest", "none"])
async def test_the_default_and_digest_record_the_arguments_digest_and_none_records_null(
    write_profile: WriteProfile, mcpmux_home: Path, audit: str, expected: Callable[[Any], Any]
) -> None:
    profile = write_profile(fixture_server_toml("alpha") + audit)
    arguments = {"text": "hello from the host"}
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            result = await host.call_tool("alpha__echo", arguments)
    assert text_of(result) == "hello from the host"
    (event,) = calls(mcpmux_home)
    assert (event["exposed"], event["outcome"]) == ("alpha__echo", "ok")
    assert event["args"] == expected(arguments)
    # Whoever reads the log cannot confirm a guess of the arguments by hashing it.
    guess = hashlib.sha256(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert guess not in (mcpmux_home / "state" / "audit.jsonl").read_text()


@pytest.mark.parametrize("mode", ["none", "digest"])
async def test_an_argument_a_policy_refusal_quotes_reaches_the_host_but_not_the_log(
    write_profile: WriteProfile, mcpmux_home: Path, mode: str
) -> None:
    account = f"acct-{uuid.uuid4().hex}"
    profile = write_profile(
        fixture_server_toml("alpha")
        + '[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "allow"\n'
        + '[policy.rules.args]\ntext = { pattern = "^hello$" }\n'
        + f'[audit]\nargs = "{mode}"\n'
    )
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            refused = await host.call_tool("alpha__echo", {"text": account})
    assert refused.is_error and account in text_of(refused)  # the host learns which value broke the rule
    (event,) = calls(mcpmux_home)
    assert (event["outcome"], event["rule"]) == ("denied", "policy.rules[0].args.text.pattern")
    assert event["error"] == "tool 'alpha__echo' is not allowed"
    assert account not in (mcpmux_home / "state" / "audit.jsonl").read_text()


async def test_redacted_args_record_the_values_with_the_servers_secrets_replaced_even_for_refused_calls(
    write_profile: WriteProfile, mcpmux_home: Path, stored_secret: tuple[str, str]
) -> None:
    name, value = stored_secret
    profile = write_profile(
        fixture_server_toml("alpha", env=f'{{ API_TOKEN = {{ secret = "{name}" }} }}')
        + '[policy]\ndeny = ["alpha__delete_everything"]\n'
        + '[audit]\nargs = "redacted"\n'
    )
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            echoed = await host.call_tool("alpha__echo", {"text": f"the host sent {value}", "n": 3})
            denied = await host.call_tool("alpha__delete_everything", {"confirm": [value, "yes"]})
            unknown = await host.call_tool("alpha__no_such_tool", {"token": value})
    assert not echoed.is_error and denied.is_error and unknown.is_error
    marker = f"[redacted:{name}]"
    by_tool = {e["exposed"]: e for e in calls(mcpmux_home)}
    assert by_tool["alpha__echo"]["args"] == {"text": f"the host sent {marker}", "n": 3}
    assert by_tool["alpha__delete_everything"]["outcome"] == "denied"
    assert by_tool["alpha__delete_everything"]["args"] == {"confirm": [marker, "yes"]}
    # An unknown tool has no server whose secrets could be looked for: redacted fails closed to the digest.
    assert by_tool["alpha__no_such_tool"]["args"] == args_digest({"token": value})
    raw = value.encode()
    forms = [value, urllib.parse.quote(value, safe=""), base64.b64encode(raw).decode()]
    log_text = (mcpmux_home / "state" / "audit.jsonl").read_text()
    assert [form for form in forms if form in log_text] == []


async def test_saving_a_new_args_mode_applies_to_the_next_call_without_restarting_serve(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    from mcpmux.profile.trust import trust_profile

    path = write_profile(fixture_server_toml("alpha"))
    changed = ListChanged()
    with anyio.fail_after(60):
        async with host_session(path, message_handler=changed) as host:
            await host.call_tool("alpha__echo", {"text": "before"})
            # A second server too, so the host hears list_changed once the edit is applied.
            path.write_text(fixture_server_toml("alpha") + fixture_server_toml("beta") + '[audit]\nargs = "none"\n')
            trust_profile(path)
            await changed.wait()
            while "beta__echo" not in {t.name for t in (await host.list_tools()).tools}:
                await changed.wait()
            await host.call_tool("alpha__echo", {"text": "after"})
    before, after = calls(mcpmux_home)
    assert before["args"] == args_digest({"text": "before"})
    assert after["args"] is None


# ---- required -----------------------------------------------------------------------------------------------------


async def tried_to_record(host: ClientSession) -> None:
    """Return once serve has tried to record every call answered so far.

    serve answers a call, then records it, within its handling of the call's line, and handles lines in
    order: the answer to a later request comes after that attempt. (Without this wait the test, under load,
    broke or fixed the log between an answer and its event.)
    """
    await host.list_tools()


def break_the_log(home: Path) -> Path:
    """Put a directory where `audit.jsonl` is: every append fails, for root too (chmod would not stop root)."""
    log = home / "state" / "audit.jsonl"
    assert log.is_file()
    log.unlink()
    log.mkdir()
    return log


async def test_a_required_audit_log_that_cannot_be_written_refuses_the_next_call_naming_the_log_and_the_fix(
    write_profile: WriteProfile, mcpmux_home: Path, tmp_path: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha") + "[audit]\nrequired = true\n")
    stderr_path = tmp_path / "serve-stderr.txt"
    with anyio.fail_after(60), stderr_path.open("w") as stderr:
        async with (
            stdio_client(serve_params(profile), errlog=stderr) as (read, write),
            ClientSession(read, write) as host,
        ):
            await host.initialize()
            first = await host.call_tool("alpha__echo", {"text": "audited"})
            await tried_to_record(host)
            log = break_the_log(mcpmux_home)
            # This call's own append is what fails: it has already run and cannot be taken back.
            ran = await host.call_tool("alpha__echo", {"text": "ran, unaudited"})
            refused = [await host.call_tool("alpha__echo", {"text": f"refused {n}"}) for n in range(3)]
            await tried_to_record(host)  # the last refusal's event was tried while the log was still broken
            log.rmdir()  # the log can be written again
            # The first call after the fix is still refused; its refusal is the event that proves the log works.
            after_fix = await host.call_tool("alpha__echo", {"text": "refused, but recorded"})
            again = await host.call_tool("alpha__echo", {"text": "runs again"})
    assert (first.is_error, text_of(first)) == (False, "audited")
    assert (ran.is_error, text_of(ran)) == (False, "ran, unaudited")
    for result in [*refused, after_fix]:
        assert result.is_error
        message = text_of(result)
        assert f"the audit log {log} cannot be written (Is a directory)" in message
        assert "Free disk space or fix the log's permissions" in message
        assert "audit.required = false" in message
    assert (again.is_error, text_of(again)) == (False, "runs again")
    recorded = calls(mcpmux_home)  # a new file, begun by the recorded refusal
    assert [(e["decision"], e["rule"], e["outcome"]) for e in recorded] == [
        ("denied", "audit.required", "denied"),
        ("allowed", 'policy.default = "allow"', "ok"),
    ]
    assert "tool 'alpha__echo' was not run" in recorded[0]["error"]
    reports = [line for line in stderr_path.read_text().splitlines() if "cannot write the audit log" in line]
    assert len(reports) == 1, reports  # once per failure, however many refusals tried to write


async def test_an_audit_log_that_is_not_required_lets_calls_through_while_it_cannot_be_written(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(fixture_server_toml("alpha") + "[audit]\nrequired = false\n")
    with anyio.fail_after(60):
        async with host_session(profile) as host:
            await host.call_tool("alpha__echo", {"text": "audited"})
            await tried_to_record(host)
            log = break_the_log(mcpmux_home)
            results = [await host.call_tool("alpha__echo", {"text": f"unaudited {n}"}) for n in range(3)]
            log.rmdir()
    assert [(r.is_error, text_of(r)) for r in results] == [(False, f"unaudited {n}") for n in range(3)]


# ---- validation ---------------------------------------------------------------------------------------------------


def test_serve_and_validate_refuse_a_bad_args_value_and_an_unknown_audit_key_naming_the_file_and_key(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "profiles" / "bad.toml"  # not via write_profile: only a valid profile can be trusted
    profile.parent.mkdir()
    profile.write_text(fixture_server_toml("alpha") + '[audit]\nargs = "everything"\nrequird = true\n')
    expected = [
        f"{profile}:5: audit.args: must be one of digest, none, redacted, not 'everything' (write args = \"digest\")",
        f"{profile}:6: audit.requird: unknown key 'requird' (did you mean 'required'?)",
    ]
    for command in (["serve", "--profile"], ["validate"]):
        done = subprocess.run(
            [sys.executable, "-m", "mcpmux", *command, str(profile)],
            capture_output=True,
            text=True,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert done.returncode == 1, done
        for line in expected:
            assert line in done.stderr, done.stderr
