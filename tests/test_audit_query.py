from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from mcpmux.audit.log import AuditLog, utc_timestamp
from mcpmux.audit.query import EventFilter, parse_when, percentile, select, stats, total
from mcpmux.audit.read import follow, read_events
from mcpmux.cli import audit_cmd
from mcpmux.cli._audit_lines import event_line

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", "2026-11-25T11:30:00.000Z"),
        ("1h", "2026-11-25T11:00:00.000Z"),
        ("1d", "2026-11-24T12:00:00.000Z"),
        ("1w", "2026-11-18T12:00:00.000Z"),
        ("1.5h", "2026-11-25T10:30:00.000Z"),
        ("2026-11-25T10:00Z", "2026-11-25T10:00:00.000Z"),
        ("2026-11-25T10:00+02:00", "2026-11-25T08:00:00.000Z"),
    ],
)
def test_parse_when_reads_durations_ago_and_iso_times_as_log_timestamps(text: str, expected: str) -> None:
    assert parse_when(text, NOW) == expected


def test_parse_when_reads_local_days_and_naive_times_as_local_time() -> None:
    local_midnight = NOW.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    assert parse_when("today", NOW) == utc_timestamp(local_midnight)
    assert parse_when("yesterday", NOW) < parse_when("today", NOW)
    assert parse_when("2026-11-25T10:00", NOW) == utc_timestamp(datetime(2026, 11, 25, 10, 0).astimezone())


def test_parse_when_names_the_accepted_forms_when_it_cannot_read_a_time() -> None:
    with pytest.raises(ValueError, match=r"use 30m, 1h, 2d or 1w"):
        parse_when("last tuesday", NOW)


def _call(ts: str, host: str, server: str, tool: str, outcome: str = "ok", ms: float = 10.0) -> dict[str, Any]:
    decision = outcome if outcome in ("denied", "unknown") else "allowed"
    return {
        "event": "tool_call",
        "ts": ts,
        "host": host,
        "server": server,
        "tool": tool,
        "exposed": f"{server}__{tool}",
        "decision": decision,
        "rule": 'policy.deny[0] "*__commit"' if decision == "denied" else None,
        "outcome": outcome,
        "duration_ms": 0.0 if decision != "allowed" else ms,
    }


EVENTS = [
    _call("2026-11-24T09:00:00.000Z", "Cursor", "git", "git_status", ms=12),
    _call("2026-11-24T09:05:00.000Z", "cursor-vscode", "git", "git_commit", "denied"),
    _call("2026-11-24T09:10:00.000Z", "claude-code", "git", "git_log", ms=30),
    _call("2026-11-24T10:00:00.000Z", "Cursor", "time", "now", "error", ms=5),
    {"event": "downstream_start", "ts": "2026-11-24T08:00:00.000Z", "server": "git", "pid": 7},
    _call("2026-11-25T11:00:00.000Z", "Cursor", "git", "git_log", "timeout", ms=60000),
]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (EventFilter(host="cursor*", server="git"), ["git_status", "git_commit", "git_log"]),
        (EventFilter(host="cursor*", server="git", until="2026-11-25T00:00:00.000Z"), ["git_status", "git_commit"]),
        (EventFilter(since="2026-11-24T09:05:00.000Z", until="2026-11-24T10:00:00.000Z"), ["git_commit", "git_log"]),
        (EventFilter(tool="git__git_l*"), ["git_log", "git_log"]),
        (EventFilter(tool="NOW"), ["now"]),
        (EventFilter(outcomes=("error", "timeout")), ["now", "git_log"]),
        (EventFilter(decisions=("denied",)), ["git_commit"]),
        (EventFilter(event="*", server="git", until="2026-11-24T09:01:00.000Z"), ["git_status", None]),
    ],
)
def test_event_filter_keeps_what_each_option_selects(where: EventFilter, expected: list[str | None]) -> None:
    assert [e.get("tool") for e in select(EVENTS, where)] == expected


def test_select_with_a_limit_keeps_the_latest_matches() -> None:
    assert [e["tool"] for e in select(EVENTS, EventFilter(server="git"), limit=2)] == ["git_log", "git_log"]


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (0, 50, 95, 99, 100)] == [1.0, 50.5, 95.05, 99.01, 100.0]
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_stats_count_calls_errors_denials_and_latency_of_forwarded_calls_only() -> None:
    events = [_call(f"2026-11-24T09:00:{i:02d}.000Z", "h", "git", "log", ms=float(i + 1)) for i in range(20)]
    events += [_call("2026-11-24T09:01:00.000Z", "h", "git", "commit", "denied")]
    events += [_call("2026-11-24T09:02:00.000Z", "h", "git", "log", "tool_error", ms=100.0)]
    groups = stats(events, "tool")
    assert [g.key for g in groups] == ["git__log", "git__commit"]
    log, commit = groups
    assert (log.calls, log.errors, log.denied) == (21, 1, 0)
    assert (commit.calls, commit.denied, commit.denial_rate, commit.latency(50)) == (1, 1, 1.0, None)
    assert log.latency(50) == 11.0
    assert log.as_dict()["p95_ms"] == 20.0
    assert stats(events, "server")[0].calls == total(groups).calls == 22


# ---- CLI --------------------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    audit_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `audit` a group
    return app


def _write(path: Path, events: list[dict[str, Any]], rotate_bytes: int = 0) -> None:
    with AuditLog(path, rotate_bytes=rotate_bytes, keep=100) as log:
        for event in events:
            log.write(event)


def _recent(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """EVENTS moved so that the last one is an hour ago (the CLI compares with the real clock)."""
    shift = datetime.now(UTC) - datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    out: list[dict[str, Any]] = []
    for e in events:
        when = datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) + shift
        out.append({**e, "ts": utc_timestamp(when)})
    return out


def test_one_command_shows_what_cursor_called_on_git_how_long_it_took_and_what_was_denied(
    mcpmux_home: Path,
) -> None:
    _write(mcpmux_home / "state" / "audit.jsonl", _recent(EVENTS), rotate_bytes=600)  # spread over rotated files
    result = CliRunner().invoke(
        _app(),
        ["audit", "query", "--host", "cursor*", "--server", "git", "--since", "2d", "--until", "12h"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "git__git_status" in out and "git__git_commit" in out
    assert "claude-code" not in out and "time__now" not in out and "downstream_start" not in out
    assert re.search(r"git__git_status.*│\s+allowed\s+│\s+ok\s+│\s+12\.0", out)
    assert re.search(r"git__git_commit.*│\s+denied\s+│\s+denied\s+│.*policy\.deny\[0\]", out)
    assert "2 calls · 1 denied · 0 errors" in out


def test_audit_query_json_prints_matching_events_as_lines(mcpmux_home: Path) -> None:
    _write(mcpmux_home / "state" / "audit.jsonl", EVENTS)
    result = CliRunner().invoke(_app(), ["audit", "query", "--outcome", "error,timeout", "--json"])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["outcome"] for line in result.stdout.splitlines()] == ["error", "timeout"]


def test_audit_query_names_the_option_and_the_forms_for_an_unreadable_time(mcpmux_home: Path) -> None:
    result = CliRunner().invoke(_app(), ["audit", "query", "--since", "soon"])
    assert result.exit_code == 2
    assert "--since" in result.output and "30m, 1h" in result.output


def test_audit_stats_shows_rates_and_percentiles_per_server(mcpmux_home: Path) -> None:
    _write(mcpmux_home / "state" / "audit.jsonl", EVENTS)
    result = CliRunner().invoke(_app(), ["audit", "stats", "--by", "server"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert re.search(r"git\s+│\s+4\s+│\s+1\s+│\s+25\.0%\s+│\s+1\s+│\s+25\.0%\s+│\s+30\.0", result.stdout)
    assert re.search(r"all\s+│\s+5\s+│\s+2\s+│\s+40\.0%", result.stdout)
    as_json = CliRunner().invoke(_app(), ["audit", "stats", "--by", "host", "--json"])
    body = orjson.loads(as_json.stdout)
    assert (body["version"], body["by"], body["total"]["calls"]) == (1, "host", 5)
    rows = {row["key"]: row for row in body["groups"]}
    assert rows["Cursor"]["calls"] == 3 and rows["Cursor"]["p50_ms"] == 12.0


def test_audit_tail_json_prints_the_last_raw_lines_across_rotated_files(mcpmux_home: Path) -> None:
    path = mcpmux_home / "state" / "audit.jsonl"
    _write(path, EVENTS, rotate_bytes=400)
    result = CliRunner().invoke(_app(), ["audit", "tail", "-n", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(line)["ts"] for line in result.stdout.splitlines()] == [e["ts"] for e in EVENTS[-4:]]


def test_audit_tail_shows_calls_and_lifecycle_events_as_text_never_markup(mcpmux_home: Path) -> None:
    _write(mcpmux_home / "state" / "audit.jsonl", [*EVENTS, {**EVENTS[0], "exposed": "git__[bold]x"}])
    result = CliRunner().invoke(_app(), ["audit", "tail"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "downstream_start git" in result.stdout
    assert "git__[bold]x" in result.stdout


def test_audit_tail_says_so_when_there_are_no_events(mcpmux_home: Path) -> None:
    result = CliRunner().invoke(_app(), ["audit", "tail"])
    assert result.exit_code == 0
    assert "no audit events yet" in result.stderr


def test_follow_yields_new_lines_and_carries_on_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, rotate_bytes=300, keep=10) as log:
        log.write({"event": "before"})
        lines = follow(path, poll_seconds=0.01)
        for i in range(6):
            log.write({"event": "x", "i": i})
        got = [orjson.loads(next(lines))["i"] for _ in range(6)]
    assert got == list(range(6))
    assert len(list(tmp_path.glob("audit.*.jsonl"))) >= 2
    assert [e.get("i") for e in read_events(path)][-6:] == list(range(6))


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            {"ts": "2026-11-25T12:00:00.250Z", "event": "tool_call", "exposed": "git__git_push", "host": "cursor"}
            | {"decision": "denied", "outcome": "denied", "rule": 'policy.deny[0] "git__git_push"', "duration_ms": 0},
            '2026-11-25 12:00:00Z  git__git_push  denied  0.0 ms  cursor  policy.deny[0] "git__git_push"',
        ),
        (
            {"ts": "2026-11-25T12:00:00.000Z", "event": "tool_call", "exposed": "t__x\x1b[2K", "outcome": "error"}
            | {"decision": "allowed", "error": "boom\nagain"},
            "2026-11-25 12:00:00Z  t__x\\x1b[2K  error  boom\\nagain",
        ),
        (
            {"ts": "2026-11-25T12:00:00.000Z", "event": "downstream_exit", "server": "git", "exit_code": -9},
            "2026-11-25 12:00:00Z  downstream_exit git  exit -9",
        ),
        (
            {"ts": "2026-11-25T12:00:00.000Z", "event": "catalog_changed", "added": ["a", "b"], "removed": ["c"]},
            "2026-11-25 12:00:00Z  catalog_changed  added 2 removed 1",
        ),
        (
            {"ts": "2026-11-25T12:00:00.000Z", "event": "profile_switch", "from_profile": "a", "profile": "b"},
            "2026-11-25 12:00:00Z  profile_switch  a → b",
        ),
        ({"ts": "not a time", "event": "serve_stop", "reason": "stdin closed"}, "not a time  serve_stop  stdin closed"),
    ],
)
def test_audit_tail_shows_each_event_as_one_line_of_escaped_text(event: dict[str, Any], line: str) -> None:
    assert event_line(event).plain == line
