"""The wire's pure pieces: splitting a byte stream into lines, re-addressing a response, pipe capacity."""

from __future__ import annotations

import fcntl
import itertools
import os
import sys

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpmux import wire
from mcpmux.errors import LineTooLong

F_GETPIPE_SZ = 1032


def split_by(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(
    st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=8),
    st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_chunking_of_a_stream_yields_its_non_blank_lines_in_order(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    buffer = wire.LineBuffer()
    got = [line for chunk in split_by(stream, cuts) for line in buffer.feed(chunk)]
    assert got == [line for line in lines if line.strip()]


def test_a_line_arriving_in_many_pieces_is_one_line_and_the_rest_waits_for_its_newline() -> None:
    buffer = wire.LineBuffer()
    assert buffer.feed(b'{"a":') == []
    assert buffer.feed(b"1") == []
    assert buffer.feed(b'}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert buffer.feed(b":3}\n") == [b'{"c":3}']


def test_a_line_longer_than_the_limit_without_a_newline_is_refused() -> None:
    buffer = wire.LineBuffer(limit=10)
    buffer.feed(b"12345")
    with pytest.raises(LineTooLong):
        buffer.feed(b"678901")


def test_a_long_line_that_ends_within_the_limit_is_kept_whole() -> None:
    buffer = wire.LineBuffer(limit=10)
    assert buffer.feed(b"12345") == []
    assert buffer.feed(b"67890\nab") == [b"1234567890"]


def test_a_response_in_the_sdk_layout_is_readdressed_in_place_and_equals_its_reserialisation() -> None:
    message: dict[str, object] = {
        "jsonrpc": "2.0",
        "id": "m7",
        "result": {"content": [{"type": "text", "text": "x" * 100_000}]},
    }
    line = orjson.dumps(message)
    spliced = wire.with_id(line, message, "m7", 42)
    assert isinstance(spliced, bytes)
    assert orjson.loads(spliced) == {**message, "id": 42}


def test_a_response_in_another_layout_is_reserialised_under_the_new_id() -> None:
    message: dict[str, object] = {"id": "m7", "jsonrpc": "2.0", "result": {}}
    line = orjson.dumps(message)
    assert orjson.loads(wire.with_id(line, message, "m7", "host-1")) == {**message, "id": "host-1"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_a_widened_pipe_holds_a_quarter_megabyte() -> None:
    read_end, write_end = os.pipe()
    try:
        wire.widen_pipe(write_end)
        assert fcntl.fcntl(read_end, F_GETPIPE_SZ) == wire.PIPE_BYTES
    finally:
        os.close(read_end)
        os.close(write_end)


def test_widening_something_that_is_not_a_pipe_changes_nothing_and_raises_nothing() -> None:
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        wire.widen_pipe(fd)
    finally:
        os.close(fd)
