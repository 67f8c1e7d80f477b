"""Redaction of the spellings JSON writers produce, on every path the redactor takes, and before a result is cut."""

from __future__ import annotations

import json

import orjson
import pytest

from mcpmux import wire
from mcpmux.relay.shape import truncate_response
from mcpmux.secrets.redact import Redactor

SECRET = "tok/&<é>" + "0123456789abcdef" * 2  # '/', '&', '<', '>' and 'é' are what writers escape differently
MARKER = "[redacted:api]"


def escaped(value: str, *, upper: bool = False, every: int = 1) -> str:
    """`value` with every `every`-th character as `\\uXXXX` (a surrogate pair beyond the BMP)."""
    out: list[str] = []
    for index, c in enumerate(value):
        if index % every:
            out.append(c)
            continue
        utf16 = c.encode("utf-16-be")
        units = "".join(f"\\u{utf16[i]:02x}{utf16[i + 1]:02x}" for i in range(0, len(utf16), 2))
        out.append(units.upper().replace("\\U", "\\u") if upper else units)
    return "".join(out)


GO = SECRET.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")  # Go's encoding/json
PHP = SECRET.replace("/", "\\/").replace("é", "\\u00e9")  # PHP's json_encode
SPELLED_ON_THE_WIRE = {
    "go": GO,
    "php": PHP,
    "every character, lower-case hex": escaped(SECRET),
    "every character, upper-case hex": escaped(SECRET, upper=True),
    "every other character": escaped(SECRET, upper=True, every=2),
}


@pytest.mark.parametrize("spelled", SPELLED_ON_THE_WIRE.values(), ids=SPELLED_ON_THE_WIRE.keys())
def test_a_secret_json_writers_escaped_on_the_wire_becomes_the_marker(spelled: str) -> None:
    line = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key: ' + spelled.encode() + b'."}]}}'
    redacted = orjson.loads(Redactor({"api": SECRET}).redact_bytes(line))
    assert redacted["result"]["content"][0]["text"] == f"key: {MARKER}."


@pytest.mark.parametrize("spelled", SPELLED_ON_THE_WIRE.values(), ids=SPELLED_ON_THE_WIRE.keys())
def test_a_secret_escaped_in_json_text_inside_a_json_string_becomes_the_marker(spelled: str) -> None:
    # A tool's dict result: the SDK serialises it to text, so the writer's escapes are escaped once more.
    text = json.dumps({"body": json.dumps({"key": "<spelled>"}).replace("<spelled>", spelled)}, indent=2)
    line = orjson.dumps({"content": [{"type": "text", "text": text}]})
    redacted = orjson.loads(Redactor({"api": SECRET}).redact_bytes(line))
    assert json.loads(json.loads(redacted["content"][0]["text"])["body"]) == {"key": MARKER}
    assert Redactor({"api": SECRET}).redact_text(text) == text.replace(json.dumps(spelled)[1:-1], MARKER)


def test_a_secret_made_of_regular_expression_syntax_is_matched_literally() -> None:
    value = r".*+?^$()[]{}|\d"
    redactor = Redactor({"re": value})
    assert redactor.redact_text(f"a {value} b") == "a [redacted:re] b"
    assert redactor.redact_text("a .xx+?^$()[]{}|\\d b") == "a .xx+?^$()[]{}|\\d b"
    assert orjson.loads(redactor.redact_bytes(orjson.dumps({"t": value}))) == {"t": "[redacted:re]"}


def test_a_secret_named_like_its_value_is_redacted_once_not_inside_its_own_marker() -> None:
    assert Redactor({"0000": "0000"}).redact_bytes(b'{"text":"MDAwMA=="}') == b'{"text":"[redacted:0000]"}'


def test_a_numeric_secret_written_as_a_json_number_becomes_the_marker_and_the_json_stays_valid() -> None:
    redacted = Redactor({"pin": "12345678"}).redact_bytes(b'{"n":12345678,"s":"x12345678"}')
    assert orjson.loads(redacted) == {"n": "[redacted:pin]", "s": "x[redacted:pin]"}


def test_a_ten_megabyte_result_dense_with_anchors_is_redacted_through_a_parse() -> None:
    # Every character \u-escaped: anchors everywhere, so the redactor parses rather than decoding windows.
    filler = escaped("lorem ipsum dolor sit amet 0123 ") * 40_000
    line = b'{"text":"' + (filler + escaped(SECRET) + filler).encode() + b'"}'
    assert len(line) > 10_000_000
    text = orjson.loads(Redactor({"api": SECRET}).redact_bytes(line))["text"]
    assert text.count(MARKER) == 1 and SECRET not in text


def test_bytes_that_are_not_json_are_still_redacted() -> None:
    line = b"not json: " + escaped(SECRET).encode() + b" {"
    assert Redactor({"api": SECRET}).redact_bytes(line) == f"not json: {MARKER} {{".encode()


def test_a_result_cut_inside_a_secret_keeps_no_part_of_it() -> None:
    # truncate_result keeps 1024 - 512 - 64 = 448 bytes of the text: here all of the secret but its last character.
    before = "x" * (448 - len(SECRET.encode()) + 1)
    text = before + SECRET + "y" * 2000
    line = wire.result_response("mcpmux-1", {"content": [{"type": "text", "text": text}]})
    result = truncate_response(line, orjson.loads(line), Redactor({"api": SECRET}), 1024, server="alpha")
    assert SECRET[:8] not in orjson.dumps(result).decode()
    assert result["content"][0]["text"].startswith(before + MARKER)
