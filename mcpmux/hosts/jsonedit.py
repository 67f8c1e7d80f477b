"""Edit one object of a JSON file in place, keeping everything around the edit as the host wrote it.

`install` changes one member of the host's servers object (and may drop some); rewriting the whole
file with `json.dumps` would re-indent it and explode every inline array. Here the text of each member
that stays is copied as it was, with the separators the file already uses; only the new entry is
rendered, in the file's own style (one key per line with its indent, or all on one line).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True, slots=True)
class Member:
    key: str
    start: int  # where its key's opening quote is
    value_start: int
    end: int  # just past its value


@dataclass(frozen=True, slots=True)
class ObjectSpan:
    open: int  # the index of `{`
    close: int  # the index of `}`
    members: tuple[Member, ...]


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    assert match is not None  # `*` always matches
    return match.end()


def object_at(text: str, i: int) -> ObjectSpan:
    """The object whose `{` is at `i` (after whitespace); `ValueError` if the text is not plain JSON there."""
    i = _skip(text, i)
    if text[i : i + 1] != "{":
        raise ValueError("not an object")
    open_at, members = i, list[Member]()
    i = _skip(text, i + 1)
    if text[i : i + 1] == "}":
        return ObjectSpan(open_at, i, ())
    while True:
        start = i
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if not isinstance(key, str) or text[i : i + 1] != ":":
            raise ValueError("not a member")
        value_start = _skip(text, i + 1)
        _, end = _DECODER.raw_decode(text, value_start)
        members.append(Member(key, start, value_start, end))
        i = _skip(text, end)
        if text[i : i + 1] == ",":
            i = _skip(text, i + 1)
        elif text[i : i + 1] == "}":
            return ObjectSpan(open_at, i, tuple(members))
        else:
            raise ValueError("not a separator")


def _line_indent(text: str, at: int) -> str | None:
    """The whitespace before `at` on its line, or None when something else precedes it on that line."""
    line_start = text.rfind("\n", 0, at) + 1
    before = text[line_start:at]
    return before if not before.strip() else None


def _inline(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def render(value: dict[str, Any], indent: str | None, unit: str, newline: str = "\n") -> str:
    """`value` one key per line (each at `indent` + `unit`, inner values inline), or all inline if `indent` is None."""
    if indent is None:
        return json.dumps(value, ensure_ascii=False)
    inner = indent + unit
    lines = [f"{inner}{_inline(k)}: {_inline(v)}" for k, v in value.items()]
    return "{" + newline + f",{newline}".join(lines) + f"{newline}{indent}}}"


def set_members(text: str, span: ObjectSpan, changes: dict[str, str | None], unit: str) -> str:
    """`text` with the object at `span` changed: each `changes` key set to that rendered value text (appended when
    new), or removed when None. The members that stay keep their own text and the file's separators."""
    members = list(span.members)
    pieces: list[tuple[str, str]] = [(m.key, text[m.start : m.end]) for m in members]
    for key, value in changes.items():
        index = next((n for n, (k, _) in enumerate(pieces) if k == key), None)
        if value is None:
            if index is not None:
                del pieces[index]
            continue
        rendered = f"{json.dumps(key, ensure_ascii=False)}: {value}"
        if index is None:
            pieces.append((key, rendered))
        else:
            pieces[index] = (key, rendered)
    if not pieces:
        return text[: span.open + 1] + text[span.close :]
    if members:
        leading = text[span.open + 1 : members[0].start]
        trailing = text[members[-1].end : span.close]
        separator = text[members[0].end : members[1].start] if len(members) > 1 else None
    elif (indent := member_indent(text, span, unit)) is None:  # an empty object in a one-line file
        leading, trailing, separator = "", "", None
    else:  # an empty object: one member per line, one level deeper than the line it opens on
        newline = "\r\n" if "\r\n" in text else "\n"
        leading, trailing, separator = f"{newline}{indent}", f"{newline}{indent.removesuffix(unit)}", None
    if separator is None:
        separator = "," + leading if "\n" in leading else ", "
    return text[: span.open + 1] + leading + separator.join(p for _, p in pieces) + trailing + text[span.close :]


def member_indent(text: str, span: ObjectSpan, unit: str) -> str | None:
    """The indent of this object's members (None: they share a line); for an empty one, a level deeper than the
    line it opens on (None in a one-line file)."""
    if span.members:
        return _line_indent(text, span.members[0].start)
    if "\n" not in text.strip():
        return None
    line_start = text.rfind("\n", 0, span.open) + 1
    return text[line_start : _skip_blanks(text, line_start)] + unit


def _skip_blanks(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i
