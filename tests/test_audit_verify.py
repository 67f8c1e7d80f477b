from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from mcpmux.audit.log import AuditLog
from mcpmux.audit.verify import verify
from mcpmux.cli import audit_cmd


def _log(path: Path, n: int = 6, rotate_bytes: int = 0, keep: int = 10) -> list[bytes]:
    with AuditLog(path, rotate_bytes=rotate_bytes, keep=keep) as log:
        for i in range(n):
            log.write({"event": "tool_call", "exposed": f"t__{i}", "outcome": "ok"})
    return path.read_bytes().splitlines(keepends=True)


def _edit(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"outcome":"ok"', b'"outcome":"denied"')
    return lines


def _remove(lines: list[bytes]) -> list[bytes]:
    return lines[:2] + lines[4:]


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _cut(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2][:40] + b"\n"
    return lines


@pytest.mark.parametrize(
    ("tamper", "line", "words"),
    [
        (_edit, 4, "the line before it (audit.jsonl:3) was edited"),
        (_remove, 3, "2 lines removed before this one"),
        (_swap, 3, "out of order"),
        (_cut, 3, "not a JSON object"),
    ],
    ids=["edited", "removed", "reordered", "cut short"],
)
def test_verify_reports_each_tampered_line_with_its_number_and_what_is_wrong(
    tmp_path: Path, tamper: Callable[[list[bytes]], list[bytes]], line: int, words: str
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(tamper(_log(path))))
    report = verify(path)
    assert not report.ok
    first = report.problems[0]
    assert (first.file, first.line) == (path, line)
    assert words in first.message, [str(p) for p in report.problems]


def test_verify_of_an_edit_names_the_edited_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(_edit(_log(path))))
    assert [(p.line, p.message) for p in verify(path).problems] == [
        (4, "the line before it (audit.jsonl:3) was edited: its hash is not the one recorded here")
    ]


def test_verify_finds_a_line_removed_at_a_rotation_boundary(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 40, rotate_bytes=1500, keep=50)
    rotated = path.with_name("audit.1.jsonl")
    rotated.write_bytes(b"".join(rotated.read_bytes().splitlines(keepends=True)[:-1]))
    problems = verify(path).problems
    assert [(p.file, p.line) for p in problems] == [(path, 1)]
    assert "1 line removed" in problems[0].message


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _log(path, 50, rotate_bytes=2000, keep=100)
    report = verify(path)
    assert report.ok and report.events == 50 and report.notes == [] and len(report.files) > 1


def _app() -> typer.Typer:
    app = typer.Typer()
    audit_cmd.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `audit` a group
    return app


@pytest.mark.usefixtures("file_keyring")  # an empty keyring of its own: a key elsewhere would flag this unkeyed log
def test_audit_verify_exits_1_and_reports_problems_as_json(mcpmux_home: Path) -> None:
    path = mcpmux_home / "state" / "audit.jsonl"
    _log(path)
    ok = CliRunner().invoke(_app(), ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "6 events in 1 file(s)" in ok.stderr and "chain intact" in ok.stderr
    path.write_bytes(b"".join(_remove(path.read_bytes().splitlines(keepends=True))))
    bad = CliRunner().invoke(_app(), ["audit", "verify", "--json"])
    assert bad.exit_code == 1
    body = orjson.loads(bad.stdout)
    assert body["ok"] is False
    assert body["problems"][0]["line"] == 3 and "removed" in body["problems"][0]["message"]
