"""Redaction: secret values, however text, JSON or URL writers escaped them, replaced by `[redacted:NAME]`."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, AnyStr, cast

import orjson

from mcpmux.secrets.forms import LONGEST_SPELLING, Form, anchor_regexes
from mcpmux.secrets.jsontext import Decoded, token_start

MIN_REDACT_LENGTH = 4

NESTED = 1
"""JSON levels read inside a text (a tool's dict result holding JSON text) beyond the one the patterns spell."""

_DECODE_IN_C = 1 << 16
"""Characters of JSON text from which a parse (in C) comes before decoding it here (about 1 µs per escape)."""

_ESCAPED = 6
"""Characters one character may take in JSON: `\\u005c` (a surrogate pair is 12, but for an astral character)."""


class Redactor:
    """Replaces secret values, however escaped, with `[redacted:NAME]`.

    Covered, for each value of at least `MIN_REDACT_LENGTH` characters: the value and base64
    of the value alone (standard and URL-safe alphabets, padded or not), each character in
    any mixture of: itself; a JSON short escape (`\\/`, `\\"`, `\\\\`, `\\n`, ...); a JSON
    `\\uXXXX` escape (either hex case; a surrogate pair beyond the BMP); unless it is an ASCII
    letter or digit, percent-encoding (`%XX` per UTF-8 byte, either case; `+` for a space).
    That covers `urllib.parse.quote`, and the value as orjson, `json.dumps` (with or without
    `ensure_ascii`), Go (`\\u0026`), PHP (`\\/`) or a writer escaping every character writes
    it. `redact_text` finds that in a text, and in the JSON text such a text may be (the
    value JSON-escaped twice: a tool's dict result holding JSON from elsewhere). `redact_bytes`
    finds it in raw JSON, whose strings it reads as a parser does first (escapes of any of
    the kinds above, in any mixture), then as `redact_text` does.

    Not covered: shorter values (they would collide with ordinary text); letters or digits
    percent-encoded; a value inside a larger encoded blob (base64 of `user:password`); a
    value JSON-escaped three times or more within a text; hex, hashed, split or otherwise
    transformed values; a value spelled across two JSON strings. Where matches start at the
    same place the longer secret wins, so a secret that contains another is redacted whole.

    In raw JSON a marker replaces whole characters of one string, so valid JSON stays
    valid; a value outside any string (a numeric secret as a JSON number) becomes the
    marker as a string. Cost: see `_windows` and `mcpmux.secrets.forms`.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        # Longest first: at one start the alternation takes its first match, so a secret containing another wins.
        kept = sorted(((n, v) for n, v in secrets.items() if len(v) >= MIN_REDACT_LENGTH), key=_longest_first)
        self._markers = [f"[redacted:{name}]" for name, _ in kept]
        self._raw_markers = [b"[redacted:" + orjson.dumps(name)[1:-1] + b"]" for name, _ in kept]
        forms = [[Form.of_base64(value), Form.of_value(value)] for _, value in kept]
        every = [form for secret in forms for form in secret]
        self._source = "|".join("(" + "|".join(form.regex() for form in secret) + ")" for secret in forms)
        self._regex: re.Pattern[str] | None = None  # compiled on first use: most results never need it
        fragments = {form.fragment() for form in every}
        # A form without a fragment has no cheap necessary condition: then every input is scanned whole.
        self._fragments = sorted(fragments) if all(fragments) else None
        self._raw_fragments = [f.encode() for f in self._fragments] if self._fragments else None
        anchors = anchor_regexes(every)  # with the character each starts with, found at memchr speed
        self._anchors = [(a[:1], re.compile(a)) for a in anchors]
        self._raw_anchors = [(a[:1].encode(), re.compile(a.encode())) for a in anchors]
        # No match is longer than the reach, so one that holds an anchor lies within it; the margin lets a window's
        # JSON text start decoding at a whole escape.
        self._reach = max(map(len, every), default=0) * LONGEST_SPELLING * _ESCAPED**NESTED + 64
        self._raw_reach = self._reach * _ESCAPED
        self._structural = any(form.structural() for form in every)
        characters = {c for _, value in kept for c in value}
        self._barrier = next(chr(c) for c in itertools.count(0xFDD0) if chr(c) not in characters)

    def __bool__(self) -> bool:
        return bool(self._markers)

    def _pattern(self) -> re.Pattern[str]:
        if self._regex is None:
            self._regex = re.compile(self._source)
        return self._regex

    def redact_text(self, s: str) -> str:
        """Redact a text (an error message, an argument); returns `s` itself when nothing matched."""
        if not self:
            return s
        windows = _windows(s, self._fragments, self._anchors, self._reach)
        if windows is None:
            windows = [(0, len(s))]
        spans = [(low + a, low + b, g) for low, high in windows for a, b, g in self._spans(s[low:high], NESTED)]
        return "".join(_pieces(s, spans, self._markers)) if spans else s

    def redact_bytes(self, b: bytes) -> bytes:
        """Redact raw JSON bytes; returns `b` itself when nothing matched."""
        if not self:
            return b
        windows = _windows(b, self._raw_fragments, self._raw_anchors, self._raw_reach)
        if windows is None:
            return self._redact_parsed(b)  # anchors all over: one parse in C beats decoding it all here
        spans = [span for low, high in windows for span in self._raw_spans(b, low, high)]
        if not spans:
            return b
        redacted = b"".join(_pieces(b, spans, self._raw_markers))
        if self._structural and not _is_json(redacted) and _is_json(b):
            return self._redact_parsed(b)  # a match outside strings (a number): redact values, keep the JSON valid
        return redacted

    def _raw_spans(self, b: bytes, low: int, high: int) -> list[tuple[int, int, int]]:
        """Matches in raw JSON `b[low:high]` (aligned to whole tokens), read as a parser reads its strings."""
        decoded = Decoded(b, token_start(b, low), token_start(b, high), self._barrier)
        return [(decoded.offset(a), decoded.offset(z), g) for a, z, g in self._spans(decoded.text, NESTED)]

    def _spans(self, text: str, nested: int) -> list[tuple[int, int, int]]:
        """(start, end, secret group) of each match in `text`, and in the text its JSON escapes spell, `nested` deep."""
        spans = [(m.start(), m.end(), m.lastindex or 1) for m in self._pattern().finditer(text)]
        if nested and "\\" in text and not self._clean_json(text):
            inner = Decoded(text, 0, len(text), self._barrier)
            spans += [(inner.offset(a), inner.offset(z), g) for a, z, g in self._spans(inner.text, nested - 1)]
            spans = _union(spans)
        return spans

    def _clean_json(self, text: str) -> bool:
        """Whether `text` is a long JSON document without secrets: decoding it in C beats doing it here, which then
        only a document with a secret needs (where the match is)."""
        if len(text) < _DECODE_IN_C:
            return False
        try:
            root: list[Any] = [orjson.loads(text)]
        except orjson.JSONDecodeError:
            return False
        return not self._redact_in_place(root)

    def _redact_parsed(self, b: bytes) -> bytes:
        """Redact every string (keys too) of the parsed document; re-serialise only when something changed."""
        try:
            document = orjson.loads(b)
        except orjson.JSONDecodeError:  # not JSON (no caller passes that): read what escapes it holds, whole
            spans = self._raw_spans(b, 0, len(b))
            return b"".join(_pieces(b, spans, self._raw_markers)) if spans else b
        root: list[Any] = [document]
        return orjson.dumps(root[0]) if self._redact_in_place(root) else b

    def _redact_in_place(self, root: list[Any]) -> bool:
        """Redact every string, key and number under `root` in place; whether any changed (iterative: nesting is
        as deep as the JSON is)."""
        changed = False
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            parent, key = stack.pop()
            item = parent[key]
            if isinstance(item, dict):
                members = cast(dict[str, Any], item)  # parsed JSON: keys are strings
                renamed = {self.redact_text(k): v for k, v in members.items()}
                if list(renamed) != list(members):
                    parent[key] = members = renamed
                    changed = True
                stack.extend((members, k) for k in members)
            elif isinstance(item, list):
                elements = cast(list[Any], item)
                stack.extend((elements, i) for i in range(len(elements)))
            elif isinstance(item, str | int | float) and not isinstance(item, bool):
                # A number too: a numeric secret written as a JSON number becomes the marker, a string.
                text = item if isinstance(item, str) else str(item)
                if (redacted := self.redact_text(text)) is not text:
                    parent[key] = redacted
                    changed = True
        return changed


def _is_json(b: bytes) -> bool:
    try:
        orjson.loads(b)
    except orjson.JSONDecodeError:
        return False
    return True


def _longest_first(item: tuple[str, str]) -> tuple[int, str]:
    return -len(item[1]), item[0]


def _windows(
    s: AnyStr, fragments: list[AnyStr] | None, anchors: list[tuple[AnyStr, re.Pattern[AnyStr]]], reach: int
) -> list[tuple[int, int]] | None:
    """Disjoint ranges of `s` that hold every match (around each fragment and anchor), or None for all of `s`.

    Finding fragments runs at `find` speed, the anchor's literal prefix about as fast, while the spelling
    regex is some ten times slower per byte: on most results it never runs, on the rest only in windows.
    """
    if fragments is None:
        return None
    cap = max(16, len(s) // (2 * reach))  # past this many windows, they would cover about everything anyway
    hits: list[int] = []
    for fragment in fragments:
        at = s.find(fragment)
        while at >= 0:
            hits.append(at)
            if len(hits) > cap:
                return None
            at = s.find(fragment, at + len(fragment))
    for lead, anchor in anchors:
        if lead not in s:  # one character: memchr speed, and often absent
            continue
        for m in anchor.finditer(s):
            hits.append(m.start())
            if len(hits) > cap:
                return None
    windows: list[tuple[int, int]] = []
    for at in sorted(hits):
        low, high = max(0, at - reach), min(len(s), at + reach)
        if windows and low <= windows[-1][1] + 16:  # the margin keeps them apart once aligned to whole tokens
            windows[-1] = (windows[-1][0], high)
        else:
            windows.append((low, high))
    return windows


def _union(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Spans in order, overlapping ones merged (under the first one's secret)."""
    merged: list[tuple[int, int, int]] = []
    for start, end, group in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), merged[-1][2])
        else:
            merged.append((start, end, group))
    return merged


def _pieces(s: AnyStr, spans: list[tuple[int, int, int]], markers: list[AnyStr]) -> list[AnyStr]:
    """`s` in pieces, each (start, end, secret group) span replaced by that secret's marker."""
    parts: list[AnyStr] = []
    last = 0
    for start, end, group in spans:
        parts += (s[last:start], markers[group - 1])
        last = end
    parts.append(s[last:])
    return parts
