"""Secret references inside strings: `"Bearer {secret:remote-token}"` → a `SecretTemplate`.

Only a string that contains `{secret:` is a template, so every other string (JSON in an
env value, say) stays exactly as written. Inside a template `{{` and `}}` are literal
braces, and any other `{` or `}` is an error: a typo such as `{secret:tok` must never
reach a downstream as literal text.
"""

from __future__ import annotations

import re

from mcpmux.errors import TemplateError
from mcpmux.profile.model import SecretRef, SecretTemplate

MARKER = "{secret:"
SECRET_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_TOKEN = re.compile(r"\{\{|\}\}|\{secret:([^{}]*)\}|[{}]")


def parse_secret_template(text: str) -> str | SecretTemplate:
    """`text` itself when it holds no `{secret:`; else its parts (a plain string if every reference was escaped)."""
    if MARKER not in text:
        return text
    parts: list[str | SecretRef] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token in ("{", "}"):
            raise TemplateError(
                f"a lone '{token}' at character {match.start() + 1} of a string with secret references",
                "write {{ or }} for a literal brace, and {secret:NAME} for a secret",
            )
        else:
            name = match.group(1)
            if not SECRET_NAME.fullmatch(name):
                raise TemplateError(
                    f"'{{secret:{name}}}' does not name a secret",
                    "write {secret:NAME} with NAME of [A-Za-z0-9._-], 1-128 chars",
                )
            parts.extend(p for p in ("".join(literal),) if p)
            literal = []
            parts.append(SecretRef(name))
    literal.append(text[position:])
    parts.extend(p for p in ("".join(literal),) if p)
    if not any(isinstance(p, SecretRef) for p in parts):
        return "".join(p for p in parts if isinstance(p, str))
    return SecretTemplate(tuple(parts))
