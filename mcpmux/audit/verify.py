"""`mcpmux audit verify`: walk the hash chain over every file of the log and report each break.

Each event's `prev` is the sha256 of the previous line's exact bytes, and `seq` counts events, so:

- a line whose `prev` is not the previous line's hash, while `seq` follows on, means that previous
  line was **edited**;
- a gap in `seq` means lines were **removed**;
- a `seq` lower than one already seen, or a `prev` naming another line of the log, means lines were
  **reordered**;
- a line that is not a JSON object was edited, unless the next event chains to it as written (or it
  is the very last line): then a writer was killed mid-write (SIGKILL can cut a write at a page
  boundary), which is reported as a note.

What a chain cannot show: the last lines of the newest file being removed or edited (nothing after
them records their hash), and files deleted whole (retention deletes the oldest; a chain that does
not start at the beginning is reported as a note, not a problem).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from mcpmux.audit.log import GENESIS
from mcpmux.audit.read import parse_line, read_lines


@dataclass(frozen=True, slots=True)
class ChainProblem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    files: list[Path] = field(default_factory=lambda: list[Path]())
    events: int = 0
    problems: list[ChainProblem] = field(default_factory=lambda: list[ChainProblem]())
    notes: list[str] = field(default_factory=lambda: list[str]())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: Path) -> VerifyReport:
    """Check the chain of the log at `path` (rotated files included, oldest first)."""
    report = VerifyReport()
    lines = list(read_lines(path))
    where: dict[str, tuple[Path, int]] = {}
    for file, number, raw in lines:
        where.setdefault(hashlib.sha256(raw).hexdigest(), (file, number))
    prev_hash: str | None = None
    prev_at: tuple[Path, int] | None = None
    last_seq = 0
    max_seq = 0
    torn: ChainProblem | None = None
    """A line that is not JSON, judged by whether the next event chains to it."""
    for file, number, raw in lines:
        if not report.files or report.files[-1] != file:
            report.files.append(file)
        here = hashlib.sha256(raw).hexdigest()
        event = parse_line(raw)
        if torn is not None:
            if event is not None and event.get("prev") == prev_hash:  # the next writer chained to it as written
                report.notes.append(str(torn))
            else:
                report.problems.append(torn)
            torn = None
        if event is None:
            torn = ChainProblem(file, number, "not a JSON object: edited, or cut short by a writer killed mid-write")
            prev_hash, prev_at = here, (file, number)
            continue
        report.events += 1
        prev, seq = event.get("prev"), event.get("seq")
        if not isinstance(prev, str) or not isinstance(seq, int):
            report.problems.append(ChainProblem(file, number, "no `prev`/`seq`: not written by a chained log"))
        elif prev_hash is None:
            if prev != GENESIS:
                report.notes.append(f"the chain starts at {file}:{number} (seq {seq}); older files were rotated away")
        elif prev != prev_hash:
            report.problems.append(ChainProblem(file, number, _explain(prev, seq, last_seq, max_seq, prev_at, where)))
        if isinstance(seq, int):
            last_seq, max_seq = seq, max(max_seq, seq)
        prev_hash, prev_at = here, (file, number)
    if torn is not None:  # the very last line: nothing records its hash, as for any last line
        report.notes.append(str(torn))
    return report


def _explain(
    prev: str,
    seq: int,
    last_seq: int,
    max_seq: int,
    prev_at: tuple[Path, int] | None,
    where: dict[str, tuple[Path, int]],
) -> str:
    if seq <= max_seq:
        return f"out of order: seq {seq} comes after seq {max_seq}"
    if prev in where:
        file, number = where[prev]
        return f"out of order: it follows {file.name}:{number} in the chain, not the line before it"
    if seq == last_seq + 1 and prev_at is not None:
        return f"the line before it ({prev_at[0].name}:{prev_at[1]}) was edited: its hash is not the one recorded here"
    missing = seq - last_seq - 1
    return f"{missing} line{'s' if missing != 1 else ''} removed before this one (seq {last_seq} is followed by {seq})"
