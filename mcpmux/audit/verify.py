"""`mcpmux audit verify`: check the chain over every file of the log, its MACs, head records and anchor.

`chain.py` describes the format. What a break means:

- a keyed line whose MAC does not match its content was **edited**;
- a `prev` that is not the previous line's link, with a gap in `seq`, means lines were **removed**
  (without the key nothing after them can be re-chained: every MAC would fail);
- a `seq` lower than one already seen, or a `prev` naming another line, means lines were **reordered**;
- a keyed file whose first line is not a head record lost its **first lines**; the newest rotation's
  head says from which `seq` the log must start, so whole oldest files deleted are found too;
- a log that ends before the seq the anchor records lost its **newest lines**; a missing anchor
  beside a keyed log is reported too;
- an unkeyed line after keyed ones could have been written by anyone who can write the file;
- a line that is not a JSON object was edited, unless the next event chains to it as written (or
  it is the very last line): then a writer was killed mid-write, which is reported as a note.

What it cannot find: anything done by someone who holds the key; the newest events cut together
with the anchor put back to an older copy of itself; the log deleted together with its anchor.
Unkeyed (version 1) lines, written before the key existed, show accidental damage only, except
that the first keyed line after them fixes every one of them (each chains to the one before) —
but not where they start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpmux.audit.chain import GENESIS, HEAD_EVENT, Anchor, anchor_path, decode_anchor, link_of, unseal
from mcpmux.audit.key import AuditKey
from mcpmux.audit.read import parse_line, read_lines

UNKEYED = "unkeyed"
_CRASH_LINES = 2
"""Keyed lines one append writes at most (a head and its event): a crash before the anchor update leaves these."""


@dataclass(frozen=True, slots=True)
class ChainProblem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class Segment:
    """A run of lines under one key (or none): where it starts and ends, and what keyed it."""

    key: str
    """The key's description, or `UNKEYED`."""
    start: str
    end: str
    first_seq: int | None
    last_seq: int | None
    events: int = 0

    def __str__(self) -> str:
        where = f"{self.start} to {self.end} (seq {self.first_seq} to {self.last_seq}, {self.events} events)"
        if self.key == UNKEYED:
            return f"{where}: unkeyed, a plain hash chain: anyone who can write the file could rewrite it"
        return f"{where}: keyed with {self.key}"


@dataclass(slots=True)
class VerifyReport:
    files: list[Path] = field(default_factory=lambda: list[Path]())
    events: int = 0
    problems: list[ChainProblem] = field(default_factory=lambda: list[ChainProblem]())
    notes: list[str] = field(default_factory=lambda: list[str]())
    segments: list[Segment] = field(default_factory=lambda: list[Segment]())
    anchor: str | None = None
    """What the anchor showed, when it showed no problem."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def keyed(self) -> bool:
        return any(s.key != UNKEYED for s in self.segments)


def verify(path: Path, keys: Sequence[AuditKey] = (), key_notes: Sequence[str] = ()) -> VerifyReport:
    """Check the log at `path` (rotated files included, oldest first) with `keys`, the keys available here.

    `key_notes`: why a key store could not be read, said with any segment whose key is missing.
    """
    anchor_file = anchor_path(path)
    try:
        raw_anchor: bytes | None = anchor_file.read_bytes()
    except FileNotFoundError:
        raw_anchor = None
    anchor = decode_anchor(raw_anchor, list(keys)) if raw_anchor is not None else None
    lines = list(read_lines(path))
    where: dict[str, tuple[Path, int]] = {}
    for file, number, raw in lines:
        where.setdefault(link_of(raw), (file, number))
    walk = _Walk(list(keys), list(key_notes), anchor if isinstance(anchor, Anchor) else None, where)
    for file, number, raw in lines:
        walk.line(file, number, raw)
    walk.finish(lines[0] if lines else None)
    report = walk.report
    if raw_anchor is None:
        if report.keyed:
            report.problems.append(
                ChainProblem(anchor_file, 0, "the anchor is missing: the newest events may have been removed with it")
            )
        elif keys and lines:  # a keyed mcpmux has run as this user: an all-unkeyed log is a downgrade or a leftover
            report.problems.append(
                ChainProblem(
                    lines[0][0],
                    lines[0][1],
                    f"no event is keyed, yet an audit key exists ({keys[0].description}): the log was rewritten "
                    "without the key and its anchor deleted, unless no mcpmux with keys has written to it yet",
                )
            )
    elif isinstance(anchor, str):
        report.problems.append(ChainProblem(anchor_file, 1, f"the anchor cannot be trusted: {anchor}"))
    elif anchor is not None:
        walk.check_anchor(anchor, anchor_file, lines[-1] if lines else None)
    return report


@dataclass(slots=True)
class _Walk:
    keys: list[AuditKey]
    key_notes: list[str]
    anchor: Anchor | None
    where: dict[str, tuple[Path, int]]
    """The first line with each link: to say where an out-of-order line belongs."""
    report: VerifyReport = field(default_factory=VerifyReport)
    segment: str | None = None
    """The current segment's key id, or `UNKEYED`; None before the first event."""
    key: AuditKey | None = None
    """The current segment's key, when it is available here."""
    prev_link: str | None = None
    prev_at: tuple[Path, int] | None = None
    last_seq: int = 0
    max_seq: int = 0
    first_seq: int | None = None
    oldest_seq: int | None = None
    """Where the newest rotation says the log starts."""
    keyed_seen: bool = False
    anchored: tuple[Path, int, str] | None = None
    after_anchor: int = 0
    torn: ChainProblem | None = None
    """A line that is not JSON, judged by whether the next event chains to it."""

    def line(self, file: Path, number: int, raw: bytes) -> None:
        report = self.report
        first_of_file = not report.files or report.files[-1] != file
        if first_of_file:
            report.files.append(file)
        here = link_of(raw)
        event = parse_line(raw)
        if self.torn is not None:
            if event is not None and event.get("prev") == self.prev_link:  # the next writer chained to it as written
                report.notes.append(str(self.torn))
            else:
                report.problems.append(self.torn)
            self.torn = None
        if event is None:
            self.torn = ChainProblem(
                file, number, "not a JSON object: edited, or cut short by a writer killed mid-write"
            )
            self.prev_link, self.prev_at = here, (file, number)
            return
        report.events += 1
        prev, seq = event.get("prev"), event.get("seq")
        sealed = unseal(raw)
        if sealed is None:
            self._unkeyed(file, number, seq)
        else:
            self._keyed(file, number, sealed, event, first_of_file)
        if not isinstance(prev, str) or not isinstance(seq, int):
            self._problem(file, number, "no `prev`/`seq`: not written by a chained log")
        elif self.prev_link is None:
            self._start(file, number, event, prev, seq, sealed is not None)
        elif prev != self.prev_link:
            self._problem(file, number, self._explain(prev, seq, sealed is not None))
        if isinstance(seq, int):
            self.last_seq, self.max_seq = seq, max(self.max_seq, seq)
            self.first_seq = seq if self.first_seq is None else self.first_seq
            self._count(file, number, seq, here, sealed is not None)
        self.prev_link, self.prev_at = here, (file, number)

    def _keyed(
        self, file: Path, number: int, sealed: tuple[bytes, str], event: dict[str, Any], first_of_file: bool
    ) -> None:
        body, mac = sealed
        if event.get("event") == HEAD_EVENT:
            key_id = str(event.get("key_id"))
            if key_id != self.segment:
                self._begin(file, number, key_id, next((k for k in self.keys if k.id == key_id), None), event)
            if event.get("reason") == "rotated" and isinstance(oldest := event.get("oldest_seq"), int):
                self.oldest_seq = oldest
        else:
            if first_of_file:
                what = "the log" if self.prev_link is None else f"{file.name}, a file rotation started,"
                self._problem(file, number, f"{what} does not start with its head record: its first lines were removed")
            if self.segment is None or self.segment == UNKEYED:  # its head is gone: find its key by its MAC
                key = next((k for k in self.keys if k.mac(body) == mac), None)
                self._begin(file, number, key.id if key else "?", key, event)
        if self.key is not None and self.key.mac(body) != mac:
            self._problem(file, number, "edited: its MAC does not match its content")
        self.keyed_seen = True

    def _begin(self, file: Path, number: int, key_id: str, key: AuditKey | None, event: dict[str, Any]) -> None:
        self.segment, self.key = key_id, key
        if key is not None:
            description = key.description
        else:
            source = event.get("key")
            description = f"a key not available here ({source}, id {key_id})" if source else "a key not available here"
            why = "; ".join(self.key_notes) or "run `mcpmux audit verify` where that key can be read"
            self._problem(file, number, f"cannot check the events from here on: written with {description}: {why}")
        self._segment(file, number, description, event.get("seq"))

    def _unkeyed(self, file: Path, number: int, seq: object) -> None:
        if self.segment != UNKEYED:
            if self.keyed_seen:
                self._problem(
                    file,
                    number,
                    "not keyed, after keyed events: anyone who can write the file could have written it "
                    "(an mcpmux that could not get its key also writes such lines, and says so on stderr)",
                )
            self.segment, self.key = UNKEYED, None
            self._segment(file, number, UNKEYED, seq)

    def _segment(self, file: Path, number: int, key: str, seq: object) -> None:
        at = f"{file.name}:{number}"
        first = seq if isinstance(seq, int) else None
        self.report.segments.append(Segment(key, at, at, first, first))

    def _count(self, file: Path, number: int, seq: int, link: str, keyed: bool) -> None:
        if self.report.segments:
            segment = self.report.segments[-1]
            segment.end, segment.last_seq, segment.events = f"{file.name}:{number}", seq, segment.events + 1
        if self.anchor is not None and keyed:
            if seq == self.anchor.seq:
                self.anchored, self.after_anchor = (file, number, link), 0
            elif seq > self.anchor.seq:
                self.after_anchor += 1

    def _start(self, file: Path, number: int, event: dict[str, Any], prev: str, seq: int, keyed: bool) -> None:
        """The first event of the whole log: its true start, or where rotation (or a cut) left it."""
        if prev == GENESIS:
            return
        if not keyed:
            self.report.notes.append(
                f"the chain starts at {file}:{number} (seq {seq}), unkeyed: older files were rotated away, "
                "or its first lines were removed (an unkeyed chain cannot tell which)"
            )
        elif event.get("event") == HEAD_EVENT and event.get("reason") == "rotated":
            self.report.notes.append(f"the log starts at {file}:{number} (seq {seq}): older files were rotated away")
        elif event.get("event") == HEAD_EVENT:
            self._problem(file, number, f"the log starts mid-chain at seq {seq}: the lines before it were removed")

    def finish(self, first: tuple[Path, int, bytes] | None) -> None:
        if self.torn is not None:  # the very last line: nothing records its link, as for any last line
            self.report.notes.append(str(self.torn))
        if first and self.oldest_seq is not None and self.first_seq is not None and self.first_seq > self.oldest_seq:
            self._problem(
                first[0],
                first[1],
                f"events from seq {self.oldest_seq} to {self.first_seq - 1} are missing: the newest rotation kept "
                "them, so rotated files (or the first lines of the oldest one) were deleted",
            )

    def check_anchor(self, anchor: Anchor, anchor_file: Path, last: tuple[Path, int, bytes] | None) -> None:
        if anchor.seq > self.max_seq:
            missing = anchor.seq - self.max_seq
            self._problem(
                last[0] if last else anchor_file,
                last[1] if last else 1,
                f"the log ends at seq {self.max_seq} but the anchor records seq {anchor.seq}: "
                f"the newest {missing} event{'s were' if missing != 1 else ' was'} removed",
            )
        elif self.anchored is None:
            self._problem(anchor_file, 1, f"the event the anchor records (seq {anchor.seq}) is not in the log")
        elif self.anchored[2] != anchor.mac:
            file, number, _ = self.anchored
            self._problem(file, number, f"this is not the event the anchor records as seq {anchor.seq}")
        elif self.after_anchor > _CRASH_LINES:
            self._problem(
                anchor_file,
                1,
                f"{self.after_anchor} keyed events come after the one the anchor records (seq {anchor.seq}): "
                "the anchor was replaced by an older copy, or could not be written",
            )
        elif self.after_anchor:
            self.report.notes.append(
                f"the anchor records seq {anchor.seq}, {self.after_anchor} event(s) before the end: "
                "a writer stopped between appending and updating the anchor"
            )
        else:
            self.report.anchor = f"the anchor matches the newest event (seq {anchor.seq})"

    def _problem(self, file: Path, number: int, message: str) -> None:
        self.report.problems.append(ChainProblem(file, number, message))

    def _explain(self, prev: str, seq: int, keyed: bool) -> str:
        if seq <= self.max_seq:
            return f"out of order: seq {seq} comes after seq {self.max_seq}"
        if prev in self.where:
            file, number = self.where[prev]
            return f"out of order: it follows {file.name}:{number} in the chain, not the line before it"
        if seq == self.last_seq + 1 and self.prev_at is not None:
            before = f"{self.prev_at[0].name}:{self.prev_at[1]}"
            if keyed:
                return f"the line before it ({before}) is not the one it was chained to"
            return f"the line before it ({before}) was edited: its hash is not the one recorded here"
        missing, last = seq - self.last_seq - 1, self.last_seq
        return f"{missing} line{'s' if missing != 1 else ''} removed before this one (seq {last} is followed by {seq})"
