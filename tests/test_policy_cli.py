"""`mcpmux policy explain` through typer's runner, on an app with only the policy commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mcpmux.cli import policy_cmd

WriteProfile = Callable[..., Path]

PROFILE = """\
[policy]
default = "deny"
deny = ["git__git_push"]

[[policy.rules]]
tools = ["db__query"]
effect = "allow"
hosts = ["finance-agent"]
hours = "06:00-18:00"
days = ["mon-fri"]
[policy.rules.args]
fiscal_year = { equals = 2025 }
database = { fixed = "replica" }
"""
WEEKDAY = "2026-03-02T09:00:00+00:00"


@pytest.fixture
def run(write_profile: WriteProfile) -> Callable[..., dict[str, object]]:
    app = typer.Typer()
    policy_cmd.register(app)
    path = write_profile(PROFILE)

    def invoke(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(app, ["policy", "explain", *args, "--profile", str(path), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    return invoke


@pytest.mark.parametrize(
    ("args", "listed", "called", "rule"),
    [
        (
            ["db__query", "--host", "finance-agent", "--at", WEEKDAY, "--args", '{"fiscal_year": 2025}'],
            True,
            True,
            "policy.rules[0]",
        ),
        (
            ["db__query", "--host", "finance-agent", "--at", WEEKDAY, "--args", '{"fiscal_year": 2024}'],
            True,
            False,
            "policy.rules[0].args.fiscal_year.equals",
        ),
        (
            ["db__query", "--host", "finance-agent", "--at", "2026-03-02T19:00:00Z", "--args", '{"fiscal_year": 2025}'],
            True,
            False,
            "policy.rules[0].hours",
        ),
        (
            ["db__query", "--host", "finance-agent", "--at", "2026-03-07T09:00", "--args", '{"fiscal_year": 2025}'],
            True,
            False,
            "policy.rules[0].days",
        ),
        (["db__query", "--host", "someone-else"], False, False, 'policy.default = "deny"'),
        (["git__git_push"], False, False, 'policy.deny[0] "git__git_push"'),
    ],
)
def test_explain_shows_the_list_and_call_decisions_and_the_deciding_rule(
    run: Callable[..., dict[str, object]], args: list[str], listed: bool, called: bool, rule: str
) -> None:
    out = run(*args)
    assert (out["list"]["allowed"], out["call"]["allowed"], out["call"]["rule"]) == (listed, called, rule)  # type: ignore[index]


def test_explain_shows_every_matched_rule_the_forwarded_arguments_and_unknown_annotations(
    run: Callable[..., dict[str, object]],
) -> None:
    out = run("db__query", "--host", "finance-agent", "--at", WEEKDAY, "--args", '{"fiscal_year": 2025}')
    assert [m["rule"] for m in out["matched"]] == ["policy.rules[0]"]  # type: ignore[union-attr, index]
    assert out["call"]["arguments"] == {"fiscal_year": 2025, "database": "replica"}  # type: ignore[index]
    assert out["annotations"] == {"known": False, "read_only": None, "destructive": None}
    assert out["notes"]
    hinted = run("db__query", "--read-only-hint", "--no-destructive-hint")
    assert hinted["annotations"] == {"known": True, "read_only": True, "destructive": False}


def test_explain_prints_a_table_by_default(write_profile: WriteProfile) -> None:
    app = typer.Typer()
    policy_cmd.register(app)
    path = write_profile(PROFILE)
    args = ["policy", "explain", "db__query", "--host", "finance-agent", "--at", WEEKDAY, "--profile", str(path)]
    result = CliRunner().invoke(app, [*args, "--args", '{"fiscal_year": 1}'])
    assert result.exit_code == 0, result.output
    assert "denied" in result.stdout
    assert "must equal 2025" in result.stdout
    assert "every rule that covers" in result.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--args", "{"], "--args is not JSON"), (["--args", "[1]"], "JSON object")],
)
def test_explain_rejects_bad_input_with_the_fix(write_profile: WriteProfile, flags: list[str], message: str) -> None:
    app = typer.Typer()
    policy_cmd.register(app)
    path = write_profile(PROFILE)
    result = CliRunner().invoke(app, ["policy", "explain", "db__query", *flags, "--profile", str(path)])
    assert result.exit_code != 0
    assert message in str(result.exception)


def test_explain_reads_at_like_since_and_names_the_option_and_forms_when_it_cannot(write_profile: WriteProfile) -> None:
    app = typer.Typer()
    policy_cmd.register(app)
    path = write_profile(PROFILE)
    bad = CliRunner().invoke(app, ["policy", "explain", "db__query", "--at", "noon", "--profile", str(path)])
    assert bad.exit_code == 2
    assert "--at" in bad.stderr and "cannot read 'noon' as a time" in bad.stderr and "+2h (from now)" in bad.stderr
    later = CliRunner().invoke(app, ["policy", "explain", "db__query", "--at", "+3d", "--profile", str(path), "--json"])
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout)["version"] == 1


def test_explain_reads_relative_paths_against_the_servers_cwd_or_cwd_option(
    write_profile: WriteProfile, tmp_path: Path
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    server = f'[servers.ledger]\ncommand = "ledger"\ncwd = "{vault}"\n'
    rule = '[[policy.rules]]\ntools = ["ledger__read_note"]\neffect = "deny"\n'
    rule += f'[policy.rules.args]\npath = {{ within = ["{vault}"] }}\n'
    app = typer.Typer()
    policy_cmd.register(app)
    path = write_profile(server + rule)

    def explain(*extra: str) -> dict[str, Any]:
        args = ["policy", "explain", "ledger__read_note", "--args", '{"path": "key.txt"}', "--profile", str(path)]
        result = CliRunner().invoke(app, [*args, *extra, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    from_profile, elsewhere = explain(), explain("--cwd", str(tmp_path))
    assert (from_profile["cwd"], from_profile["call"]["allowed"], from_profile["call"]["rule"]) == (
        str(vault),
        False,
        "policy.rules[0]",
    )
    assert (elsewhere["cwd"], elsewhere["call"]["allowed"]) == (str(tmp_path), True)
