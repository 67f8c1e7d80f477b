from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from mcpmux.audit import events as ev
from mcpmux.audit import lifecycle
from mcpmux.audit.events import (
    MAX_FIELD_CHARS,
    ErrorText,
    call_error,
    record_arguments,
    tool_call_event,
)
from mcpmux.audit.lifecycle import catalog_changed, tool_fingerprint
from mcpmux.audit.log import AuditLog
from mcpmux.secrets.redact import Redactor
from tests.audit_helpers import KEY, OTHER_KEY

SECRET = "ghp_abcdefghijklmnop1234567890"
REDACTOR = Redactor({"github-pat": SECRET})
ARGS = {"repo": "x", "headers": {"Authorization": f"Bearer {SECRET}"}, "list": [SECRET, 3], SECRET: True}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", None),
        ("digest", KEY.args_digest(ARGS)),
        (
            "redacted",
            {
                "repo": "x",
                "headers": {"Authorization": "Bearer [redacted:github-pat]"},
                "list": ["[redacted:github-pat]", 3],
                "[redacted:github-pat]": True,
            },
        ),
    ],
)
def test_record_arguments_follows_the_arguments_policy(mode: ev.ArgsMode, expected: Any) -> None:
    assert record_arguments(ARGS, mode, REDACTOR, KEY) == expected


def test_a_digest_is_keyed_so_hashing_a_guessed_value_cannot_confirm_it() -> None:
    guess = {"path": "/home/alice/taxes-2025.pdf"}
    digest = record_arguments(guess, "digest", key=KEY)
    canonical = orjson.dumps(guess, option=orjson.OPT_SORT_KEYS)
    assert hashlib.sha256(canonical).hexdigest() not in digest  # the old, plain `sha256:` digest
    assert digest.startswith("hmac-sha256:") and len(digest) == len("hmac-sha256:") + 64
    assert digest == record_arguments({"path": "/home/alice/taxes-2025.pdf"}, "digest", key=KEY)  # still comparable
    assert digest != record_arguments(guess, "digest", key=OTHER_KEY)
    assert record_arguments({"path": "/etc/shadow"}, "digest", key=KEY) != digest


def test_without_a_key_a_digest_is_not_recorded_at_all() -> None:
    assert record_arguments(ARGS, "digest") is None


VALUE = "acct-4417-9921-0032"
"""An argument value that must appear nowhere in an event recorded under `none` or `digest`."""

ERRORS: list[str | ErrorText] = [
    ErrorText(
        f"tool 'bank__pay' is not allowed: argument 'account' = \"{VALUE}\" does not match pattern ^x$ "
        "(policy.rules[0].args.account.pattern)",
        "tool 'bank__pay' is not allowed",
    ),
    call_error("bank", "pay", {"code": -32602, "message": f"unknown account {VALUE}"}),
    ErrorText(f"cancelled: the user saw {VALUE}", None),
    f"a message from somewhere that quotes {VALUE}",
]


@pytest.mark.parametrize("mode", ["none", "digest"])
@pytest.mark.parametrize("error", ERRORS, ids=["policy refusal", "downstream error", "host cancel", "plain text"])
def test_without_recorded_values_no_argument_value_appears_anywhere_in_the_event_error_included(
    mode: ev.ArgsMode, error: str | ErrorText
) -> None:
    event = tool_call_event(
        exposed="bank__pay",
        server="bank",
        tool="pay",
        decision="denied",
        rule=None,
        outcome="denied",
        duration_ms=0.0,
        arguments={"account": VALUE},
        args_mode=mode,
        key=KEY,
        error=error,
    )
    assert VALUE not in orjson.dumps(event).decode()
    if isinstance(error, ErrorText) and error.bare is not None:
        assert event["error"] == error.bare


def test_a_downstream_error_keeps_its_code_and_redacted_mode_records_the_whole_text() -> None:
    error = call_error("bank", "pay", {"code": -32602, "message": f"unknown account {VALUE}"})
    assert error.bare == "server 'bank' failed tool 'pay' (JSON-RPC error code -32602)"
    event = tool_call_event(
        exposed="bank__pay",
        server="bank",
        tool="pay",
        decision="allowed",
        rule=None,
        outcome="error",
        duration_ms=0.0,
        arguments={"account": VALUE},
        args_mode="redacted",
        error=error,
    )
    assert event["error"] == f"server 'bank' failed tool 'pay': unknown account {VALUE} (code -32602)"


def test_no_secret_value_reaches_any_event_in_redacted_mode(tmp_path: Path) -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.bind(serve="s", profile="p")
        for outcome in ("ok", "error", "timeout"):
            log.write(
                tool_call_event(
                    exposed="gh__search",
                    server="gh",
                    tool="search",
                    decision="allowed",
                    rule=None,
                    outcome=outcome,
                    duration_ms=3.0,
                    arguments={**ARGS, "b64": encoded},
                    args_mode="redacted",
                    redactor=REDACTOR,
                    error=f"server said: bad token {SECRET} ({encoded})",
                    result_bytes=10,
                )
            )
    text = path.read_text()
    assert SECRET not in text and encoded not in text
    assert text.count("[redacted:github-pat]") >= 3 * 6


def test_long_arguments_and_errors_are_cut_and_the_event_says_so() -> None:
    event = tool_call_event(
        exposed="a__b",
        server="a",
        tool="b",
        decision="allowed",
        rule=None,
        outcome="error",
        duration_ms=1.23456,
        arguments={"blob": "x" * (2 * MAX_FIELD_CHARS)},
        args_mode="redacted",
        error="e" * (2 * MAX_FIELD_CHARS),
    )
    assert event["truncated"] is True
    assert len(event["args"]) == len(event["error"]) == MAX_FIELD_CHARS + 1
    assert event["duration_ms"] == 1.235
    short = tool_call_event(
        exposed="a__b", server="a", tool="b", decision="allowed", rule=None, outcome="ok", duration_ms=1, arguments={}
    )
    assert short["truncated"] is False and short["args"] is None  # digest, but no key: nothing guessable


@pytest.mark.parametrize(
    ("event", "name", "fields"),
    [
        (lifecycle.serve_start(pid=1, version="0.1"), "serve_start", {"pid": 1, "version": "0.1"}),
        (lifecycle.serve_stop(pid=1, reason="SIGTERM"), "serve_stop", {"reason": "SIGTERM"}),
        (lifecycle.downstream_start("git", 42), "downstream_start", {"server": "git", "pid": 42}),
        (lifecycle.downstream_exit("git", 42, -9), "downstream_exit", {"exit_code": -9}),
        (lifecycle.downstream_restart("git", 2, 1.23456), "downstream_restart", {"attempt": 2, "delay_s": 1.235}),
        (
            lifecycle.downstream_failed("git", "boom", "/l/git.log"),
            "downstream_failed",
            {"error": "boom", "log": "/l/git.log"},
        ),
        (lifecycle.profile_switch("a", "h1", "b", "h2"), "profile_switch", {"from_profile": "a", "profile": "b"}),
    ],
)
def test_lifecycle_constructors_build_the_documented_events(
    event: dict[str, Any], name: str, fields: dict[str, Any]
) -> None:
    assert event["event"] == name
    assert fields.items() <= event.items()


def test_catalog_changed_lists_added_removed_and_changed_tools_or_nothing() -> None:
    before = {"git__status": tool_fingerprint({"name": "status"}), "git__log": tool_fingerprint({"name": "log"})}
    after = {"git__status": tool_fingerprint({"name": "status", "description": "new"}), "git__diff": "x"}
    assert catalog_changed(before, after, server="git") == {
        "event": "catalog_changed",
        "server": "git",
        "added": ["git__diff"],
        "removed": ["git__log"],
        "changed": ["git__status"],
    }
    assert catalog_changed(before, dict(before)) is None
