"""What a gateway serving by URL accepts from the network: where it listens, and which Host and Origin it serves.

It listens on loopback only: the bearer token is the only thing between a port on another interface
and the user's downstreams. A browser is the other attacker: a page can send requests to
127.0.0.1 (CSRF) or re-point its own name at it (DNS rebinding). The Host header must name the address
the gateway listens on (a rebound name does not), and a request that carries an Origin is served only
when that origin is itself on loopback.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcpmux.errors import MCPMuxError

FLAG = "--http"
LOCALHOST = "localhost"
LOOPBACK_NAMES = frozenset({LOCALHOST, "127.0.0.1", "::1"})
"""The hostnames of the pages that may call the gateway: this machine's, as browsers write them."""
ORIGIN_SCHEMES = ("http", "https")


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    """The literal address to bind: 127.0.0.1 for `localhost`; an IPv6 one without brackets."""
    port: int

    def with_port(self, port: int) -> Address:
        return Address(self.host, port)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}/mcp"


def parse_address(text: str) -> Address:
    """`[HOST:]PORT` as given to --http: HOST a loopback address (127.0.0.1 when left out), PORT 0 for any free one."""
    text = text.strip()
    if text.startswith("["):  # [::1]:PORT
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise _bad(text, "an IPv6 address is written [::1]:PORT")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    elif ":" in text:
        raise _bad(text, "an IPv6 address is written [::1]:PORT")
    else:
        host, port = "127.0.0.1", text
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise _bad(text, "PORT is a number from 0 (any free port) to 65535")
    return Address(_loopback_host(host, text), int(port))


def _loopback_host(host: str, text: str) -> str:
    if host.lower() == LOCALHOST:
        return "127.0.0.1"  # bound as the address: what `localhost` resolves to is the resolver's choice
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise _bad(text, f"'{host}' is not an IP address; use 127.0.0.1, [::1] or localhost") from None
    if not ip.is_loopback:
        raise _bad(
            text,
            f"{host} is not a loopback address: mcpmux serves by URL on this machine only "
            "(anyone who reaches the port and has the token runs your downstreams); use 127.0.0.1:PORT",
        )
    return str(ip)


def _bad(text: str, why: str) -> MCPMuxError:
    return MCPMuxError(f"{FLAG} {text!r}: {why}")


def allowed_hosts(address: Address) -> frozenset[str]:
    """The Host header values a request to `address` carries (lower case): its literal address, or localhost."""
    return frozenset({address.netloc.lower(), f"{LOCALHOST}:{address.port}"})


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    return header is not None and header.strip().lower() in allowed


def origin_allowed(header: str | None) -> bool:
    """A request without Origin is a host's (browsers always send one cross-origin); else only a loopback page."""
    if header is None:
        return True
    try:
        parts = urlsplit(header.strip())
        hostname = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ORIGIN_SCHEMES and hostname in LOOPBACK_NAMES


def loopback_origins() -> list[str]:
    """`origin_allowed` as the SDK transport's allow-list (its second check): each scheme and name, any port."""
    names = ("localhost", "127.0.0.1", "[::1]")
    return [f"{scheme}://{name}{port}" for scheme in ORIGIN_SCHEMES for name in names for port in ("", ":*")]
