"""JSON string content read back as the text it spells, with the way back from text offsets to the original's.

A JSON writer may escape any character of a string (`\\u0041`, `\\/`, `\\u00E9`); the
redactor's patterns describe text, so raw JSON is decoded token by token as a parser
would before they run, and each match is mapped back to what spells it. A text may hold
JSON in turn (a tool's dict result, serialised into its text), which decodes the same way.
A `"` that is not escaped (a string's edge) reads as `barrier`, a character no pattern
matches, so no match spans two strings or ends inside an escape.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

_TOKEN = (
    r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"  # a surrogate pair: one character
    r'|\\u([0-9a-fA-F]{4})|\\(.)|"'
)
_BYTES_TOKEN = re.compile(_TOKEN.encode(), re.DOTALL)
_TEXT_TOKEN = re.compile(_TOKEN, re.DOTALL)
_SHORT = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_BACKSLASH = 0x5C


class Decoded:
    """`text`: what a JSON parser reads in `source[low:high]`; `offset(k)`: where its character `k` starts there."""

    def __init__(self, source: bytes | str, low: int, high: int, barrier: str) -> None:
        self._utf8 = isinstance(source, bytes)  # runs of raw UTF-8 bytes, else of characters
        self._high = high
        self._pieces: list[str] = []
        self._starts: list[int] = []  # each piece's text offset
        self._offsets: list[int] = []  # and offset in `source`
        self._runs: list[bool] = []  # a run copied through, else one token
        self._length = 0
        last = low
        for start, end, char in _tokens(source, low, high, barrier):
            if start > last:
                self._add(_run(source, last, start), last, True)
            self._add(char, start, False)
            last = end
        if last < high:
            self._add(_run(source, last, high), last, True)
        self.text = "".join(self._pieces)

    def _add(self, piece: str, offset: int, run: bool) -> None:
        self._pieces.append(piece)
        self._starts.append(self._length)
        self._offsets.append(offset)
        self._runs.append(run)
        self._length += len(piece)

    def offset(self, k: int) -> int:
        """The offset in `source` where text character `k` starts (`high` for the end of the text)."""
        if k >= self._length:
            return self._high
        i = bisect.bisect_right(self._starts, k) - 1
        start, offset = self._starts[i], self._offsets[i]
        if k == start or not self._runs[i]:
            return offset
        if not self._utf8:
            return offset + k - start
        return offset + len(self._pieces[i][: k - start].encode("utf-8", "surrogateescape"))


def _tokens(source: bytes | str, low: int, high: int, barrier: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, character read) of each escape and unescaped `"` in `source[low:high]`."""
    if isinstance(source, bytes):
        for m in _BYTES_TOKEN.finditer(source, low, high):
            groups = [g.decode("latin-1") if g is not None else None for g in m.groups()]
            yield m.start(), m.end(), _read(*groups, barrier=barrier)
    else:
        for m in _TEXT_TOKEN.finditer(source, low, high):
            yield m.start(), m.end(), _read(*m.groups(), barrier=barrier)


def _run(source: bytes | str, start: int, end: int) -> str:
    return source[start:end].decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source[start:end]


def _read(high: str | None, low: str | None, unit: str | None, short: str | None, *, barrier: str) -> str:
    if high is not None and low is not None:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00)
    if unit is not None:
        return chr(int(unit, 16))
    if short is not None:
        return _SHORT.get(short, short)  # not JSON; read leniently
    return barrier


def token_start(raw: bytes, at: int) -> int:
    """`at`, moved back to the start of the escape sequence or UTF-8 character it falls inside, if any."""
    for back in range(1, 6):  # an escape is at most 6 bytes: `\uXXXX`
        i = at - back
        if i < 0 or raw[i] != _BACKSLASH:
            continue
        if _backslashes_before(raw, i) % 2 == 0 and (back == 1 or raw[i + 1] == ord("u")):
            return i  # that backslash opens an escape still running at `at`
        break  # the nearest backslash decides: an escape ended before `at`, or `at` follows a `\\` pair
    for _ in range(3):  # a UTF-8 character is at most 4 bytes
        if 0 < at < len(raw) and 0x80 <= raw[at] < 0xC0:
            at -= 1
    return at


def _backslashes_before(raw: bytes, i: int) -> int:
    """How many backslashes run right before offset `i` (in chunks, so a long run costs few steps)."""
    count, size = 0, 64
    while i - count > 0:
        chunk = raw[max(0, i - count - size) : i - count]
        kept = len(chunk.rstrip(b"\\"))
        count += len(chunk) - kept
        if kept:
            break
        size *= 2
    return count
