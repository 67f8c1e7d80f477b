"""Shared mode's handoff, in process: which descriptors may come with a hello, and how they are received."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from mcpmux.shared import address, sock
from mcpmux.shared.handoff import close_all, fds_mismatch, receive_fds, wants_handoff


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    close_all([read_end, write_end])


def test_a_pipe_pair_handed_over_is_accepted(pipe: tuple[int, int]) -> None:
    assert fds_mismatch(list(pipe)) is None


def test_a_serve_must_hand_over_exactly_two_descriptors(pipe: tuple[int, int]) -> None:
    assert fds_mismatch([]) == "the serve handed over 0 descriptors, not its stdin and stdout"
    assert fds_mismatch([*pipe, pipe[0]]) == "the serve handed over 3 descriptors, not its stdin and stdout"


def test_a_regular_file_handed_over_is_refused(tmp_path: Path, pipe: tuple[int, int]) -> None:
    planted = tmp_path / "planted"
    planted.write_bytes(b"")
    fd = os.open(planted, os.O_RDONLY)
    try:
        assert fds_mismatch([pipe[0], fd]) == "a descriptor handed over is neither a pipe nor a socket"
    finally:
        os.close(fd)


def test_only_pipes_and_sockets_are_offered(tmp_path: Path, pipe: tuple[int, int]) -> None:
    assert sock.handoff_fds(*pipe) == list(pipe)
    with (tmp_path / "requests").open("wb") as file:
        assert sock.handoff_fds(pipe[0], file.fileno()) == []


def test_a_hello_says_whether_it_offers_the_hosts_stdio() -> None:
    assert wants_handoff(address.hello("k", pid=1, handoff=True))
    assert not wants_handoff(address.hello("k", pid=1, handoff=False))


@pytest.mark.anyio
async def test_handed_over_descriptors_arrive_whole_and_are_not_inherited(pipe: tuple[int, int]) -> None:
    left, right = socket.socketpair()
    received: list[int] = []
    with left, right:
        right.setblocking(False)
        sock.send_stdio(left, list(pipe))
        with anyio.fail_after(5):
            await receive_fds(right, received)
    try:
        assert [os.fstat(fd).st_ino for fd in received] == [os.fstat(fd).st_ino for fd in pipe]
        assert not any(os.get_inheritable(fd) for fd in received)  # no downstream inherits a host's stdio
    finally:
        close_all(received)
    assert received == []


@pytest.mark.anyio
async def test_a_serve_that_hangs_up_instead_hands_over_nothing() -> None:
    left, right = socket.socketpair()
    received: list[int] = []
    with right:
        right.setblocking(False)
        left.close()
        with anyio.fail_after(5):
            await receive_fds(right, received)
    assert received == []
