"""Where a key sits in a profile's TOML text, so every problem names its file and line.

tomllib gives values, not positions; this index finds the first line of each table
header and `key =` line by pattern (good enough for error messages, not a TOML parser).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

Key = tuple[str, ...]
"""A key path: `("servers", "git", "env", "TOKEN")`; array entries as `"rules[1]"`."""

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_LINE = re.compile(rf"\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")


def _split_key(dotted: str) -> Key:
    parts = re.findall(_KEY_PART, dotted)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _indexed(table: Key, arrays: Mapping[Key, int]) -> Key:
    for array, index in arrays.items():
        if table[: len(array)] == array:
            return (*array[:-1], f"{array[-1]}[{index}]", *table[len(array) :])
    return table


class LineIndex:
    """Key path → first line it appears on (table headers and `key =` lines). Good enough, not a TOML parser."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Key, int] = {}
        table: Key = ()
        arrays: dict[Key, int] = {}  # `[[policy.rules]]` → index of its latest entry, for keys like `rules[1]`
        for number, line in enumerate(text.splitlines(), start=1):
            if header := _HEADER_LINE.match(line):
                table = _split_key(header.group(1))
                self._add(table, number)
                if line.lstrip().startswith("[["):
                    arrays[table] = arrays.get(table, -1) + 1
                table = _indexed(table, arrays)
                self._add(table, number)
            elif key := _KEY_LINE.match(line):
                self._add(table + _split_key(key.group(1)), number)

    def _add(self, key: Key, number: int) -> None:
        for end in range(1, len(key) + 1):
            self._lines.setdefault(key[:end], number)

    def line(self, key: Key) -> int | None:
        # Keys inside inline tables (`env = { A = ... }`) fall back to their enclosing key's line.
        for end in range(len(key), 0, -1):
            if key[:end] in self._lines:
                return self._lines[key[:end]]
        return None


def header_key(line: str) -> Key | None:
    """The key of a `[table]` or `[[array]]` header line; None for any other line."""
    header = _HEADER_LINE.match(line)
    return _split_key(header.group(1)) if header else None
