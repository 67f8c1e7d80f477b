"""Redaction: secret values, and the forms they take in text and JSON, replaced by `[redacted:NAME]`."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Mapping

import orjson

MIN_REDACT_LENGTH = 4


def _encodings(value: str) -> set[str]:
    """The forms a value commonly takes in text: itself, base64 (both alphabets, +/- padding), URL-encoded,
    and JSON-escaped (a tool that returns a dict has it serialised into its text content)."""
    raw = value.encode()
    forms = {value, urllib.parse.quote(value, safe=""), orjson.dumps(value)[1:-1].decode(), json.dumps(value)[1:-1]}
    for b64 in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms.update((b64, b64.rstrip("=")))
    return forms


class Redactor:
    """Replaces secret values, and their common encodings, with `[redacted:NAME]`.

    Covered forms: the value; base64 of the value alone (standard and URL-safe alphabets,
    padded and unpadded); `urllib.parse.quote(value, safe="")`; the value JSON-escaped as
    text (a dict result's JSON text content); and, in `redact_bytes`, the JSON-escaped form
    of each (as orjson and as `json.dumps` with `ensure_ascii` write them). Values shorter
    than `MIN_REDACT_LENGTH` characters are ignored: they would collide with ordinary text.
    Longer patterns are replaced first, so a secret that contains another is redacted
    whole. A secret embedded in a larger encoded blob (say base64 of `user:password`) is
    not found. Redacting raw JSON can make it invalid when a value appears outside a
    string (e.g. a numeric secret): that fails closed.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        text: dict[str, str] = {}
        raw: dict[bytes, bytes] = {}
        for name, value in sorted(secrets.items()):
            if len(value) < MIN_REDACT_LENGTH:
                continue
            marker = f"[redacted:{name}]"
            raw_marker = b"[redacted:" + orjson.dumps(name)[1:-1] + b"]"
            for form in _encodings(value):
                text.setdefault(form, marker)
                escaped = orjson.dumps(form)[1:-1]
                ascii_escaped = json.dumps(form)[1:-1].encode()
                for pattern in {form.encode(), escaped, ascii_escaped}:
                    raw.setdefault(pattern, raw_marker)
        self._text = sorted(text.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        self._raw = sorted(raw.items(), key=lambda kv: (-len(kv[0]), kv[0]))

    def __bool__(self) -> bool:
        return bool(self._text)

    def redact_text(self, s: str) -> str:
        for pattern, marker in self._text:
            s = s.replace(pattern, marker)
        return s

    def redact_bytes(self, b: bytes) -> bytes:
        """Redact raw (JSON) bytes; returns `b` itself when nothing matched."""
        for pattern, marker in self._raw:
            b = b.replace(pattern, marker)
        return b
