"""The keyed chain against an attacker who can edit the log and its anchor but cannot read the key.

Table tests over real `AuditLog` files and `verify`, no subprocess; `tests/test_audit_verify.py`
covers unkeyed (version 1) logs, `tests/test_audit_verify_e2e.py` the same attacks through the CLI.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from mcpmux.audit.chain import GENESIS, HEAD_EVENT, anchor_path, link_of, seal, unseal
from mcpmux.audit.log import AuditLog
from mcpmux.audit.read import log_files, read_events
from mcpmux.audit.verify import UNKEYED, verify
from tests.audit_helpers import KEY, OTHER_KEY, rechain, write_log

Lines = list[bytes]

# ---- the format -------------------------------------------------------------------------------------------------


def test_a_new_keyed_log_starts_with_a_head_record_and_each_line_carries_its_own_mac(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head, first, second = (orjson.loads(raw) for raw in write_log(path, 2))
    assert (head["event"], head["reason"], head["seq"], head["prev"]) == (HEAD_EVENT, "new", 1, GENESIS)
    assert (head["key"], head["key_id"], head["v"]) == ("file", KEY.id, 2)
    assert (first["seq"], first["prev"]) == (2, head["mac"])
    assert (second["seq"], second["prev"]) == (3, first["mac"])
    for raw in path.read_bytes().splitlines():
        sealed = unseal(raw)
        assert sealed is not None and KEY.mac(sealed[0]) == sealed[1]
        assert link_of(raw) == sealed[1]


def test_seal_and_unseal_are_inverse_and_the_mac_is_the_last_member() -> None:
    body = orjson.dumps({"v": 2, "event": "x", "mac_like": "a" * 64, "seq": 1, "prev": GENESIS})
    line, mac = seal(body, KEY)
    assert line.endswith(b',"mac":"' + mac.encode() + b'"}') and orjson.loads(line)["mac"] == mac
    assert unseal(line) == (body, mac)
    assert unseal(body) is None  # an unkeyed line: its link is its sha256
    assert seal(body, OTHER_KEY)[1] != mac


# ---- attacks on a log that was never rotated ---------------------------------------------------------------------
# The log: line 1 the head (seq 1), lines 2-7 six events (seq 2-7).


def _edit(lines: Lines) -> Lines:
    lines[3] = lines[3].replace(b'"outcome":"ok"', b'"outcome":"denied"')
    return lines


def _remove(lines: Lines) -> Lines:
    return lines[:3] + lines[5:]


def _remove_and_rechain(lines: Lines) -> Lines:
    return rechain(lines[:3] + lines[4:])


def _remove_and_rewrite_unkeyed(lines: Lines) -> Lines:
    return rechain(lines[:3] + lines[4:], keep_macs=False)


def _swap(lines: Lines) -> Lines:
    lines[3], lines[4] = lines[4], lines[3]
    return lines


def _duplicate(lines: Lines) -> Lines:
    return [*lines[:4], lines[3], *lines[4:]]


def _cut_head(lines: Lines) -> Lines:
    return lines[2:]


def _cut_head_and_rechain(lines: Lines) -> Lines:
    return rechain(lines[2:], start=(1, GENESIS))


def _cut_tail(lines: Lines) -> Lines:
    return lines[:-2]


def _cut_short(lines: Lines) -> Lines:
    lines[3] = lines[3][:40] + b"\n"
    return lines


ATTACKS: list[tuple[Callable[[Lines], Lines], int, str]] = [
    (_edit, 4, "edited: its MAC does not match its content"),
    (_remove, 4, "2 lines removed before this one (seq 3 is followed by 6)"),
    (_remove_and_rechain, 4, "edited: its MAC does not match its content"),
    (_remove_and_rewrite_unkeyed, 6, "the log ends at seq 6 but the anchor records seq 7"),
    (_swap, 4, "out of order"),
    (_duplicate, 5, "out of order: seq 4 comes after seq 4"),
    (_cut_head, 1, "the log does not start with its head record: its first lines were removed"),
    (_cut_head_and_rechain, 1, "the log does not start with its head record"),
    (_cut_tail, 5, "the log ends at seq 5 but the anchor records seq 7: the newest 2 events were removed"),
    (_cut_short, 4, "not a JSON object"),
]


@pytest.mark.parametrize(
    ("tamper", "line", "words"),
    ATTACKS,
    ids=[
        "edited",
        "removed",
        "removed, re-chained",
        "removed, rewritten unkeyed",
        "reordered",
        "duplicated",
        "head cut",
        "head cut, re-chained",
        "tail cut",
        "cut short",
    ],
)
def test_verify_finds_each_tampering_without_the_key_and_names_the_line(
    tmp_path: Path, tamper: Callable[[Lines], Lines], line: int, words: str
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(tamper(write_log(path))))
    report = verify(path, [KEY])
    found = [(p.file, p.line) for p in report.problems if words in p.message]
    assert found[:1] == [(path, line)], [str(p) for p in report.problems]


def test_an_untouched_keyed_log_verifies_as_one_keyed_segment_matching_its_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    report = verify(path, [KEY])
    assert report.ok and report.notes == [] and report.events == 7
    assert [(s.key, s.start, s.end, s.first_seq, s.last_seq) for s in report.segments] == [
        (KEY.description, "audit.jsonl:1", "audit.jsonl:7", 1, 7)
    ]
    assert report.anchor == "the anchor matches the newest event (seq 7)"


# ---- the anchor -------------------------------------------------------------------------------------------------


def test_a_deleted_anchor_is_a_problem_since_the_newest_events_may_have_gone_with_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    anchor_path(path).unlink()
    assert [p.message for p in verify(path, [KEY]).problems] == [
        "the anchor is missing: the newest events may have been removed with it"
    ]


def test_an_edited_anchor_cannot_be_trusted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    anchor = anchor_path(path)
    anchor.write_bytes(anchor.read_bytes().replace(b'"seq":7', b'"seq":5'))
    assert [p.message for p in verify(path, [KEY]).problems] == [
        "the anchor cannot be trusted: its MAC does not match its content: it was edited"
    ]


def test_an_anchor_put_back_to_an_older_copy_is_found_once_more_than_one_append_follows_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    old = anchor_path(path).read_bytes()
    write_log(path, 3)
    anchor_path(path).write_bytes(old)
    problems = verify(path, [KEY]).problems
    assert [p.message for p in problems] == [
        "3 keyed events come after the one the anchor records (seq 3): "
        "the anchor was replaced by an older copy, or could not be written"
    ]


def test_one_append_without_its_anchor_update_is_a_crash_and_only_noted(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    old = anchor_path(path).read_bytes()
    write_log(path, 1)  # killed between the append and the anchor's pwrite
    anchor_path(path).write_bytes(old)
    report = verify(path, [KEY])
    assert report.ok, report.problems
    assert any("a writer stopped between appending and updating the anchor" in n for n in report.notes)


def test_a_tail_cut_back_to_an_older_copy_of_the_anchor_is_what_verify_cannot_see(tmp_path: Path) -> None:
    """A documented limit (README, "Tamper evidence"): whoever kept an old anchor can cut the log back to it."""
    path = tmp_path / "audit.jsonl"
    kept = write_log(path, 3)
    old = anchor_path(path).read_bytes()
    write_log(path, 3)
    path.write_bytes(b"".join(kept))
    anchor_path(path).write_bytes(old)
    assert verify(path, [KEY]).ok


# ---- rotation ---------------------------------------------------------------------------------------------------


def _rotated(path: Path, n: int = 60) -> list[Path]:
    write_log(path, n, rotate_bytes=1500, keep=50)
    files = log_files(path)
    assert len(files) > 3
    return files


def test_each_file_begun_by_rotation_starts_with_a_head_chained_to_the_file_before(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    files = _rotated(path)
    for older, newer in itertools.pairwise(files):
        head = orjson.loads(newer.read_bytes().splitlines()[0])
        assert (head["event"], head["reason"], head["oldest_seq"]) == (HEAD_EVENT, "rotated", 1)
        assert head["prev"] == link_of(older.read_bytes().splitlines()[-1])
    report = verify(path, [KEY])
    assert report.ok and report.notes == [] and len(report.segments) == 1


def test_the_oldest_file_deleted_whole_is_found_from_the_newest_rotation_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    files = _rotated(path)
    files[0].unlink()
    problems = [p for p in verify(path, [KEY]).problems if "are missing" in p.message]
    assert [(p.file, p.line) for p in problems] == [(files[1], 1)]
    assert problems[0].message.startswith("events from seq 1 to ")


def test_the_head_of_the_oldest_rotated_file_cut_is_found(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    files = _rotated(path)
    files[0].write_bytes(b"".join(files[0].read_bytes().splitlines(keepends=True)[2:]))
    messages = [p.message for p in verify(path, [KEY]).problems]
    assert "the log does not start with its head record: its first lines were removed" in messages
    assert any(m.startswith("events from seq 1 to 2 are missing") for m in messages)


def test_retention_dropping_the_oldest_files_is_a_note_not_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 60, rotate_bytes=1500, keep=2)
    report = verify(path, [KEY])
    assert report.ok, report.problems
    assert [n for n in report.notes if "older files were rotated away" in n]


# ---- keys, and logs from before keys ----------------------------------------------------------------------------


def test_a_log_whose_key_is_not_available_is_a_refusal_not_a_pass(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    report = verify(path, [OTHER_KEY], ["the OS keyring cannot be read here: locked"])
    assert not report.ok
    assert report.problems[0].line == 1
    assert f"a key not available here (file, id {KEY.id})" in report.problems[0].message
    assert "locked" in report.problems[0].message


def test_a_new_key_starts_a_segment_and_verify_names_each_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2, key=KEY)
    write_log(path, 2, key=OTHER_KEY)
    heads = [e for e in read_events(path) if e["event"] == HEAD_EVENT]
    assert [(h["reason"], h["key_id"]) for h in heads] == [("new", KEY.id), ("key", OTHER_KEY.id)]
    report = verify(path, [KEY, OTHER_KEY])
    assert report.ok, report.problems
    assert [(s.key, s.start, s.end) for s in report.segments] == [
        (KEY.description, "audit.jsonl:1", "audit.jsonl:3"),
        (OTHER_KEY.description, "audit.jsonl:4", "audit.jsonl:6"),
    ]


def test_an_old_unkeyed_log_still_verifies_and_the_first_keyed_line_fixes_every_line_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    old = write_log(path, 3, key=None)
    write_log(path, 2)
    report = verify(path, [KEY])
    assert report.ok, report.problems
    assert [(s.key, s.start, s.first_seq) for s in report.segments] == [
        (UNKEYED, "audit.jsonl:1", 1),
        (KEY.description, "audit.jsonl:4", 4),
    ]
    # Re-hashing the unkeyed lines after an edit no longer passes: the keyed head records the last one's hash.
    lines = path.read_bytes().splitlines(keepends=True)
    edited = rechain([old[0], old[1].replace(b'"outcome":"ok"', b'"outcome":"denied"'), old[2]])
    path.write_bytes(b"".join(edited + lines[3:]))
    assert [p.line for p in verify(path, [KEY]).problems] == [4]


def test_a_log_rewritten_whole_without_keys_and_its_anchor_deleted_is_a_problem_where_a_key_exists(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(rechain(write_log(path)[2:], keep_macs=False, start=(1, GENESIS))))
    anchor_path(path).unlink()
    assert verify(path).ok  # no key here: indistinguishable from a log written before keys
    (problem,) = verify(path, [KEY]).problems
    assert problem.line == 1 and problem.message.startswith("no event is keyed, yet an audit key exists")


def test_unkeyed_lines_after_keyed_ones_are_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    write_log(path, 1, key=None)
    messages = [p.message for p in verify(path, [KEY]).problems]
    assert messages[0].startswith("not keyed, after keyed events: anyone who can write the file")


def test_a_writer_that_finds_another_writers_rotation_starts_its_file_with_a_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    shutil.move(path, path.with_name("audit.1.jsonl"))  # rotated by another process that then died
    with AuditLog(path, key=KEY) as log:
        log.write({"event": "after"})
    head = orjson.loads(path.read_bytes().splitlines()[0])
    assert (head["event"], head["reason"], head["oldest_seq"]) == (HEAD_EVENT, "rotated", 1)
    assert verify(path, [KEY]).ok
