"""Properties of redaction over generated secrets, every way a JSON or URL writer may spell them, and every JSON writer.

A secret is spelled at the text level (raw, random per-character JSON escaping in either hex
case, `json`/orjson dumps, base64, URL encodings), placed in a text between neutral characters,
and the text written as a JSON string (orjson, `json.dumps` with and without `ensure_ascii`,
or a writer that escapes a random subset of characters). The redacted JSON must parse, and
its text be exactly the neutral context around the marker.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mcpmux.secrets.redact import MIN_REDACT_LENGTH, Redactor

NEUTRAL = "¶§"  # never in a secret, and no escape is written with them: the context cannot take part in a match
SHORT = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}

# Secrets: any character but the neutral ones, with the awkward ones (escapes' own characters, astral) likely.
characters = st.one_of(
    st.sampled_from("/\"\\ %+&<>='`-_.~é€😀\n\t\x01u0aAfF"),
    st.characters(blacklist_categories=("Cs",), blacklist_characters=NEUTRAL),
)
secrets = st.text(characters, min_size=MIN_REDACT_LENGTH, max_size=24)
names = st.text(st.sampled_from("abcXYZ019._-"), min_size=1, max_size=12)
contexts = st.text(st.sampled_from(NEUTRAL), max_size=4)


def u_escape(c: str, upper: bool) -> str:
    """`\\uXXXX` of `c` (a surrogate pair beyond the BMP), hex digits in one case."""
    utf16 = c.encode("utf-16-be", "surrogatepass")
    escaped = "".join(f"\\u{utf16[i]:02x}{utf16[i + 1]:02x}" for i in range(0, len(utf16), 2))
    return escaped.upper().replace("\\U", "\\u") if upper else escaped


@st.composite
def json_escaped(draw: st.DrawFn, text: str, *, must: bool) -> str:
    """`text` as JSON string content with a random subset of characters escaped (`must`: those JSON requires)."""
    out: list[str] = []
    for c in text:
        required = must and (c in '"\\' or c < " ")
        choice = draw(st.sampled_from(("short", "lower", "upper") if required else ("raw", "short", "lower", "upper")))
        if choice == "short" and c in SHORT:
            out.append("\\" + SHORT[c])
        elif choice == "raw":
            out.append(c)
        else:
            out.append(u_escape(c, choice == "upper"))
    return "".join(out)


@st.composite
def url_escaped(draw: st.DrawFn, value: str) -> str:
    """`value` with a random subset of its non-alphanumeric characters percent-encoded, in either hex case."""
    out: list[str] = []
    for c in value:
        if (c.isascii() and c.isalnum()) or not draw(st.booleans()):
            out.append(c)
            continue
        encoded = urllib.parse.quote(c, safe="")
        out.append(encoded.lower() if draw(st.booleans()) else encoded)
    return "".join(out)


Draw = Callable[[st.SearchStrategy[Any]], Any]


def spellings(value: str) -> dict[str, Callable[[Draw], str]]:
    raw = value.encode()
    return {
        "raw": lambda draw: value,
        "json-random": lambda draw: draw(json_escaped(value, must=False)),
        "orjson": lambda draw: orjson.dumps(value)[1:-1].decode(),
        "json-ascii": lambda draw: json.dumps(value)[1:-1],
        "json-unicode": lambda draw: json.dumps(value, ensure_ascii=False)[1:-1],
        "base64": lambda draw: base64.b64encode(raw).decode(),
        "base64-unpadded": lambda draw: base64.b64encode(raw).decode().rstrip("="),
        "base64-url": lambda draw: base64.urlsafe_b64encode(raw).decode(),
        "base64-url-unpadded": lambda draw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "quote": lambda draw: urllib.parse.quote(value, safe=""),
        "quote-plus": lambda draw: urllib.parse.quote_plus(value, safe=""),
        "url-random": lambda draw: draw(url_escaped(value)),
        # JSON text holding the value JSON-escaped (a tool's dict result holding JSON from elsewhere)
        "nested": lambda draw: json.dumps(draw(json_escaped(value, must=True)), ensure_ascii=draw(st.booleans()))[1:-1],
        "nested-random": lambda draw: draw(json_escaped(draw(json_escaped(value, must=True)), must=True)),
    }


SPELLINGS = sorted(spellings("x"))
WRITERS = ("orjson", "json-ascii", "json-unicode", "random")


@st.composite
def documents(draw: st.DrawFn, value: str, spelling: str, writer: str, text: str) -> bytes:
    """`{"text": ...}` written by `writer`; `text` has `{}` where the spelling of `value` goes."""
    spelled = text.replace("{}", spellings(value)[spelling](draw))
    if writer == "orjson":
        return orjson.dumps({"text": spelled})
    if writer in ("json-ascii", "json-unicode"):
        return json.dumps({"text": spelled}, ensure_ascii=writer == "json-ascii").encode()
    return b'{"text":"' + draw(json_escaped(spelled, must=True)).encode() + b'"}'


@settings(max_examples=400, deadline=None)
@given(
    st.data(),
    secrets,
    names,
    st.sampled_from(SPELLINGS),
    st.sampled_from(WRITERS),
    contexts,
    contexts,
)
def test_every_spelling_of_a_secret_in_json_written_any_way_becomes_the_marker_and_stays_valid_json(
    data: st.DataObject, value: str, name: str, spelling: str, writer: str, before: str, after: str
) -> None:
    document = data.draw(documents(value, spelling, writer, before + "{}" + after))
    redacted = Redactor({name: value}).redact_bytes(document)
    assert orjson.loads(redacted) == {"text": f"{before}[redacted:{name}]{after}"}, (document, redacted)


@settings(max_examples=300, deadline=None)
@given(st.data(), secrets, names, st.sampled_from(SPELLINGS), contexts, contexts)
def test_every_spelling_of_a_secret_in_a_text_becomes_the_marker(
    data: st.DataObject, value: str, name: str, spelling: str, before: str, after: str
) -> None:
    text = before + spellings(value)[spelling](data.draw) + after
    assert Redactor({name: value}).redact_text(text) == f"{before}[redacted:{name}]{after}"


@settings(max_examples=300, deadline=None)
@given(st.data(), secrets, st.text(), st.text(), st.sampled_from(WRITERS))
def test_in_any_surrounding_text_the_json_stays_valid_and_the_value_is_gone(
    data: st.DataObject, value: str, before: str, after: str, writer: str
) -> None:
    assume(value != "text")  # the document's own key: a secret spelled like it is redacted there too, by design
    document = data.draw(documents(value, "raw", writer, before.replace("{}", "") + "{}" + after.replace("{}", "")))
    redacted = Redactor({"s": value}).redact_bytes(document)
    text = orjson.loads(redacted)["text"]
    assert value not in text.replace("[redacted:s]", "\0" if "\0" not in value else "\1")


@given(st.text(characters, max_size=MIN_REDACT_LENGTH - 1), st.sampled_from(WRITERS), st.data())
def test_a_secret_shorter_than_the_minimum_is_ignored(value: str, writer: str, data: st.DataObject) -> None:
    redactor = Redactor({"short": value})
    document = data.draw(documents(value, "raw", writer, "a {} b"))
    assert not redactor
    assert redactor.redact_bytes(document) is document
    assert redactor.redact_text(f"a {value} b") == f"a {value} b"
