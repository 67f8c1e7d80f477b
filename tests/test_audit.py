from __future__ import annotations

import re
import stat
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from mcpmux.audit import AuditLog, ReadStats, args_digest, read_events, tail_events, tail_lines
from mcpmux.cli import audit_cmd


def _call(exposed: str, **extra: Any) -> dict[str, Any]:
    return {"event": "tool_call", "host": "test-host", "exposed": exposed, "decision": "allowed", **extra}


def test_audit_log_appends_one_json_line_per_event_and_adds_a_utc_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(_call("git__status", duration_ms=1.5))
        log.write({"event": "serve_stop", "ts": "2025-01-01T00:00:00.000Z"})
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first["exposed"] == "git__status"
    assert list(read_events(path))[1] == {"event": "serve_stop", "ts": "2025-01-01T00:00:00.000Z"}


def test_audit_log_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(_call("x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_audit_log_does_not_create_the_file_until_the_first_event(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.close()
    assert not log.path.exists()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mcpmux.audit import AuditLog

    writer, count = sys.argv[2], int(sys.argv[3])
    log = AuditLog(Path(sys.argv[1]))
    for i in range(count):
        log.write({"event": "tool_call", "writer": writer, "i": i, "pad": "x" * (i % 7 * 1500)})
    log.close()
    """
)


def test_audit_log_lines_from_concurrent_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", "500"], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    stats = ReadStats()
    seen = Counter((event["writer"], event["i"]) for event in read_events(path, stats))
    assert stats.skipped == 0
    assert len(seen) == 2000
    assert set(seen.values()) == {1}


def test_audit_log_lines_from_concurrent_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)

    def write(writer: int) -> None:
        for i in range(300):
            log.write({"writer": writer, "i": i, "pad": "y" * (i % 5 * 2000)})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    log.close()
    stats = ReadStats()
    assert len({(e["writer"], e["i"]) for e in read_events(path, stats)}) == 2400
    assert stats.skipped == 0


def test_read_events_skips_and_counts_unparseable_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"event":"a"}\nnot json\n[1,2]\n\n{"event":"b"}\n{"event":"cut sho')
    stats = ReadStats()
    assert [e["event"] for e in read_events(path, stats)] == ["a", "b"]
    assert (stats.events, stats.skipped) == (2, 3)


def test_read_events_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert list(read_events(tmp_path / "absent.jsonl")) == []
    assert tail_lines(tmp_path / "absent.jsonl", 5) == []


def test_tail_returns_the_last_events_across_read_blocks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        for i in range(3000):
            log.write({"i": i, "pad": "z" * (i % 50)})
    with path.open("ab") as f:
        f.write(b"garbage\n")
    assert [e["i"] for e in tail_events(path, 1000)] == list(range(2000, 3000))
    assert [e["i"] for e in tail_events(path, 5000)] == list(range(3000))
    assert path.stat().st_size > 3 * 64 * 1024
    assert tail_lines(path, 1) == [path.read_bytes().splitlines()[-2]]


def test_args_digest_is_stable_across_key_order_and_hides_the_arguments() -> None:
    a = args_digest({"path": "/etc/passwd", "opts": {"b": 1, "a": [1, 2]}})
    b = args_digest({"opts": {"a": [1, 2], "b": 1}, "path": "/etc/passwd"})
    assert a == b
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", a)
    assert args_digest({"path": "/etc/shadow"}) != a
    assert args_digest(None) == "sha256:74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"


# ---- CLI --------------------------------------------------------------------------------------------------------


def _app() -> typer.Typer:
    app = typer.Typer()
    audit_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `audit` a group
    return app


@pytest.fixture
def audit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCPMUX_HOME", str(tmp_path))
    return tmp_path / "audit.jsonl"


def test_audit_tail_json_prints_the_last_raw_lines(audit_home: Path) -> None:
    with AuditLog(audit_home) as log:
        for n in range(5):
            log.write(_call(f"srv__tool{n}"))
    result = CliRunner().invoke(_app(), ["audit", "tail", "-n", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [line.decode() for line in audit_home.read_bytes().splitlines()[-2:]]


def test_audit_tail_shows_calls_and_lifecycle_events_in_a_table(audit_home: Path) -> None:
    with AuditLog(audit_home) as log:
        log.write({"event": "downstream_start", "server": "git", "pid": 42})
        log.write(_call("git__status", outcome="ok", duration_ms=12.345))
        log.write(_call("git__[bold]commit", decision="denied", outcome="denied"))
    result = CliRunner().invoke(_app(), ["audit", "tail"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "downstream_start git" in result.stdout
    assert re.search(r"test-host\s+│\s+git__status\s+│\s+allowed\s+│\s+ok\s+│\s+12\.3", result.stdout)
    assert "git__[bold]commit" in result.stdout  # values are text, never markup


def test_audit_tail_says_so_when_there_are_no_events(audit_home: Path) -> None:
    result = CliRunner().invoke(_app(), ["audit", "tail"])
    assert result.exit_code == 0
    assert "no audit events yet" in result.stderr
