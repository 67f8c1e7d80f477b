"""GETs against an MCP registry's API v0.1, answered from the cache when the registry cannot answer.

    GET /v0.1/servers?search=TERM&version=latest[&cursor=…]   search (`metadata.nextCursor` pages)
    GET /v0.1/servers/{name}/versions/{version|latest}         one server version

A server name holds a `/`, so it is percent-encoded whole into one path segment (as is the
version: `1.0.0+build` has a `+`). Which registry: `--registry`, else `MCPMUX_REGISTRY`, else
the profile's `registry` key (only if the profile is yours or trusted: a cloned repository
must not choose where your servers come from), else `url` in `registry.toml` of the config
folder (your own setting), else the official one. A registry is https,
or http on this machine only. Blocking stdlib HTTP: only the CLI uses this, one request at a
time; each is bounded by a timeout and answers by a size limit.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode, urlsplit

import orjson

from mcpmux.errors import RegistryError
from mcpmux.paths import state_paths
from mcpmux.registry.cache import ResponseCache
from mcpmux.registry.document import Listing, Page, check_name, parse_listing, parse_page

DEFAULT_REGISTRY = "https://registry.modelcontextprotocol.io"
REGISTRY_ENV = "MCPMUX_REGISTRY"
MAX_BODY = 8 * 1024 * 1024
TIMEOUT_SECONDS = 20.0
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def check_registry_url(url: str, where: str) -> str:
    """`url` without a trailing slash if it may be a registry: https, or http to this machine."""
    parts = urlsplit(url)
    if (
        not url.isprintable()
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        raise RegistryError(f"{where}: '{url}' is not a registry URL; write it like https://registry.example.com")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise RegistryError(
            f"{where}: '{url}' is plain http to another machine, so anyone on the way could change what gets "
            "installed; use https"
        )
    return url.rstrip("/")


USER_SETTINGS = "registry.toml"


def user_registry() -> tuple[str, str] | None:
    """`url` from `registry.toml` in the config folder, with the file's path; None when there is no such file."""
    path = state_paths().config_dir / USER_SETTINGS
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{path}: cannot be read ({exc}); fix it or remove it") from None
    url = data.get("url")
    if set(data) != {"url"} or not isinstance(url, str):
        raise RegistryError(f'{path}: holds one key, url = "https://registry.example.com"; fix it or remove it')
    return check_registry_url(url, str(path)), str(path)


def choose_registry(flag: str | None, profile_registry: str | None, profile_trusted: bool) -> tuple[str, str]:
    """(registry URL, where that choice came from)."""
    if flag:
        return check_registry_url(flag, "--registry"), "--registry"
    if env := os.environ.get(REGISTRY_ENV):
        return check_registry_url(env, REGISTRY_ENV), REGISTRY_ENV
    if profile_registry:
        if not profile_trusted:
            raise RegistryError(
                f"the profile sets registry = '{profile_registry}' but is not trusted, and an untrusted profile "
                "does not choose where servers come from; review and trust it (mcpmux profile trust), "
                "or pass --registry URL"
            )
        return check_registry_url(profile_registry, "the profile's 'registry'"), "the profile's 'registry' key"
    if (setting := user_registry()) is not None:
        return setting
    return DEFAULT_REGISTRY, "the official registry"


class _SameSecurityRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only where a registry URL may point: never from https down to http elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_registry_url(newurl, f"a redirect from {req.full_url}")  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # pyright: ignore[reportUnknownArgumentType]


_OPENER = urllib.request.build_opener(_SameSecurityRedirects)


class RegistryClient:
    def __init__(self, base: str, cache: ResponseCache | None = None, *, offline: bool = False) -> None:
        self.base = base
        self.cache = cache or ResponseCache()
        self.offline = offline
        self.stale: str | None = None
        """Set when any answer came from the cache: when the oldest one was fetched, and why."""

    def server(self, name: str, version: str = "latest") -> Listing:
        path = f"/v0.1/servers/{quote(check_name(name), safe='')}/versions/{quote(version, safe='')}"
        missing = f"{self.base} has no server '{name}'" + ("" if version == "latest" else f" at version {version}")
        url = self.base + path
        listing = parse_listing(self._get(url, f"{missing}; find one with `mcpmux search TERM`"), url)
        if listing.name != name or version not in ("latest", listing.version):
            # A registry (or whatever sits in its place) answering with another server must not get it installed.
            raise RegistryError(
                f"{url} answered with {listing.name}@{listing.version}, not the {name}@{version} asked for; "
                "refusing it: check that the registry URL is right"
            )
        return listing

    def search(self, term: str, *, limit: int = 30, max_pages: int = 5) -> tuple[list[Listing], int]:
        """Latest versions matching `term` (the registry matches names), following pages until `limit`;
        and how many entries were left out as malformed."""
        found: list[Listing] = []
        malformed = 0
        cursor: str | None = None
        for _ in range(max_pages):
            query = {"search": term, "version": "latest", "limit": str(min(limit, 100))}
            if cursor:
                query["cursor"] = cursor
            url = f"{self.base}/v0.1/servers?{urlencode(query)}"
            page: Page = parse_page(self._get(url, f"{self.base} found nothing for '{term}'"), url)
            found += page.listings
            malformed += page.malformed
            cursor = page.next_cursor
            if cursor is None or len(found) >= limit:
                break
        return found[:limit], malformed

    def _get(self, url: str, not_found: str) -> object:
        if self.offline:
            return self._cached(url, "offline (--offline)")
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "mcpmux"})
        try:
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                data = response.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise RegistryError(not_found) from None
            if exc.code >= 500 or exc.code == 429:
                return self._cached(url, f"the registry answered HTTP {exc.code}")
            raise RegistryError(f"{self.base} refused the request (HTTP {exc.code}: {exc.reason})") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return self._cached(url, f"{self.base} cannot be reached ({reason})")
        if len(data) > MAX_BODY:
            raise RegistryError(f"{url}: the answer is over {MAX_BODY // (1024 * 1024)} MiB; refusing it")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise RegistryError(f"{url}: the answer is not JSON; is {self.base} an MCP registry?") from None
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs the offline copy
            self.cache.put(url, body)
        return body

    def _cached(self, url: str, why: str) -> object:
        cached = self.cache.get(url)
        if cached is None:
            raise RegistryError(f"{why}, and there is no cached answer for {url}; try again when it can be reached")
        self.stale = f"{why}: using the answer cached at {cached.fetched_at}"
        return cached.body
