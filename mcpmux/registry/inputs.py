"""The values a server.json leaves to the user: arguments, environment variables, headers and `{variables}`.

Each is an `Input` (server.json's `Input` schema). A fixed `value` is used as written, its
`{name}` placeholders filled from `variables` (each an input in turn); otherwise the value is
the user's answer (`--set KEY=VALUE`, or the caller's `ask`, which prompts on a terminal), else
the input's `default`. A required input with none of these is collected as missing, so one
error can list them all.

A value is `Parts`: literal text and `SecretPart`s. A secret input's value never enters a
part: it goes to `PendingSecret` (for the keyring) and the part names the keyring entry, so
the profile gets `{ secret = "NAME" }` or a `{secret:NAME}` template. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from mcpmux.errors import RegistryError

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]{1,64})\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Input:
    """One value the user may (or must) give; `key` is what `--set KEY=VALUE` names."""

    key: str
    what: str
    """Where it goes, for prompts and errors: `environment variable API_KEY`, `argument --port`."""
    description: str = ""
    required: bool = False
    secret: bool = False
    default: str | None = None
    choices: tuple[str, ...] = ()
    format: str = "string"
    secret_name: str | None = None
    """The keyring entry a secret input's value is stored under."""


class Kept:
    """An answer meaning: this secret is already in the keyring; keep the stored value."""


KEEP = Kept()
Answer = str | Kept | None
Ask = Callable[[Input], Answer]


@dataclass(frozen=True, slots=True)
class SecretPart:
    name: str


Parts = tuple[str | SecretPart, ...]


@dataclass(frozen=True, slots=True)
class PendingSecret:
    """A secret value the user gave, to store in the keyring under `name` before the profile is written."""

    name: str
    value: str
    where: str


def secret_name_for(server: str, key: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", f"{server}-{key}".lower()).strip("-")[:128]


def is_secret(raw: Mapping[str, object]) -> bool:
    """Whether the input, or any of its variables, is a secret."""
    variables = raw.get("variables")
    nested = cast(dict[str, object], variables).values() if isinstance(variables, dict) else ()
    tables = [cast(dict[str, object], v) for v in nested if isinstance(v, dict)]
    return raw.get("isSecret") is True or any(v.get("isSecret") is True for v in tables)


def plain(parts: Parts, where: str) -> str:
    """`parts` as text; a secret here is refused (callers check `is_secret` before asking anything)."""
    if any(isinstance(p, SecretPart) for p in parts):
        raise RegistryError(f"{where}: a secret cannot go here (mcpmux passes secrets through env and headers only)")
    return "".join(cast(tuple[str, ...], parts))


class Resolver:
    """Resolves inputs for one server; remembers what was asked, used, missing and what goes to the keyring."""

    def __init__(self, server: str, answers: Mapping[str, str], ask: Ask) -> None:
        self.server = server
        self.answers = answers
        self.ask = ask
        self.used: set[str] = set()
        self.missing: list[Input] = []
        self.secrets: dict[str, PendingSecret] = {}

    def resolve(self, raw: Mapping[str, object], key: str, what: str) -> Parts | None:
        """The value of one input, or None when it has none (recorded in `missing` if it is required)."""
        fixed = raw.get("value")
        if isinstance(fixed, str):
            return self._template(fixed, raw.get("variables"), what)
        spec = self._input(raw, key, what)
        answer: Answer = self.answers.get(key)
        if answer is not None:
            self.used.add(key)
        else:
            answer = self.ask(spec)
        if isinstance(answer, Kept):
            if spec.secret_name is None:
                raise RegistryError(f"{what}: only a secret can keep a stored value")
            return (SecretPart(spec.secret_name),)
        if not answer:
            answer = spec.default
        if not answer:
            if spec.required:
                self.missing.append(spec)
            return None
        self._check(spec, answer)
        if spec.secret_name is not None:
            self.secrets[spec.secret_name] = PendingSecret(spec.secret_name, answer, what)
            return (SecretPart(spec.secret_name),)
        return (answer,)

    def store(self, value: str, key: str, what: str) -> SecretPart:
        """Move a plain value into the keyring (a credential-looking env or header value)."""
        name = secret_name_for(self.server, key)
        self.secrets[name] = PendingSecret(name, value, what)
        return SecretPart(name)

    def _input(self, raw: Mapping[str, object], key: str, what: str) -> Input:
        def text(field: str) -> str | None:
            value = raw.get(field)
            return value if isinstance(value, str) else None

        choices = raw.get("choices")
        secret = raw.get("isSecret") is True
        return Input(
            key=key,
            what=what,
            description=text("description") or text("placeholder") or "",
            required=raw.get("isRequired") is True,
            secret=secret,
            default=text("default"),
            choices=tuple(c for c in cast(list[object], choices) if isinstance(c, str))
            if isinstance(choices, list)
            else (),
            format=text("format") or "string",
            secret_name=secret_name_for(self.server, key) if secret else None,
        )

    def _template(self, text: str, variables: object, what: str) -> Parts | None:
        """`text` with each `{name}` that `variables` defines filled in; any other `{name}` stays as written."""
        table = cast(dict[str, object], variables) if isinstance(variables, dict) else {}
        parts: list[str | SecretPart] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            variable = table.get(match.group(1))
            if not isinstance(variable, dict):
                continue
            parts.append(text[position : match.start()])
            position = match.end()
            name = match.group(1)
            value = self.resolve(cast(dict[str, object], variable), name, f"{{{name}}} in {what}")
            if value is None:
                return None  # an unset variable leaves the whole value unset (or missing, if it is required)
            parts.extend(value)
        parts.append(text[position:])
        return tuple(p for p in parts if p != "")

    def _check(self, spec: Input, answer: str) -> None:
        if _CONTROL.search(answer):
            raise RegistryError(f"{spec.what}: the value holds a control character (a newline?); give it on one line")
        if spec.choices and answer not in spec.choices:
            raise RegistryError(f"{spec.what}: '{answer}' is not one of {', '.join(spec.choices)}")
        if spec.format == "number":
            try:
                float(answer)
            except ValueError:
                raise RegistryError(f"{spec.what}: '{answer}' is not a number") from None
        if spec.format == "boolean" and answer not in ("true", "false"):
            raise RegistryError(f"{spec.what}: '{answer}' must be true or false")
