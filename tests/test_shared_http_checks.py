"""The pure checks of serving by URL: the --http address, the Host and Origin rules, and the bearer token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from mcp_types import JSONRPCNotification, JSONRPCRequest, JSONRPCResponse

from mcpmux.errors import MCPMuxError
from mcpmux.paths import state_paths
from mcpmux.shared import token as tokens
from mcpmux.shared.http_bridge import Routes
from mcpmux.shared.loopback import Address, allowed_hosts, host_allowed, origin_allowed, parse_address


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Address("127.0.0.1", 0)),
        ("8765", Address("127.0.0.1", 8765)),
        ("127.0.0.1:0", Address("127.0.0.1", 0)),
        ("localhost:9000", Address("127.0.0.1", 9000)),
        ("127.0.0.2:1", Address("127.0.0.2", 1)),
        ("[::1]:443", Address("::1", 443)),
    ],
)
def test_a_loopback_address_is_accepted(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["0.0.0.0:8080", "[::]:8080", "192.168.1.10:80", "example.com:80", "10.0.0.1:0"])
def test_an_address_off_loopback_is_refused_naming_the_flag_and_the_fix(text: str) -> None:
    with pytest.raises(MCPMuxError, match=r"--http .*(127\.0\.0\.1|loopback)"):
        parse_address(text)


@pytest.mark.parametrize("text", ["", "x", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80", "[::1]80"])
def test_a_malformed_address_is_refused(text: str) -> None:
    with pytest.raises(MCPMuxError, match="--http"):
        parse_address(text)


def test_the_url_brackets_an_ipv6_address() -> None:
    assert Address("::1", 5).url == "http://[::1]:5/mcp"
    assert Address("127.0.0.1", 5).url == "http://127.0.0.1:5/mcp"


def test_only_the_listening_address_or_localhost_with_its_port_is_an_allowed_host() -> None:
    allowed = allowed_hosts(Address("127.0.0.1", 4000))
    assert host_allowed("127.0.0.1:4000", allowed)
    assert host_allowed("LOCALHOST:4000", allowed)
    for header in (None, "", "127.0.0.1", "127.0.0.1:4001", "evil.example:4000", "127.0.0.1:4000.evil.example"):
        assert not host_allowed(header, allowed)
    assert host_allowed("[::1]:4000", allowed_hosts(Address("::1", 4000)))


@pytest.mark.parametrize(
    "origin", [None, "http://localhost", "http://localhost:3000", "https://127.0.0.1:8443", "http://[::1]:80"]
)
def test_no_origin_or_a_loopback_origin_is_served(origin: str | None) -> None:
    assert origin_allowed(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "",
        "file://",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example:3000",
        "ws://localhost:3000",
        "http://localhost:notaport",
        "http://[::1",
    ],
)
def test_any_other_origin_is_refused(origin: str) -> None:
    assert not origin_allowed(origin)


def test_the_token_matches_only_as_a_bearer_credential_of_the_same_value() -> None:
    secret = "a" * 43
    assert tokens.matches(f"Bearer {secret}", secret)
    assert tokens.matches(f"bearer   {secret} ", secret)
    for header in (None, "", "Bearer", "Bearer ", f"Basic {secret}", f"Bearer {secret[:-1]}", f"Bearer {secret}x"):
        assert not tokens.matches(header, secret)
    assert not tokens.matches("Bearer é", secret)  # not ASCII: refused, never an exception


def test_the_token_is_created_once_owner_only_and_read_back(mcpmux_home: Path) -> None:
    paths = state_paths()
    first = tokens.load_or_create(paths)
    path = tokens.token_path(paths)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 43 and tokens.load_or_create(paths) == first


def test_a_token_file_others_can_read_is_refused_with_the_fix(mcpmux_home: Path) -> None:
    paths = state_paths()
    tokens.load_or_create(paths)
    path = tokens.token_path(paths)
    path.chmod(0o644)
    with pytest.raises(MCPMuxError, match=r"readable by other users.*remove it"):
        tokens.load_or_create(paths)


def test_a_token_file_that_is_a_link_is_refused(mcpmux_home: Path, tmp_path: Path) -> None:
    paths = state_paths()
    elsewhere = tmp_path / "planted"
    elsewhere.write_text("b" * 43)
    elsewhere.chmod(0o600)
    path = tokens.token_path(paths)
    path.parent.mkdir(parents=True, mode=0o700)
    path.symlink_to(elsewhere)
    with pytest.raises(MCPMuxError, match=r"cannot read .*remove it"):
        tokens.load_or_create(paths)


def _request(request_id: int | str, token: str | None = None) -> JSONRPCRequest:
    params = {"name": "t", "_meta": {"progressToken": token}} if token is not None else {"name": "t"}
    return JSONRPCRequest(jsonrpc="2.0", id=request_id, method="tools/call", params=params)


def test_progress_goes_with_the_request_whose_token_it_carries_until_that_request_is_answered() -> None:
    routes = Routes()
    routes.received(_request(1, "p1"))
    routes.received(_request("two", "p2"))
    progress = JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progressToken": "p2"})
    assert routes.related(progress) == "two"
    assert routes.related(JSONRPCResponse(jsonrpc="2.0", id="two", result={})) is None
    assert routes.related(progress) is None  # answered: its stream is closed, the GET stream is left


def test_a_servers_request_goes_with_a_request_of_this_host_in_flight_else_the_get_stream() -> None:
    routes = Routes()
    elicit = JSONRPCRequest(jsonrpc="2.0", id=7, method="elicitation/create", params={})
    assert routes.related(elicit) is None
    routes.received(_request(3))
    routes.received(_request(4))
    assert routes.related(elicit) == 3
    routes.related(JSONRPCResponse(jsonrpc="2.0", id=3, result={}))
    assert routes.related(elicit) == 4


def test_a_request_the_host_cancels_is_settled_and_no_longer_takes_the_servers_messages() -> None:
    routes = Routes()
    ended: list[str] = []

    async def end() -> None:
        ended.append("ended")

    assert routes.received(_request(1, "p1"), end) is None
    routes.received(_request(2))
    cancel = JSONRPCNotification(jsonrpc="2.0", method="notifications/cancelled", params={"requestId": 1})
    assert routes.received(cancel) is end
    assert routes.received(cancel) is None  # once
    elicit = JSONRPCRequest(jsonrpc="2.0", id=7, method="elicitation/create", params={})
    assert routes.related(elicit) == 2
    progress = JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progressToken": "p1"})
    assert routes.related(progress) is None
