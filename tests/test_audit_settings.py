"""The profile's `[audit]` table: parsing, validation, inheritance, and the library pieces the relay uses for it."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mcpmux.audit.events import AUDIT_REQUIRED_RULE, ArgsMode, args_mode_for, audit_refusal, tool_call_event
from mcpmux.audit.log import AuditLog
from mcpmux.cli import profile_cmd
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import AuditSpec
from mcpmux.secrets.redact import Redactor
from tests.test_profile import SERVER, problems_of, write

# ---- parsing and validation ---------------------------------------------------------------------------------------


def test_a_profile_without_an_audit_table_records_digests_and_does_not_require_the_log(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, SERVER)).audit == AuditSpec(args="digest", required=False)


ALL_MODES: list[ArgsMode] = ["none", "digest", "redacted"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_each_args_mode_and_required_parse_into_the_frozen_model(tmp_path: Path, mode: ArgsMode) -> None:
    profile = load_profile(write(tmp_path, f'{SERVER}[audit]\nargs = "{mode}"\nrequired = true\n'))
    assert profile.audit == AuditSpec(args=mode, required=True)


def test_setting_only_required_keeps_the_default_args_mode(tmp_path: Path) -> None:
    assert load_profile(write(tmp_path, "[audit]\nrequired = true\n")).audit == AuditSpec(required=True)


# (text, key path, line, fragment of "message (fix)")
BAD_AUDIT = [
    ('[audit]\nargs = "full"', "audit.args", 2, "must be one of digest, none, redacted, not 'full'"),
    ('[audit]\nargs = "full"', "audit.args", 2, 'write args = "digest"'),
    ("[audit]\nargs = 1", "audit.args", 2, "must be a string, not an integer"),
    ("[audit]\nrequird = true", "audit.requird", 2, "unknown key 'requird' (did you mean 'required'?)"),
    ("[audit]\nverbose = true", "audit.verbose", 2, "known keys: args, required"),
    ('[audit]\nrequired = "yes"', "audit.required", 2, "must be true or false, not a string"),
    ('audit = "digest"', "audit", 1, "must be an [audit] table, not a string"),
    ("[audt]\nrequired = true", "audt", 1, "did you mean 'audit'?"),
]


@pytest.mark.parametrize(("text", "key", "line", "fragment"), BAD_AUDIT)
def test_an_audit_mistake_names_the_file_the_key_its_line_and_the_fix(
    tmp_path: Path, text: str, key: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    found = [p for p in problems_of(path) if p.key == key]
    assert found, [str(p) for p in problems_of(path)]
    assert (found[0].path, found[0].line) == (path, line)
    assert fragment in f"{found[0].message} ({found[0].fix})"
    assert found[0].fix


def test_a_bad_args_value_renders_as_file_line_key_message_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, SERVER + '[audit]\nargs = "values"\n')
    assert [str(p) for p in problems_of(path)] == [
        f"{path}:4: audit.args: must be one of digest, none, redacted, not 'values' (write args = \"digest\")"
    ]


# ---- inheritance --------------------------------------------------------------------------------------------------


def test_a_child_setting_args_keeps_the_required_it_inherits(tmp_path: Path) -> None:
    write(tmp_path, SERVER + '[audit]\nrequired = true\nargs = "none"\n', "base.toml")
    child = write(tmp_path, 'extends = ["base"]\n[audit]\nargs = "redacted"\n', "child.toml")
    assert load_profile(child).audit == AuditSpec(args="redacted", required=True)


def test_a_child_may_turn_required_off_and_an_audit_mistake_in_the_parent_names_the_parent(tmp_path: Path) -> None:
    write(tmp_path, SERVER + "[audit]\nrequired = true\n", "base.toml")
    relaxed = write(tmp_path, 'extends = ["base"]\n[audit]\nrequired = false\n', "child.toml")
    assert load_profile(relaxed).audit == AuditSpec()
    base = write(tmp_path, SERVER + "[audit]\nrequired = true\nrequird = 1\n", "base.toml")
    (problem,) = problems_of(write(tmp_path, 'extends = ["base"]\n[audit]\nargs = "none"\n', "child.toml"))
    assert (problem.path, problem.line, problem.key) == (base, 5, "audit.requird")


def test_profile_show_resolved_lists_the_merged_audit_settings(tmp_path: Path) -> None:
    write(tmp_path, SERVER + "[audit]\nrequired = true\n", "base.toml")
    child = write(tmp_path, 'extends = ["base"]\n[audit]\nargs = "none"\n', "child.toml")
    app = typer.Typer()
    profile_cmd.register(app)
    result = CliRunner().invoke(app, ["profile", "show", str(child), "--resolved"])
    assert result.exit_code == 0, result.output
    assert tomllib.loads(result.stdout)["audit"] == {"required": True, "args": "none"}


# ---- what the relay uses ------------------------------------------------------------------------------------------

SECRETS = Redactor({"gh": "ghp_0123456789"})

MODES: list[tuple[ArgsMode, Redactor | None, tuple[str, ...] | None, ArgsMode]] = [
    ("digest", SECRETS, ("gh",), "digest"),
    ("none", None, None, "none"),
    ("redacted", SECRETS, ("gh",), "redacted"),
    ("redacted", None, (), "redacted"),  # a server without secrets: nothing to hide
    ("redacted", Redactor({}), ("gh",), "digest"),  # its secrets were never loaded: fail closed
    ("redacted", None, ("gh",), "digest"),
    ("redacted", None, None, "digest"),  # an unknown tool: no server, no telling whose secrets
]


@pytest.mark.parametrize(("mode", "redactor", "secrets", "expected"), MODES)
def test_redacted_args_fall_back_to_the_digest_only_when_the_secrets_cannot_be_redacted(
    mode: ArgsMode, redactor: Redactor | None, secrets: tuple[str, ...] | None, expected: ArgsMode
) -> None:
    assert args_mode_for(mode, redactor, secrets) == expected


def test_a_redacted_tool_call_event_records_the_values_with_the_secret_replaced() -> None:
    arguments: dict[str, Any] = {"repo": "x", "auth": "token ghp_0123456789", "n": 3}
    event = tool_call_event(
        exposed="gh__push",
        server="gh",
        tool="push",
        decision="allowed",
        rule=None,
        outcome="ok",
        duration_ms=1.0,
        arguments=arguments,
        args_mode="redacted",
        redactor=SECRETS,
    )
    assert event["args"] == {"repo": "x", "auth": "token [redacted:gh]", "n": 3}


def test_the_refusal_names_the_log_the_reason_and_every_fix(tmp_path: Path) -> None:
    text = audit_refusal("git__log", tmp_path / "audit.jsonl", "No space left on device")
    assert f"the audit log {tmp_path / 'audit.jsonl'} cannot be written (No space left on device)" in text
    assert "tool 'git__log' was not run" in text
    assert "free disk space" in text.lower() and "permissions" in text and "audit.required = false" in text
    assert AUDIT_REQUIRED_RULE == "audit.required"


def test_the_log_is_unhealthy_from_a_failed_append_until_one_succeeds_and_says_so_once_per_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    caplog.set_level(logging.ERROR, logger="mcpmux")
    with AuditLog(path) as log:
        assert log.healthy and log.failure_reason is None
        for _ in range(3):
            assert log.write({"event": "tool_call"}) is None
        assert not log.healthy
        assert log.failure_reason == "No space left on device"
        path.unlink()  # space again
        assert log.write({"event": "tool_call"}) is not None
        assert log.healthy and log.failure is None and log.failure_reason is None
        path.unlink()
        path.mkdir()  # a directory where the file was: fails for root too
        assert log.write({"event": "tool_call"}) is None
        assert log.failure_reason == "Is a directory"
    reports = [r.getMessage() for r in caplog.records if "audit log" in r.getMessage()]
    assert len(reports) == 2, reports
    assert all(str(path) in r for r in reports)
