"""How a downstream server may read one argument value, and the three-way verdict a constraint gives on it.

A verdict (`Tri`) is True when the value meets the constraint under every reading a
server may make of it, False when it meets it under none, and None when mcpmux cannot
tell: the readings disagree, or the value cannot be read as what the constraint is
about (a number for `min`, a path for `within`, …). An allow rule needs True; a deny
rule fires unless False. So "cannot tell" refuses the call either way.

The readings, each one what a common server does:
- a string holding a plain decimal number (ASCII digits, optional sign, point, exponent
  and surrounding whitespace) is read as that number and as its integer prefix
  (JavaScript's `parseInt`); any other string cannot be read as a number;
- a fractional number may be rounded either way by a server that wants an integer
  (considered when the bound or the value compared with is an integer);
- an integer beyond 2**53 is also read as the nearest double (JavaScript);
- a string holding a JSON array or object is also read as that array or object (the
  MCP Python SDK parses such strings for parameters that are not plain strings);
- an array is read element by element: each element is judged, and the array as a
  whole is never better than "cannot tell" (a server may read it some other way);
- a string is also read trimmed of surrounding whitespace; for `enum` and `equals`,
  a string equal to the target only after Unicode normalisation (NFKC), trimming and
  case folding "cannot tell";
- paths: see `path_readings`.

A value of a type the constraint does not read (a bool for `min`, an object for
`pattern`, null for anything) cannot be told. Arrays longer than `MAX_ITEMS` or
nested deeper than `MAX_DEPTH` cannot be told either, which bounds the work per call.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import cast
from urllib.parse import unquote, urlsplit

Tri = bool | None
MAX_ITEMS = 256
MAX_DEPTH = 8
_EXACT = 2**53
"""Integers up to this size are exact as doubles: beyond it a JavaScript server reads a nearby value."""

_DECIMAL = re.compile(r"(?a)\s*([+-]?)([0-9]*)(\.[0-9]*)?([eE][+-]?[0-9]+)?\s*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_JSON_OPENERS = frozenset("[{ \t\n\r")


def cap(verdict: Tri) -> Tri:
    """A verdict on a reading the server may not make: never better than "cannot tell"."""
    return None if verdict is True else verdict


def combine(verdicts: Iterable[Tri]) -> Tri:
    """Readings of one value: True if all are, False if all are, else None (also for no readings at all)."""
    met = missed = False
    for verdict in verdicts:
        if verdict is None:
            return None
        if verdict:
            met = True
        else:
            missed = True
        if met and missed:
            return None
    return True if met else (False if missed else None)


def any_of(verdicts: Iterable[Tri]) -> Tri:
    """`enum`: True if some alternative is met, False if none can be, else None."""
    unknown = False
    for verdict in verdicts:
        if verdict is True:
            return True
        if verdict is None:
            unknown = True
    return None if unknown else False


def all_of(verdicts: Iterable[Tri]) -> Tri:
    """Parts of one whole (items of an array compared with an array): False if one is, True if all are."""
    unknown = False
    for verdict in verdicts:
        if verdict is False:
            return False
        if verdict is None:
            unknown = True
    return None if unknown else True


def json_container(text: str) -> list[object] | dict[str, object] | None:
    """The array or object a JSON string holds, or None (as the MCP Python SDK's `pre_parse_json`)."""
    if not text or text[0] not in _JSON_OPENERS or text.lstrip(" \t\n\r")[:1] not in ("[", "{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return cast(list[object] | dict[str, object], value) if isinstance(value, list | dict) else None


def each_item(items: list[object], judge: Callable[[object, int], Tri], depth: int) -> Tri:
    """An array judged element by element; capped, since a server may read the array some other way."""
    if not items or len(items) > MAX_ITEMS or depth >= MAX_DEPTH:
        return None
    return cap(combine(judge(item, depth + 1) for item in items))


# ---- numbers -----------------------------------------------------------------------------------------------------


def decimal_readings(text: str) -> tuple[float | None, ...] | None:
    """The numbers a plain decimal string is read as (None for a reading that is not a number), or None."""
    m = _DECIMAL.fullmatch(text)
    if m is None:
        return None
    sign, digits, fraction, exponent = m.groups()
    if not digits and (fraction is None or fraction == "."):
        return None
    readings: list[float | None] = [float(text)]
    if digits and fraction is None and exponent is None and len(digits) <= 4000:
        readings.append(int(text))  # exact, as Python reads it; the float above is how JavaScript reads it
    readings.append(float(sign + digits) if digits else None)  # parseInt: "5e3" is 5, ".5" is NaN
    return tuple(readings)


def judge_number(value: object, test: Callable[[float], bool], integral: bool, depth: int = 0) -> Tri:
    """A number constraint (`test` on one reading); `integral`: the bounds are integers, so rounding counts."""
    kind = type(value)
    if kind is int:
        number = cast(int, value)
        if -_EXACT <= number <= _EXACT:
            return test(number)
        try:
            return combine((test(number), test(float(number))))
        except OverflowError:  # a JavaScript server reads Infinity
            return None
    if kind is float:
        number = cast(float, value)
        if not math.isfinite(number):
            return None
        if integral and not number.is_integer():
            return combine((test(number), test(math.floor(number)), test(math.ceil(number))))
        return test(number)
    if kind is str:
        text = cast(str, value)
        readings = decimal_readings(text)
        if readings is not None:
            return cap(combine(judge_number(r, test, integral, depth) for r in readings))
        container = json_container(text)
        return None if container is None else cap(judge_number(container, test, integral, depth + 1))
    if kind is list:
        return each_item(cast(list[object], value), lambda v, d: judge_number(v, test, integral, d), depth)
    return None


# ---- strings and equality ----------------------------------------------------------------------------------------


def loose(text: str) -> str:
    """What a lenient server compares: NFKC-normalised, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def judge_string(value: object, test: Callable[[str], Tri], depth: int = 0) -> Tri:
    """A string constraint: the string as sent and trimmed, plus the array a JSON string holds."""
    kind = type(value)
    if kind is str:
        text = cast(str, value)
        verdict = test(text)
        trimmed = text.strip()
        if trimmed != text and verdict is not None:
            verdict = combine((verdict, test(trimmed)))
        container = json_container(text)
        if container is None or verdict is None:
            return verdict
        return combine((verdict, cap(judge_string(container, test, depth + 1))))
    if kind is list:
        return each_item(cast(list[object], value), lambda v, d: judge_string(v, test, d), depth)
    return None


def string_equals(target: str) -> Callable[[str], Tri]:
    folded = loose(target)

    def test(text: str) -> Tri:
        if text == target:
            return True
        return None if loose(text) == folded else False

    return test


def judge_equal(value: object, target: object, depth: int = 0) -> Tri:
    """Whether `value` is `target` (a profile's `equals` or one `enum` value) under every reading."""
    if isinstance(target, bool):
        if type(value) is bool:
            return value is target
        if type(value) is list:
            return each_item(cast(list[object], value), lambda v, d: judge_equal(v, target, d), depth)
        return None
    if isinstance(target, int | float):
        wanted = target
        return judge_number(value, lambda r: r == wanted, float(wanted).is_integer(), depth)
    if isinstance(target, str):
        return judge_string(value, string_equals(target), depth)
    if isinstance(target, list | dict):
        if isinstance(value, str):
            container = json_container(value)
            return None if container is None else cap(judge_equal(container, cast(object, target), depth + 1))
        if depth >= MAX_DEPTH:
            return None
        if isinstance(target, list) and type(value) is list:
            return _equal_lists(cast(list[object], value), cast(list[object], target), depth)
        if isinstance(target, dict) and type(value) is dict:
            return _equal_objects(cast(dict[str, object], value), cast(dict[str, object], target), depth)
    return None


def _equal_lists(value: list[object], target: list[object], depth: int) -> Tri:
    if len(value) > MAX_ITEMS:
        return None
    if len(value) != len(target):
        return False
    verdict = all_of(judge_equal(v, t, depth + 1) for v, t in zip(value, target, strict=True))
    if verdict is False and sorted(map(_canonical, value)) == sorted(map(_canonical, target)):
        return None  # the same items in another order: a server may read the array as a set
    return verdict


def _equal_objects(value: dict[str, object], target: dict[str, object], depth: int) -> Tri:
    if len(value) > MAX_ITEMS:
        return None
    # A key the host left out may be filled by the server's default; one it added may be ignored.
    verdict = all_of(judge_equal(value[k], t, depth + 1) if k in value else None for k, t in target.items())
    return verdict if value.keys() == target.keys() else cap(verdict)


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def judge_length(value: object, limit: int) -> Tri:
    """`max_length`: characters of a string (as Python and as JavaScript count them) or items of an array."""
    if type(value) is str:
        if len(value) > limit:
            return False
        if value.isascii():
            return True
        return True if utf16_units(value) <= limit else None
    if type(value) is list:
        return len(cast(list[object], value)) <= limit
    return None


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# ---- paths -------------------------------------------------------------------------------------------------------


def path_readings(text: str, cwd: str) -> tuple[tuple[str, ...], str | None]:
    """The files a server may open for `text`, resolved (symlinks too); or () and why none can be told.

    `~` is read both expanded and literally; a `file:` URI as its path (percent-decoded and
    not) and literally; any other URI scheme is not a file path. A relative path is joined to
    `cwd`, the downstream's working directory. A path with `..` is also resolved after a
    lexical normalisation (what `path.resolve` in Node does before opening).
    """
    if not text or "\0" in text:
        return (), "must be a path"
    forms = [text]
    if (trimmed := text.strip()) != text:
        if not trimmed:
            return (), "must be a path"
        forms.append(trimmed)
    paths: list[str] = []
    for form in forms:
        if (scheme := _SCHEME.match(form)) is not None:
            if scheme.group().lower() != "file:":
                return (), f"is a URL with scheme {scheme.group()}, not a file path (only file: URIs name a file)"
            parts = urlsplit(form)
            if parts.netloc.lower() not in ("", "localhost"):
                return (), f"names a file on host {parts.netloc!r}"
            if not parts.path:
                return (), "must be a path"
            paths += (parts.path, unquote(parts.path))
        paths.append(form)
    resolved: dict[str, None] = {}
    for path in paths:
        if "\0" in path:
            return (), "must be a path"
        for literal in (path, os.path.expanduser(path)) if path.startswith("~") else (path,):  # noqa: PTH111
            joined = os.path.join(cwd, literal)  # noqa: PTH118
            try:
                resolved[os.path.realpath(joined)] = None
                if ".." in literal:
                    resolved[os.path.realpath(os.path.normpath(joined))] = None
            except (OSError, ValueError):
                return (), "cannot be resolved as a path"
    return tuple(resolved), None


def judge_path(value: object, inside: Callable[[str], bool], cwd: str, depth: int = 0) -> Tri:
    """`within`: every file a server may open for the value lies inside the roots (`inside`)."""
    kind = type(value)
    if kind is str:
        text = cast(str, value)
        readings, _ = path_readings(text, cwd)
        if not readings:
            return None
        verdict = combine(map(inside, readings))
        container = json_container(text)
        if container is None or verdict is None:
            return verdict
        return combine((verdict, cap(judge_path(container, inside, cwd, depth + 1))))
    if kind is list:
        return each_item(cast(list[object], value), lambda v, d: judge_path(v, inside, cwd, d), depth)
    return None
