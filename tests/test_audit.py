from __future__ import annotations

import os
import re
import signal
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

from mcpmux.audit.chain import HEAD_EVENT, anchor_path, link_of
from mcpmux.audit.log import GENESIS, AuditLog, line_hash
from mcpmux.audit.read import ReadStats, log_files, read_events, tail_events, tail_lines
from mcpmux.audit.verify import verify
from mcpmux.errors import AuditError, MCPMuxError
from tests.audit_helpers import KEY


def _call(exposed: str, **extra: Any) -> dict[str, Any]:
    return {"event": "tool_call", "host": "test-host", "exposed": exposed, "decision": "allowed", **extra}


def test_without_a_key_the_log_appends_the_version_1_sha256_chain_as_before_keys(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    with AuditLog(path) as log:
        log.write(_call("git__status", duration_ms=1.5))
        log.write({"event": "serve_stop", "ts": "2025-01-01T00:00:00.000Z"})
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert (first["v"], first["seq"], first["prev"]) == (1, 1, GENESIS)
    assert re.fullmatch(r"[0-9a-f]{32}", first["id"])
    assert first["exposed"] == "git__status"
    assert second["ts"] == "2025-01-01T00:00:00.000Z"
    assert (second["seq"], second["prev"]) == (2, line_hash(lines[0]))
    assert first["id"] < second["id"] or first["id"][:12] == second["id"][:12]  # time-ordered
    assert not anchor_path(path).exists()


def test_a_keyed_log_appends_version_2_lines_after_a_head_and_keeps_an_anchor(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    with AuditLog(path, key=KEY) as log:
        written = log.write(_call("git__status", duration_ms=1.5, seq=99, prev="forged", mac="forged"))
    head, event = (orjson.loads(line) for line in path.read_bytes().splitlines())
    assert (head["v"], head["event"], head["seq"], head["prev"]) == (2, HEAD_EVENT, 1, GENESIS)
    assert (event["v"], event["seq"], event["prev"], event["exposed"]) == (2, 2, head["mac"], "git__status")
    assert written == event  # the record handed to observers is the line written, MAC included
    assert stat.S_IMODE(anchor_path(path).stat().st_mode) == 0o600
    assert verify(path, [KEY]).anchor == "the anchor matches the newest event (seq 2)"


def test_bound_fields_fill_every_event_but_the_event_own_values_win(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        log.bind(serve="s1", profile="work", profile_hash="ab" * 32, host="cursor")
        log.write(_call("a__b", host=None))
        log.write(_call("a__b", host="claude-code"))
        log.bind(host_version="1.2")
        log.write({"event": "serve_stop"})
    events = list(read_events(tmp_path / "audit.jsonl"))
    assert [e["host"] for e in events] == ["cursor", "claude-code", "cursor"]
    assert {e["serve"] for e in events} == {"s1"}
    assert events[2]["host_version"] == "1.2"


def test_audit_log_is_private_to_its_owner_and_created_on_the_first_event(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    log = AuditLog(path)
    log.close()
    assert not path.exists()
    with AuditLog(path) as log:
        log.write(_call("x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_args_digest_is_stable_across_key_order_and_hides_the_arguments() -> None:
    a = KEY.args_digest({"path": "/etc/passwd", "opts": {"b": 1, "a": [1, 2]}})
    b = KEY.args_digest({"opts": {"a": [1, 2], "b": 1}, "path": "/etc/passwd"})
    assert a == b
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", a)
    assert KEY.args_digest({"path": "/etc/shadow"}) != a
    assert KEY.args_digest(None) == "hmac-sha256:5f7f0a98b5eaf886d0f1c07c74e921e01e075093045a0f9b74c02fb610cded1d"


# ---- rotation ---------------------------------------------------------------------------------------------------


def test_rotation_keeps_n_files_and_the_chain_continues_across_them(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key=KEY, rotate_bytes=2000, keep=3) as log:
        for i in range(100):
            log.write(_call("t__x", i=i))
    files = log_files(path)
    assert [f.name for f in files] == ["audit.3.jsonl", "audit.2.jsonl", "audit.1.jsonl", "audit.jsonl"]
    seen = [e["i"] for e in read_events(path) if e["event"] != HEAD_EVENT]
    assert seen == list(range(seen[0], 100))  # the oldest were dropped, the rest in order
    first_of_live = orjson.loads(path.read_bytes().splitlines()[0])
    assert first_of_live["prev"] == link_of(files[-2].read_bytes().splitlines()[-1])
    report = verify(path, [KEY])
    assert report.ok, report.problems
    assert report.events == len(seen) + len(files)  # a head starts each file
    assert report.notes  # the chain starts mid-way: older files were rotated away


def test_tail_reads_back_across_rotated_files_and_read_blocks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, rotate_bytes=100_000, keep=20) as log:
        for i in range(3000):
            log.write({"i": i, "pad": "z" * (i % 50)})
    with path.open("ab") as f:
        f.write(b"garbage\n")
    assert len(log_files(path)) > 3
    assert [e["i"] for e in tail_events(path, 1000)] == list(range(2000, 3000))
    assert [e["i"] for e in tail_events(path, 5000)] == list(range(3000))
    assert tail_lines(path, 1) == [path.read_bytes().splitlines()[-2]]
    assert tail_lines(tmp_path / "absent.jsonl", 5) == []


def test_read_events_skips_and_counts_unparseable_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"event":"a"}\nnot json\n[1,2]\n\n{"event":"b"}\n{"event":"cut sho')
    stats = ReadStats()
    assert [e["event"] for e in read_events(path, stats)] == ["a", "b"]
    assert (stats.events, stats.skipped) == (2, 3)
    assert list(read_events(tmp_path / "absent.jsonl")) == []


def test_a_line_cut_short_by_a_crash_stays_on_its_own_line_and_verify_notes_it_as_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path, key=KEY) as log:
        log.write(_call("a"))
    with path.open("ab") as f:
        f.write(b'{"event":"tool_call","cut')  # what a writer killed inside a short write would leave
    with AuditLog(path, key=KEY) as log:
        log.write(_call("b"))
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4  # head, a, the cut line, b: no new head, the segment goes on
    assert orjson.loads(lines[3])["seq"] == 3
    report = verify(path, [KEY])
    assert report.ok, report.problems  # the next event chained to the cut line as written: a crash, not an edit
    assert [note for note in report.notes if ":3: " in note and "cut short" in note]


# ---- failure ----------------------------------------------------------------------------------------------------


def _full_disk(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    return path


def test_a_required_audit_log_raises_audit_error_naming_the_file_and_the_fix(tmp_path: Path) -> None:
    path = _full_disk(tmp_path)
    log = AuditLog(path, required=True)
    with pytest.raises(AuditError) as caught:
        log.write(_call("x"))
    assert isinstance(caught.value, MCPMuxError)
    assert caught.value.path == path
    assert str(path) in str(caught.value) and "free disk space" in str(caught.value)
    assert log.failure is caught.value
    log.close()


def test_an_optional_audit_log_reports_a_failure_once_on_stderr_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(_full_disk(tmp_path))
    assert log.write(_call("x")) is None
    assert log.write(_call("y")) is None
    assert log.failure is not None
    assert [r.levelname for r in caplog.records if "audit log" in r.getMessage()] == ["ERROR"]
    log.close()


def test_observers_see_each_written_event_and_cannot_break_the_log(tmp_path: Path) -> None:
    seen: list[Any] = []

    def broken(event: Any) -> None:
        raise RuntimeError("observer bug")

    with AuditLog(tmp_path / "audit.jsonl", key=KEY, observers=[broken, seen.append]) as log:
        written = log.write(_call("x"))
    assert seen == [written]  # not the head record: the log writes that for itself
    assert written is not None and written["seq"] == 2


# ---- concurrency and crashes ------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mcpmux.audit.key import AuditKey
    from mcpmux.audit.log import AuditLog

    path, writer, count, rotate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    key = AuditKey(bytes.fromhex(sys.argv[5]), "file", "the test key")
    log = AuditLog(Path(path), key=key, rotate_bytes=rotate, keep=1000)
    i = 0
    while count < 0 or i < count:
        log.write({"event": "tool_call", "writer": writer, "i": i, "pad": "x" * (i % 7 * 1500)})
        print(i, flush=True)  # after the write returned: this event is complete
        i += 1
    log.close()
    """
)


def _writer(path: Path, name: str, count: int, rotate: int = 0) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", WRITER, str(path), name, str(count), str(rotate), KEY.secret.hex()]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("rotate_bytes", [0, 200_000], ids=["one file", "rotating"])
def test_concurrent_writer_processes_lose_no_event_and_keep_one_valid_chain(tmp_path: Path, rotate_bytes: int) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [_writer(path, f"w{n}", 500, rotate_bytes) for n in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    stats = ReadStats()
    seen = Counter((event["writer"], event["i"]) for event in read_events(path, stats) if "writer" in event)
    assert stats.skipped == 0
    assert len(seen) == 2000
    assert set(seen.values()) == {1}
    seqs = [e["seq"] for e in read_events(path)]
    assert seqs == list(range(1, len(seqs) + 1))
    report = verify(path, [KEY])
    assert report.ok, report.problems[:5]
    assert [s.key for s in report.segments] == [KEY.description]  # one key: one segment, across every file
    assert (len(report.files) > 1) == bool(rotate_bytes)


def test_concurrent_threads_share_one_log_without_breaking_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, key=KEY)

    def write(writer: int) -> None:
        for i in range(300):
            log.write({"writer": writer, "i": i, "pad": "y" * (i % 5 * 2000)})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    log.close()
    assert len({(e["writer"], e["i"]) for e in read_events(path) if "writer" in e}) == 2400
    assert verify(path, [KEY]).ok


def test_sigkill_during_load_loses_no_completed_event_and_the_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    victim = _writer(path, "victim", -1)
    steady = [_writer(path, f"w{n}", 300) for n in range(2)]
    assert victim.stdout is not None
    completed: list[int] = []
    for raw in victim.stdout:  # wait until it is mid-load, then kill it without warning
        completed.append(int(raw))
        if len(completed) == 200:
            os.kill(victim.pid, signal.SIGKILL)
            break
    completed += [int(raw) for raw in victim.stdout.read().split()]  # reported before the kill landed
    victim.wait(timeout=30)
    victim.stdout.close()
    assert victim.stderr is not None
    victim.stderr.close()
    for proc in steady:
        proc.communicate(timeout=120)
    # A survivor writes after the kill, so the victim's last line is chained to and checked.
    with AuditLog(path, key=KEY) as log:
        log.write({"event": "after_kill"})
    victim_events = {e["i"] for e in read_events(path) if e.get("writer") == "victim"}
    assert set(completed) <= victim_events
    report = verify(path, [KEY])
    assert report.ok, report.problems[:5]
    assert report.events == len(victim_events) + 600 + 1 + 1  # and the head
