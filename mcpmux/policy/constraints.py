"""Argument constraints of one policy rule, compiled once: check a call's arguments, narrow a tool's schema.

A constraint names the profile key that holds it (`policy.rules[0].args.branch.pattern`),
so a refused call tells the agent which argument, which constraint and which rule.

Constraints fail closed. A value is judged the way a downstream server may read it
(readings.py): a numeric string as a number, `~` expanded, a `file:` URI as its path, a
JSON string as the array it holds, an array element by element. Each constraint says
"met", "not met" or "cannot tell" (the readings disagree, or the value is not of a kind
the constraint reads, e.g. a bool for `min`, NaN, an `http:` URL for `within`):

- an allow rule needs every constraint met under every reading, so "cannot tell" refuses
  the call: `amount = { max = 100 }` accepts a JSON number up to 100 and refuses `"50"`;
- a deny rule refuses the call unless some constraint is surely not met, so "cannot tell"
  matches: `amount = { min = 100 }` refuses `5000`, `"5000"`, `" 5e3 "`, `"0x1388"`, `true`
  and `[5000]`, and lets `5` and `"5"` through.

In an allow rule an absent argument passes (the downstream applies its own default)
unless the constraint says `required = true` or `equals`. In a deny rule the
constraints describe the calls to refuse, so an absent argument never matches.

`within` judges the file the server will open: `~` expanded (and, since a server may not
expand it, also read literally), `file:` URIs turned into paths (other schemes refused), a
relative path joined to the downstream's working directory (its profile `cwd`, else
mcpmux's), `..` and symlinks resolved with `os.path.realpath`; every reading must lie in
one of the (realpath'd) roots.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from mcpmux.policy import readings as rd
from mcpmux.profile.model import ArgConstraint

_SHOWN_CHARS = 60
"""Values in messages are cut to this many characters: a refusal must stay one readable line."""

Judge = Callable[[object, str | None], rd.Tri]
"""One constraint on one value, given the downstream's working directory: met, not met, or cannot tell."""


def show(value: object) -> str:
    """A value as JSON, shortened for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except RecursionError:  # a host's argument may nest a thousand levels deep
        text = f"<{type(value).__name__} nested too deeply to show>"
    except ValueError:
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


@dataclass(frozen=True, slots=True)
class ArgCheck:
    """One argument's constraints, compiled once: a judge per constraint (regex, realpath'd roots and all)."""

    spec: ArgConstraint
    key: str
    """`policy.rules[0].args.branch`."""
    judges: tuple[tuple[str, Judge], ...]
    """(constraint, judge) in the order a refusal names them: equals, enum, pattern, bounds, max_length, within."""
    roots: tuple[str, ...]

    @classmethod
    def compile(cls, rule_key: str, spec: ArgConstraint) -> ArgCheck:
        roots = tuple(os.path.realpath(os.path.expanduser(r)) for r in spec.within or ())  # noqa: PTH111
        return cls(spec, f"{rule_key}.args.{spec.name}", _judges(spec, roots), roots)

    def failure(self, arguments: Mapping[str, Any], cwd: str | None = None) -> tuple[str, str] | None:
        """For an allow rule: (constraint key, sentence) for the first constraint not surely met, or None."""
        s = self.spec
        name = s.name
        if name not in arguments:
            if not s.required and s.equals is None:
                return None
            which = "equals" if s.equals is not None and not s.required else "required"
            return f"{self.key}.{which}", f"argument '{name}' is missing"
        value: object = arguments[name]
        for which, judge in self.judges:
            verdict = judge(value, cwd)
            if verdict is not True:  # the message is built only for a refusal: the allowed path stays cheap
                tail = self._tail(which, value, cwd)
                return (
                    f"{self.key}.{_bound_key(s, value) if which == 'bounds' else which}",
                    f"argument '{name}' = {show(value)} {tail}",
                )
        return None

    def matches(self, arguments: Mapping[str, Any], cwd: str | None = None) -> bool:
        """For a deny rule: whether the argument is present and no constraint is surely unmet."""
        if self.spec.name not in arguments:
            return False
        value: object = arguments[self.spec.name]
        return all(judge(value, cwd) is not False for _, judge in self.judges)

    def _tail(self, which: str, value: object, cwd: str | None) -> str:
        """The end of the refusal sentence for constraint `which` (not met, or cannot tell)."""
        s = self.spec
        if which == "equals":
            return f"must equal {show(s.equals)}"
        if which == "enum":
            return f"is not one of {show(list(s.enum or ()))}"
        if which == "pattern":
            if not isinstance(value, str):
                return f"must be a string matching pattern {s.pattern}"
            if re.fullmatch(cast(str, s.pattern), value) is None:
                return f"does not match pattern {s.pattern}"
            return f"must match pattern {s.pattern} also as a server may read it (trimmed, or as the JSON inside)"
        if which == "bounds":
            return _number_tail(s, value)
        if which == "max_length":
            return _length_tail(cast(int, s.max_length), value)
        return self._within_tail(value, cwd)

    def _within_tail(self, value: object, cwd: str | None) -> str:
        if not isinstance(value, str):
            return "must be a path"
        paths, why = rd.path_readings(value, cwd or os.getcwd())  # noqa: PTH109
        outside = [p for p in paths if not _inside(p, self.roots)]
        if why is None and outside:
            return f"resolves to {outside[0]}, outside {', '.join(self.roots)}"
        return why or "must be a single path (it holds JSON a server may read as several)"

    def narrow(self, prop: dict[str, Any]) -> dict[str, Any]:
        """The JSON Schema of this argument with what the host should know (enum, bounds, const) written in."""
        s = self.spec
        update: dict[str, Any] = {}
        if s.enum is not None:
            update["enum"] = list(s.enum)
        if s.equals is not None:
            update["const"] = s.equals
        if s.minimum is not None:
            update["minimum"] = s.minimum
        if s.maximum is not None:
            update["maximum"] = s.maximum
        if s.max_length is not None and prop.get("type") == "string":
            update["maxLength"] = s.max_length
        return {**prop, **update} if update else prop


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _judges(s: ArgConstraint, roots: tuple[str, ...]) -> tuple[tuple[str, Judge], ...]:
    judges: list[tuple[str, Judge]] = []
    if s.equals is not None:
        target = s.equals
        judges.append(("equals", lambda v, _: rd.judge_equal(v, target)))
    if s.enum is not None:
        judges.append(("enum", _enum_judge(s.enum)))
    if s.pattern is not None:
        regex = re.compile(s.pattern)
        test: Callable[[str], rd.Tri] = lambda text: regex.fullmatch(text) is not None  # noqa: E731
        judges.append(("pattern", lambda v, _: test(v) if _plain(v) else rd.judge_string(v, test)))
    if s.minimum is not None or s.maximum is not None:
        judges.append(("bounds", _bounds_judge(s.minimum, s.maximum)))
    if s.max_length is not None:
        limit = s.max_length
        judges.append(("max_length", lambda v, _: rd.judge_length(v, limit)))
    if roots:
        seps = tuple(root.rstrip(os.sep) + os.sep for root in roots)
        inside: Callable[[str], bool] = lambda p: p in roots or p.startswith(seps)  # noqa: E731
        judges.append(("within", lambda v, cwd: rd.judge_path(v, inside, cwd or os.getcwd())))  # noqa: PTH109
    return tuple(judges)


def _plain(value: object) -> TypeGuard[str]:
    """A string with no other reading than itself (no JSON inside, nothing to trim): the common case, judged fast."""
    if type(value) is not str:
        return False
    return value[:1] not in ("[", "{") and not value[:1].isspace() and not value[-1:].isspace()


def _enum_judge(values: tuple[object, ...]) -> Judge:
    strings = frozenset(v for v in values if isinstance(v, str))

    def judge(value: object, _: str | None) -> rd.Tri:
        if type(value) is str and value in strings:
            return True
        return rd.any_of(rd.judge_equal(value, target) for target in values)

    return judge


def _bounds_judge(low: float | None, high: float | None) -> Judge:
    integral = all(float(b).is_integer() for b in (low, high) if b is not None)

    def test(reading: float) -> bool:
        return (low is None or reading >= low) and (high is None or reading <= high)

    def judge(value: object, _: str | None) -> rd.Tri:
        if type(value) is int and -(2**53) <= value <= 2**53:  # the common case; bigger ones are also read as doubles
            return test(value)
        return rd.judge_number(value, test, integral)

    return judge


def _bound_key(s: ArgConstraint, value: object) -> str:
    """`max` for a number above the maximum (or a rule with only a maximum), else `min`."""
    if s.minimum is None or (s.maximum is not None and _is_number(value) and cast(float, value) > s.maximum):
        return "max"
    return "min"


def _number_tail(s: ArgConstraint, value: object) -> str:
    if not _is_number(value):
        return "must be a number"
    number = cast(float, value)
    if isinstance(number, float) and not math.isfinite(number):
        return "must be a finite number"
    if s.minimum is not None and number < s.minimum:
        return f"is below the minimum {show(s.minimum)}"
    if s.maximum is not None and number > s.maximum:
        return f"is above the maximum {show(s.maximum)}"
    return "may be read (rounded, or as a double) as a number outside the bounds"


def _length_tail(limit: int, value: object) -> str:
    if isinstance(value, list):
        return f"has {len(cast(list[object], value))} items, over {limit}"
    if not isinstance(value, str):
        return "must be a string or an array"
    if len(value) > limit:
        return f"has {len(value)} characters, over {limit}"
    return f"has {rd.utf16_units(value)} UTF-16 code units (as JavaScript counts), over {limit}"
