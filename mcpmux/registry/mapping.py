"""One server.json → an ordinary `[servers.NAME]` table: a command line (never a shell string) or a URL.

Candidates are tried in the order server.json lists them, packages before remotes (`via`
picks a kind): the first one mcpmux can run wins, and each one passed over is a note.

    npm    npx -y IDENTIFIER@VERSION ARGS…                  (runtimeHint: npx)
    pypi   uvx IDENTIFIER@VERSION ARGS…                     (runtimeHint: uvx)
    nuget  dnx IDENTIFIER@VERSION --yes -- ARGS…            (runtimeHint: dnx)
    oci    docker run -i --rm RUNTIME-ARGS… IMAGE:TAG ARGS…  (runtimeHint: docker or podman)
    remote streamable HTTP preferred; SSE only where mcpmux reads it as SSE (a URL ending in /sse)

Every part of the command comes from a registry anyone can publish to, so nothing is taken on
faith: the runtime must be the one the package type implies (a `runtimeHint` of `sh` is
refused), identifiers and versions must look like what their registry allows (no leading `-`
that the runtime would read as an option), the version must be exact, URLs must be https
(http only to this machine), and no value may hold a control character. An input that would
put a secret on the command line is refused: secrets reach a server through env and headers
only, where the keyring fills them. Docker's `-e NAME=VALUE` becomes `-e NAME` plus `env`, so
the value (often a secret) stays out of the command line. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from mcpmux.errors import RegistryError
from mcpmux.profile.credentials import is_credential_name  # the loader's own rule
from mcpmux.profile.templates import MARKER
from mcpmux.registry.document import Listing
from mcpmux.registry.inputs import Ask, Input, Parts, PendingSecret, Resolver, SecretPart, is_secret, plain

Table = dict[str, object]

RUNTIMES: dict[str, tuple[str, ...]] = {
    "npm": ("npx",),
    "pypi": ("uvx",),
    "nuget": ("dnx",),
    "oci": ("docker", "podman"),
}
KINDS = (*RUNTIMES, "remote")
_IDENTIFIERS = {
    "npm": re.compile(r"(@[A-Za-z0-9][A-Za-z0-9._~-]*/)?[A-Za-z0-9][A-Za-z0-9._~-]*"),
    "pypi": re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"),
    "nuget": re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*"),
    "oci": re.compile(r"[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[a-f0-9]{64})?"),
}
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DOCKER_ENV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Where each runtime installs from by default: a package said to live elsewhere would be fetched from here instead.
_DEFAULT_SOURCES = {
    "npm": ("https://registry.npmjs.org",),
    "pypi": ("https://pypi.org",),
    "nuget": ("https://api.nuget.org/v3/index.json", "https://api.nuget.org"),
}
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
# Runtime flags that fetch the package from somewhere else than what the MCP registry verified.
_SOURCE_FLAGS = {
    "npm": ("--registry", "--userconfig", "--globalconfig", "-p", "--package"),
    "pypi": (
        "--from",
        "--with",
        "--index",
        "--index-url",
        "-i",
        "--extra-index-url",
        "--default-index",
        "-f",
        "--find-links",
        "--with-requirements",
        "--config-file",
    ),
    "nuget": ("--source", "--add-source", "--configfile"),
    "oci": (),
}
# Docker flags that hand the container more of this machine: allowed (servers use them), but said out loud.
_POWER_FLAGS = ("--privileged", "--cap-add", "--pid", "--ipc", "--userns", "--security-opt", "--device", "--uts")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class Plan:
    """What `add` writes: the server's table, the secrets to store first, and what the user should know."""

    server: str
    table: Table
    secrets: tuple[PendingSecret, ...]
    via: str
    """What was chosen, e.g. `npm @scope/pkg@1.2.3` or `remote https://…`."""
    notes: tuple[str, ...]


def server_name_for(registry_name: str) -> str:
    """A profile server name from a registry name: its part after the slash, as [A-Za-z0-9_-], no `__`, ≤ 32."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", registry_name.rsplit("/", 1)[-1]).strip("-")
    while "__" in name:
        name = name.replace("__", "_")
    return name[:32].strip("-_") or "server"


def _items(value: object) -> list[Mapping[str, object]]:
    return (
        [cast(dict[str, object], v) for v in cast(list[object], value) if isinstance(v, dict)]
        if isinstance(value, list)
        else []
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _clean(text: str, where: str) -> str:
    if _CONTROL.search(text):
        raise RegistryError(f"{where}: the registry's value holds a control character; refusing to write it")
    return text


def _escaped(text: str, where: str) -> str:
    """Literal text inside a `{secret:…}` template: braces doubled."""
    return _clean(text, where).replace("{", "{{").replace("}", "}}")


def _https(url: str, where: str) -> str | None:
    """Why `url` cannot be used (None when it can): http(s) only, and https unless it is this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}: '{url}' is not an http(s) URL"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        return f"{where}: '{url}' is plain http to another machine (its headers would travel unencrypted)"
    return None


def _package_problem(package: Mapping[str, object], where: str) -> str | None:
    """Why this package cannot become a command line (None when it can); decided before anything is asked."""
    kind = _text(package.get("registryType"))
    if kind not in RUNTIMES:
        return f"{where}: '{kind}' packages are not supported (mcpmux runs {', '.join(RUNTIMES)} packages and remotes)"
    transport = package.get("transport")
    transport_type = _text(cast(dict[str, object], transport).get("type")) if isinstance(transport, dict) else "stdio"
    if transport_type != "stdio":
        return f"{where}: runs its own '{transport_type}' server; mcpmux starts packages that speak stdio"
    hint = package.get("runtimeHint")
    if hint is not None and hint not in RUNTIMES[kind]:
        return f"{where}: runtime '{hint}' is not how {kind} packages run ({' or '.join(RUNTIMES[kind])})"
    identifier, version = _text(package.get("identifier")), _text(package.get("version"))
    if not _IDENTIFIERS[kind].fullmatch(identifier) or len(identifier) > 255:
        return f"{where}: '{identifier}' is not a valid {kind} package name"
    base = _text(package.get("registryBaseUrl")).rstrip("/")
    if kind == "oci":  # the image reference names its registry (Docker Hub when its first part is no host)
        first = identifier.split("/", 1)[0]
        pulls_from = first if "/" in identifier and ("." in first or ":" in first) else "docker.io"
        host = urlsplit(base).hostname or "" if base else pulls_from
        if host != pulls_from and not {host, pulls_from} <= set(_DOCKER_HUB):
            return f"{where}: said to come from {base}, but '{identifier}' is pulled from {pulls_from}"
    elif base and base not in _DEFAULT_SOURCES[kind]:
        return f"{where}: comes from {base}, but {RUNTIMES[kind][0]} installs from {_DEFAULT_SOURCES[kind][0]}"
    if kind == "oci" and not _pinned_image(identifier) and not version:
        return f"{where}: image '{identifier}' has no tag or digest; mcpmux installs exact versions only"
    if (kind != "oci" or version) and (not _VERSION.fullmatch(version) or version == "latest"):
        return f"{where}: version '{version}' is not an exact version; mcpmux installs exact versions only"
    for argument in _items(package.get("runtimeArguments")):
        flag = _text(argument.get("name"))
        if argument.get("type") != "named" or not flag.startswith("-"):
            # Before the package, anything but an option is read as what to run (`npx evil pkg`, `docker run evil`).
            shown = flag or _text(argument.get("value")) or _text(argument.get("valueHint"))
            return f"{where}: runtime argument '{shown}' is not an option; the runtime would run it instead"
        if flag.split("=", 1)[0] in _SOURCE_FLAGS[kind]:
            return f"{where}: runtime argument {flag} would install from somewhere else than the registry verified"
    for group in ("runtimeArguments", "packageArguments"):
        for argument in _items(package.get(group)):
            if is_secret(argument) and not (kind == "oci" and group == "runtimeArguments" and _docker_env(argument)):
                name = _text(argument.get("name")) or _text(argument.get("valueHint")) or "an argument"
                return f"{where}: {name} would put a secret on the command line; mcpmux passes secrets via env only"
    return None


def _pinned_image(identifier: str) -> bool:
    return "@sha256:" in identifier or ":" in identifier.rsplit("/", 1)[-1]


def _docker_env(argument: Mapping[str, object]) -> bool:
    return _text(argument.get("name")) in ("-e", "--env") and bool(_DOCKER_ENV.fullmatch(_text(argument.get("value"))))


class _Mapper:
    def __init__(self, listing: Listing, server: str, answers: Mapping[str, str], ask: Ask) -> None:
        self.listing = listing
        self.inputs = Resolver(server, answers, ask)
        self.notes: list[str] = []
        self.subject = ""
        """What runs: `package@version`, the image, or the URL."""

    def value(self, parts: Parts, name: str, where: str) -> object:
        """An env or header value as the profile writes it: text, `{ secret = … }` or a `{secret:…}` template."""
        if not any(isinstance(p, SecretPart) for p in parts):
            text = _clean(plain(parts, where), where)
            if text and is_credential_name(name):  # the loader refuses credentials in plain text: keyring it
                parts = (self.inputs.store(text, name, where),)
            elif MARKER in text:  # would read as a template: escape its braces
                return text.replace("{", "{{").replace("}", "}}")
            else:
                return text
        if len(parts) == 1 and isinstance(parts[0], SecretPart):
            return {"secret": parts[0].name}
        return "".join(f"{{secret:{p.name}}}" if isinstance(p, SecretPart) else _escaped(p, where) for p in parts)

    def arguments(self, raw: object, where: str, env: Table, *, runtime: str | None = None) -> list[str]:
        """Arguments as argv items. For a `runtime`'s own options each is one item (`--flag=value`), so no
        value can be taken for what to run whatever the runtime thinks the flag takes."""
        argv: list[str] = []
        for index, argument in enumerate(_items(raw)):
            name = _text(argument.get("name"))
            if argument.get("type") == "named" and name:
                shown = f"{where} argument {name}"
                if runtime == "oci" and _docker_env(argument):  # -e NAME=VALUE → -e NAME, with NAME in env
                    var, template = cast(re.Match[str], _DOCKER_ENV.fullmatch(_text(argument.get("value")))).groups()
                    parts = self.inputs.resolve({**argument, "value": template}, var, f"{shown} {var}")
                    if parts is not None:
                        env[var] = self.value(parts, var, shown)
                        argv += [name, var]
                    continue
                parts = self.inputs.resolve(argument, name.lstrip("-") or name, shown)
                if parts is None:
                    continue
                text = _clean(plain(parts, shown), shown)
                if argument.get("format") == "boolean" and "value" not in argument:
                    argv += [name] if text == "true" else []
                else:
                    argv += [f"{name}={text}"] if runtime else [name, text]
            else:
                hint = _text(argument.get("valueHint")) or f"arg{index + 1}"
                shown = f"{where} argument <{hint}>"
                parts = self.inputs.resolve(argument, hint, shown)
                if parts is not None:
                    argv.append(_clean(plain(parts, shown), shown))
            if argument.get("isRepeated") is True:
                self.notes.append(f"{shown} may be repeated; add more to 'args' by hand")
        return argv

    def environment(self, raw: object, where: str, env: Table) -> None:
        for variable in _items(raw):
            name = _text(variable.get("name"))
            if not _ENV_NAME.fullmatch(name):
                raise RegistryError(f"{where}: '{name}' is not a valid environment variable name")
            parts = self.inputs.resolve(variable, name, f"environment variable {name}")
            if parts is not None:
                env[name] = self.value(parts, name, f"environment variable {name}")

    def package(self, package: Mapping[str, object], where: str) -> Table:
        kind = _text(package.get("registryType"))
        identifier, version = _text(package.get("identifier")), _text(package.get("version"))
        runtime = _text(package.get("runtimeHint")) or RUNTIMES[kind][0]
        env: Table = {}
        runtime_args = self.arguments(package.get("runtimeArguments"), where, env, runtime=kind)
        self.environment(package.get("environmentVariables"), where, env)
        package_args = self.arguments(package.get("packageArguments"), where, env)
        self.subject = f"{identifier}@{version}"
        if kind == "oci":
            self.subject = identifier if _pinned_image(identifier) else f"{identifier}:{version}"
            powers = sorted({a.split("=", 1)[0] for a in runtime_args} & set(_POWER_FLAGS))
            if powers:
                self.notes.append(f"{where} gives the container more of this machine: {', '.join(powers)}")
            passed = {runtime_args[i + 1] for i, a in enumerate(runtime_args[:-1]) if a in ("-e", "--env")}
            env_flags = [flag for var in env if var not in passed for flag in ("-e", var)]  # the container's env
            args = ["run", "-i", "--rm", *runtime_args, *env_flags, self.subject, *package_args]
        elif kind == "npm":
            yes = [] if {"-y", "--yes"} & set(runtime_args) else ["-y"]  # npx must not stop to ask on the MCP pipe
            args = [*yes, *runtime_args, self.subject, *package_args]
        elif kind == "pypi":
            args = [*runtime_args, self.subject, *package_args]
        else:
            args = [*runtime_args, self.subject, "--yes", "--", *package_args]
        table: Table = {"command": runtime, "args": args}
        if env:
            table["env"] = env
        return table

    def remote(self, remote: Mapping[str, object], where: str) -> Table:
        template = {"value": _text(remote.get("url")), "variables": remote.get("variables")}
        parts = self.inputs.resolve(template, "url", where)
        if parts is None:
            if self.inputs.missing:
                return {}  # `_finish` names what is missing
            raise RegistryError(f"{where}: its URL needs a value for each {{variable}} in it; give them with --set")
        url = _clean(plain(parts, f"{where} URL"), where)
        if problem := _https(url, where) or ("{" in url and f"{where}: '{url}' still holds a {{placeholder}}"):
            raise RegistryError(problem)
        headers: Table = {}
        for header in _items(remote.get("headers")):
            name = _text(header.get("name"))
            if not _HEADER_NAME.fullmatch(name):
                raise RegistryError(f"{where}: '{name}' is not a valid HTTP header name")
            value = self.inputs.resolve(header, name, f"header {name}")
            if value is not None:
                headers[name] = self.value(value, name, f"header {name}")
        self.subject = url
        return {"url": url, "headers": headers} if headers else {"url": url}


def _remote_problem(remote: Mapping[str, object], where: str) -> str | None:
    kind, url = _text(remote.get("type")), _text(remote.get("url"))
    if kind not in ("streamable-http", "sse"):
        return f"{where}: transport '{kind}' is not supported"
    if kind == "sse" and not urlsplit(url).path.rstrip("/").endswith("/sse"):
        return f"{where}: an SSE endpoint whose path does not end in /sse (mcpmux would speak streamable HTTP to it)"
    if problem := _https(re.sub(r"\{[^{}]*\}", "0", url), where):  # placeholders filled later; checked again then
        return problem
    if is_secret({"variables": remote.get("variables")}):
        return f"{where}: would put a secret in the URL; mcpmux passes secrets in headers only"
    return None


def _candidates(server: Mapping[str, object], via: str | None) -> list[tuple[str, str, Mapping[str, object]]]:
    """(kind, where, entry) in preference order: packages as listed, then streamable HTTP remotes, then SSE."""
    found: list[tuple[str, str, Mapping[str, object]]] = []
    for index, package in enumerate(_items(server.get("packages"))):
        found.append((_text(package.get("registryType")), f"packages[{index}]", package))
    remotes = list(enumerate(_items(server.get("remotes"))))
    remotes.sort(key=lambda item: item[1].get("type") != "streamable-http")  # stable: listed order otherwise
    found += [("remote", f"remotes[{index}]", remote) for index, remote in remotes]
    return [c for c in found if via is None or c[0] == via]


def plan_server(listing: Listing, server: str, answers: Mapping[str, str], ask: Ask, via: str | None = None) -> Plan:
    """Map `listing`'s server.json to a `[servers.SERVER]` table; `RegistryError` if nothing in it can run."""
    mapper = _Mapper(listing, server, answers, ask)
    passed_over: list[str] = []
    for kind, where, entry in _candidates(listing.server, via):
        check = _remote_problem if kind == "remote" else _package_problem
        if (problem := check(entry, where)) is not None:
            passed_over.append(problem)
            continue
        table = mapper.remote(entry, where) if kind == "remote" else mapper.package(entry, where)
        _finish(mapper, listing, answers)

        return Plan(
            server=server,
            table=table,
            secrets=tuple(mapper.inputs.secrets.values()),
            via=f"{kind} {mapper.subject}",
            notes=(*(f"passed over {p}" for p in passed_over), *mapper.notes),
        )
    what = f"no {via} entry" if via else "nothing"
    reasons = "; ".join(passed_over) or "it lists no packages and no remotes"
    raise RegistryError(f"{listing.name}@{listing.version}: {what} mcpmux can run ({reasons})")


def _finish(mapper: _Mapper, listing: Listing, answers: Mapping[str, str]) -> None:
    missing: list[Input] = mapper.inputs.missing
    if missing:
        listed = "; ".join(f"{i.what}" + (f" ({i.description})" if i.description else "") for i in missing)
        sets = " ".join(f"--set {i.key}=VALUE" for i in missing)
        raise RegistryError(f"{listing.name} needs values for: {listed}; give them with {sets}")
    unused = sorted(set(answers) - mapper.inputs.used)
    if unused:
        raise RegistryError(
            f"{listing.name} has no input named {', '.join(unused)}; "
            "--set takes an environment variable, header, argument (without dashes) or {variable} name"
        )
