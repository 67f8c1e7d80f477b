"""Argument constraints of one policy rule, compiled once: check a call's arguments, narrow a tool's schema.

A constraint names the profile key that holds it (`policy.rules[0].args.branch.pattern`),
so a refused call tells the agent which argument, which constraint and which rule.

In an allow rule an absent argument passes (the downstream applies its own default)
unless the constraint says `required = true` or `equals`. In a deny rule the
constraints describe the calls to refuse, so an absent argument never matches.

`within` paths: the argument is joined to mcpmux's working directory, then `..` and
symlinks are resolved with `os.path.realpath`; the result must lie in one of the
(realpath'd) roots. A value starting with `~` must be inside both read literally and
with `~` expanded, since a downstream may or may not expand it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from mcpmux.profile.model import ArgConstraint

_SHOWN_CHARS = 60
"""Values in messages are cut to this many characters: a refusal must stay one readable line."""


def show(value: object) -> str:
    """A value as JSON, shortened for a message."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except RecursionError:  # a host's argument may nest a thousand levels deep
        text = f"<{type(value).__name__} nested too deeply to show>"
    except ValueError:
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def same(a: object, b: object) -> bool:
    """JSON equality: `true` is not `1` (Python says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


@dataclass(frozen=True, slots=True)
class ArgCheck:
    """One argument's constraints, compiled: the regex and the realpath'd roots are computed once."""

    spec: ArgConstraint
    key: str
    """`policy.rules[0].args.branch`."""
    regex: re.Pattern[str] | None
    roots: tuple[str, ...]

    @classmethod
    def compile(cls, rule_key: str, spec: ArgConstraint) -> ArgCheck:
        regex = None if spec.pattern is None else re.compile(spec.pattern)
        roots = tuple(os.path.realpath(os.path.expanduser(r)) for r in spec.within or ())  # noqa: PTH111
        return cls(spec, f"{rule_key}.args.{spec.name}", regex, roots)

    def failure(self, arguments: Mapping[str, Any], *, absent_passes: bool) -> tuple[str, str] | None:
        """(constraint key, sentence) for the first constraint the argument breaks, or None if it meets all."""
        s = self.spec
        name = s.name
        if name not in arguments:
            if absent_passes and not s.required and s.equals is None:
                return None
            which = "equals" if s.equals is not None and not s.required else "required"
            return f"{self.key}.{which}", f"argument '{name}' is missing"
        value: object = arguments[name]
        if (failure := self._failure(value)) is None:
            return None
        which, tail = failure  # the message is built only for a refusal: the allowed path stays cheap
        return f"{self.key}.{which}", f"argument '{name}' = {show(value)} {tail}"

    def _failure(self, value: object) -> tuple[str, str] | None:
        """(constraint, the end of the sentence) for the first constraint `value` breaks."""
        s = self.spec
        if s.equals is not None and not same(value, s.equals):
            return "equals", f"must equal {show(s.equals)}"
        if s.enum is not None and not any(same(value, e) for e in s.enum):
            return "enum", f"is not one of {show(list(s.enum))}"
        if self.regex is not None:
            if not isinstance(value, str):
                return "pattern", f"must be a string matching pattern {s.pattern}"
            if self.regex.fullmatch(value) is None:
                return "pattern", f"does not match pattern {s.pattern}"
        if s.minimum is not None or s.maximum is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return ("min" if s.minimum is not None else "max"), "must be a number"
            if s.minimum is not None and value < s.minimum:
                return "min", f"is below the minimum {show(s.minimum)}"
            if s.maximum is not None and value > s.maximum:
                return "max", f"is above the maximum {show(s.maximum)}"
        if s.max_length is not None:
            if not isinstance(value, str | list):
                return "max_length", "must be a string or an array"
            size = len(cast(str | list[object], value))
            if size > s.max_length:
                what = "characters" if isinstance(value, str) else "items"
                return "max_length", f"has {size} {what}, over {s.max_length}"
        if self.roots:
            return self._within(cast(object, value))
        return None

    def _within(self, value: object) -> tuple[str, str] | None:
        if not isinstance(value, str) or not value or "\0" in value:
            return "within", "must be a path"
        # os.path on plain strings: several times cheaper than pathlib on the call path.
        candidates = {value, os.path.expanduser(value)} if value.startswith("~") else {value}  # noqa: PTH111
        for candidate in candidates:
            resolved = os.path.realpath(os.path.join(os.getcwd(), candidate))  # noqa: PTH109, PTH118
            if not _inside(resolved, self.roots):
                return "within", f"resolves to {resolved}, outside {', '.join(self.roots)}"
        return None

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
