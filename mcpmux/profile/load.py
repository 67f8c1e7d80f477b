"""Profiles: TOML → a frozen, validated `Profile` (finding them: `profile_lookup`).

`load_profile` collects every problem before raising, so one `mcpmux validate`
shows the whole list. Unknown keys are errors, not warnings: a typo in a shared
profile (say `timout_seconds`) must never be silently ignored. tomllib reports no
line numbers for values, so `lines.LineIndex` scans the text for key paths itself.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar, cast
from urllib.parse import urlsplit

from mcpmux.errors import Problem, ProfileError, TemplateError
from mcpmux.profile.credentials import is_credential_name
from mcpmux.profile.inherit import merge_layers, resolve_layers
from mcpmux.profile.lines import Key, LineIndex
from mcpmux.profile.model import DEFAULT_MAX_NAME_LENGTH, AuditSpec, EnvValue, Profile, SecretRef, ServerSpec
from mcpmux.profile.oauth_table import parse_oauth
from mcpmux.profile.policy_table import parse_policy
from mcpmux.profile.search_path import check_search_path
from mcpmux.profile.templates import parse_secret_template

_MODES = ("block", "warn", "allow")
_BUDGET_CHOICES: dict[str, tuple[str, ...]] = {
    "on_tool_change": _MODES,
    "on_new_tool": _MODES,
    "expose": ("all", "search"),
}
_TOP_KEYS = (
    *("extends", "description", "max_name_length", "path", "servers", "policy", "audit"),
    *(*_BUDGET_CHOICES, "max_tools", "hide_flagged", "registry", "shared"),
)
# Keys only a local (`command`) or only a remote (`url`) downstream uses; the rest apply to both.
_ONLY_FOR = {"args": "command", "cwd": "command", "env": "command", "headers": "url", "oauth": "url"}
_SERVER_KEYS = (
    "command",
    "url",
    *_ONLY_FOR,
    "not_credentials",
    "timeout_seconds",
    "startup_timeout_seconds",
    "enabled",
    "aliases",
    "namespace",
    "roots",
    "max_output_bytes",
    "start",
    "idle_timeout_seconds",
    "health_interval_seconds",
    "restart",
    "shared",
)
_AUDIT_KEYS = ("args", "required")
_ARGS_MODES = ("digest", "none", "redacted")  # profile_model.AuditArgsMode, the default first
_RESTART_KEYS = ("max_restarts", "window_seconds", "backoff_initial_seconds", "backoff_max_seconds")

_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_EXPOSED_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SECRET_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token

_SECRET_FIX = 'write { secret = "NAME" } with NAME of [A-Za-z0-9._-], 1-128 chars'

T = TypeVar("T")


def _toml_type(value: object) -> str:
    names: list[tuple[type, str]] = [(bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string")]
    names += [(list, "an array"), (dict, "a table"), (datetime, "a datetime"), (date, "a date"), (time, "a time")]
    return next((name for kind, name in names if isinstance(value, kind)), type(value).__name__)


class _Checker:
    """Collects problems against one profile file while reading its parsed tables."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = LineIndex(text)
        self.problems: list[Problem] = []

    def problem(self, key: Key, message: str, fix: str = "") -> None:
        self.problems.append(Problem(self.path, self.lines.line(key), ".".join(key), message, fix))

    def unknown_keys(self, table: Mapping[str, object], known: tuple[str, ...], where: Key) -> None:
        for name in table:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                self.problem((*where, name), f"unknown key '{name}'", fix)

    def typed(self, table: Mapping[str, object], name: str, where: Key, kind: type[T], what: str) -> T | None:
        """The value at `name` if it has the right type; a problem and None if not; None if absent."""
        value = table.get(name)
        # bool is an int in Python but not in TOML.
        if value is None or (isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)):
            return value
        self.problem((*where, name), f"must be {what}, not {_toml_type(value)}", f"write it as {what}")
        return None

    def table(self, table: Mapping[str, object], name: str, where: Key, what: str = "a table") -> dict[str, object]:
        """The sub-table at `name`; empty if absent, or (with a problem) if it is not a table."""
        value = table.get(name, {})
        if isinstance(value, dict):
            return cast(dict[str, object], value)
        self.problem((*where, name), f"must be {what}, not {_toml_type(value)}", f"write it as {what}")
        return {}

    def string_list(self, table: Mapping[str, object], name: str, where: Key) -> tuple[str, ...]:
        items = table.get(name, [])
        if not isinstance(items, list):
            self.problem((*where, name), f"must be an array of strings, not {_toml_type(items)}", 'write ["..."]')
            return ()
        for index, item in enumerate(cast(list[object], items)):
            if not isinstance(item, str):
                self.problem((*where, name), f"item {index} must be a string, not {_toml_type(item)}", "quote it")
        return tuple(i for i in cast(list[object], items) if isinstance(i, str))

    def positive(self, table: Mapping[str, object], name: str, where: Key) -> float | None:
        value = table.get(name)
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
            return None if value is None else float(value)
        self.problem((*where, name), f"must be a number of seconds above 0, not {value!r}", "write e.g. 30")
        return None

    def env_table(
        self, table: Mapping[str, object], name: str, where: Key, header: bool, plain: frozenset[str] = frozenset()
    ) -> Mapping[str, EnvValue]:
        """`env` or `headers`: literal values, secret references and templates; `plain` names are not credentials."""
        result: dict[str, EnvValue] = {}
        for var, value in self.table(table, name, where).items():
            key = (*where, name, var)
            if header and not _HEADER_NAME.fullmatch(var):
                self.problem(key, f"'{var}' is not a valid HTTP header name", "use letters, digits and dashes")
            elif not header and not _ENV_NAME.fullmatch(var):
                self.problem(key, f"'{var}' is not a valid environment variable name", "use [A-Za-z_][A-Za-z0-9_]*")
            if isinstance(value, str):
                try:
                    parsed = parse_secret_template(value)  # "Bearer {secret:NAME}" → a SecretTemplate
                except TemplateError as exc:
                    self.problem(key, str(exc), exc.fix)
                    continue
                if isinstance(parsed, str) and parsed and var not in plain and is_credential_name(var):
                    fix = (
                        f'write {{ secret = "{var.lower()}" }} and run `mcpmux secret set {var.lower()}`; '
                        f'if it is no credential, list "{var}" in {".".join(where)}.not_credentials'
                    )
                    self.problem(key, "looks like a credential; secrets never sit in the profile", fix)
                result[var] = parsed
            elif isinstance(value, dict):
                ref = self.secret_ref(cast(dict[str, object], value), key)
                if ref is not None:
                    result[var] = ref
            else:
                self.problem(key, f'must be a string or {{ secret = "NAME" }}, not {_toml_type(value)}', "quote it")
        return MappingProxyType(result)

    def secret_ref(self, value: Mapping[str, object], key: Key) -> SecretRef | None:
        self.unknown_keys(value, ("secret",), key)
        name = value.get("secret")
        if isinstance(name, str) and _SECRET_NAME.fullmatch(name):
            return SecretRef(name)
        shown = "nothing" if name is None else repr(name)
        self.problem((*key, "secret"), f"a secret reference needs a secret name, not {shown}", _SECRET_FIX)
        return None

    def aliases(self, table: Mapping[str, object], where: Key) -> Mapping[str, str]:
        result: dict[str, str] = {}
        for original, exposed in self.table(table, "aliases", where, "a table of tool name = exposed name").items():
            key = (*where, "aliases", original)
            if not isinstance(exposed, str):
                self.problem(key, f"must be a string, not {_toml_type(exposed)}", "write the exposed name in quotes")
            elif not _EXPOSED_NAME.fullmatch(exposed):
                self.problem(key, f"'{exposed}' is not a valid exposed name", "use [A-Za-z0-9_-], 1-128 chars")
            elif exposed in result.values():
                self.problem(key, f"'{exposed}' is already the alias of another tool", "give each tool its own name")
            else:
                result[original] = exposed
        return MappingProxyType(result)


def _check_server(c: _Checker, name: str, raw: object) -> ServerSpec | None:
    where: Key = ("servers", name)
    if not _SERVER_NAME.fullmatch(name) or "__" in name:
        c.problem(where, f"server name '{name}' is invalid", "use [A-Za-z0-9_-], at most 32 chars, and no '__'")
    if not isinstance(raw, dict):
        c.problem(where, f"must be a table, not {_toml_type(raw)}", f"write it as [servers.{name}]")
        return None
    table = cast(dict[str, object], raw)
    c.unknown_keys(table, _SERVER_KEYS, where)
    command = c.typed(table, "command", where, str, "a string")
    url = c.typed(table, "url", where, str, "a string")
    if ("command" in table) == ("url" in table):
        c.problem(where, "needs exactly one of 'command' or 'url'", "set 'command' for a local server, 'url' for HTTP")
    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        c.problem((*where, "url"), f"'{url}' is not an http(s) URL", "write it like https://host/mcp")
    for key, needs in _ONLY_FOR.items():
        if key in table and needs not in table and ("command" in table or "url" in table):
            c.problem((*where, key), f"'{key}' only applies to a server with '{needs}'", f"remove '{key}'")
    cwd = c.typed(table, "cwd", where, str, "a string")
    plain = _not_credentials(c, table, where)
    headers = c.env_table(table, "headers", where, header=True, plain=plain)
    spec = ServerSpec(
        name=name,
        command=command,
        args=c.string_list(table, "args", where),
        cwd=None if cwd is None else (c.path.parent / Path(cwd).expanduser()).resolve(),
        env=c.env_table(table, "env", where, header=False, plain=plain),
        url=url,
        headers=headers,
        oauth=parse_oauth(c, table, where, headers),
        enabled=c.typed(table, "enabled", where, bool, "true or false") is not False,
        aliases=c.aliases(table, where),
    )
    namespace = table.get("namespace")
    if namespace is False:
        spec = replace(spec, namespaced=False)
    elif isinstance(namespace, str) and _SERVER_NAME.fullmatch(namespace) and "__" not in namespace:
        spec = replace(spec, namespace=namespace)
    elif namespace is not None:
        c.problem((*where, "namespace"), "must be a name like the server's, or false", 'write namespace = "gh"')
    if "roots" in table:
        roots = c.string_list(table, "roots", where)
        spec = replace(spec, roots=tuple(str((c.path.parent / Path(r).expanduser()).resolve()) for r in roots))
    spec = _check_supervision(c, table, where, spec)
    # Only set what the profile sets, so the defaults stay in one place (profile_model.py).
    if (timeout := c.positive(table, "timeout_seconds", where)) is not None:
        spec = replace(spec, timeout_seconds=timeout)
    if (startup := c.positive(table, "startup_timeout_seconds", where)) is not None:
        spec = replace(spec, startup_timeout_seconds=startup)
    return spec


def _not_credentials(c: _Checker, table: Mapping[str, object], where: Key) -> frozenset[str]:
    """`not_credentials`: names in this server's `env` or `headers` whose literal values are not secrets.

    Each must name one of them, so a typo never leaves the check off for a name nobody meant.
    """
    names = c.string_list(table, "not_credentials", where)
    declared: list[str] = []
    for sub in ("env", "headers"):
        if isinstance(values := table.get(sub), dict):
            declared += [str(k) for k in cast(dict[object, object], values)]
    for name in names:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            fix = f"did you mean '{close[0]}'?" if close else "list only names this server's env or headers set"
            c.problem((*where, "not_credentials"), f"'{name}' is not in this server's env or headers", fix)
    return frozenset(names)


def _check_supervision(c: _Checker, table: Mapping[str, object], where: Key, spec: ServerSpec) -> ServerSpec:
    """Start mode, limits, health and restart settings; each only overrides the default when set."""
    changes: dict[str, object] = {}
    start = c.typed(table, "start", where, str, "a string")
    if start is not None and start not in ("eager", "lazy"):
        c.problem((*where, "start"), f"must be 'eager' or 'lazy', not '{start}'", 'write start = "lazy"')
    elif start is not None:
        changes["start"] = start
    if (shared := c.typed(table, "shared", where, bool, "true or false")) is not None:
        changes["shared"] = shared
    if (idle := c.positive(table, "idle_timeout_seconds", where)) is not None:
        changes["idle_timeout_seconds"] = idle
    if table.get("health_interval_seconds") == 0:
        changes["health_interval_seconds"] = 0.0  # 0 turns health pings off
    elif (interval := c.positive(table, "health_interval_seconds", where)) is not None:
        changes["health_interval_seconds"] = interval
    if (limit := c.typed(table, "max_output_bytes", where, int, "an integer")) is not None:
        if limit < 1024:
            c.problem(
                (*where, "max_output_bytes"), f"{limit} is too small", "use at least 1024 (the default is 16 MiB)"
            )
        else:
            changes["max_output_bytes"] = limit
    restart = c.table(table, "restart", where, "a table like { max_restarts = 5 }")
    c.unknown_keys(restart, _RESTART_KEYS, (*where, "restart"))
    seconds = _RESTART_KEYS[1:]
    numbers: dict[str, float | int] = {
        k: v for k in seconds if (v := c.positive(restart, k, (*where, "restart"))) is not None
    }
    count = c.typed(restart, "max_restarts", (*where, "restart"), int, "a whole number")
    if count is not None and count < 0:
        c.problem(
            (*where, "restart", "max_restarts"), f"must be 0 or more, not {count}", "0 never restarts; 5 is the default"
        )
    elif count is not None:
        numbers["max_restarts"] = count
    if numbers:
        changes["restart"] = replace(spec.restart, **numbers)
    return replace(spec, **changes)  # pyright: ignore[reportArgumentType]


def _check_audit(c: _Checker, table: Mapping[str, object]) -> AuditSpec:
    """`[audit]`; only what the profile sets overrides the defaults (profile_model.py)."""
    where: Key = ("audit",)
    c.unknown_keys(table, _AUDIT_KEYS, where)
    spec = AuditSpec()
    mode = c.typed(table, "args", where, str, "a string")
    if mode is not None and mode not in _ARGS_MODES:
        c.problem((*where, "args"), f"must be one of {', '.join(_ARGS_MODES)}, not '{mode}'", 'write args = "digest"')
    elif mode is not None:
        spec = replace(spec, args=mode)
    if (required := c.typed(table, "required", where, bool, "true or false")) is not None:
        spec = replace(spec, required=required)
    return spec


def _check_registry(c: _Checker, data: Mapping[str, object]) -> str | None:
    """`registry`: an MCP registry's base URL, https (http only to this machine: what it lists gets run)."""
    url = c.typed(data, "registry", (), str, "a string")
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        c.problem(("registry",), f"'{url}' is not a registry URL", 'write registry = "https://registry.example.com"')
    elif parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        c.problem(("registry",), f"'{url}' is plain http to another machine", "use https")
    else:
        return url
    return None


def _check_profile(c: _Checker, data: Mapping[str, object]) -> Profile:
    c.unknown_keys(data, _TOP_KEYS, ())
    description = c.typed(data, "description", (), str, "a string") or ""
    max_len = c.typed(data, "max_name_length", (), int, "an integer")
    if max_len is not None and not 16 <= max_len <= 128:
        c.problem(("max_name_length",), f"must be between 16 and 128, not {max_len}", "51 fits Claude's 64-char limit")
        max_len = None
    servers_raw = c.table(data, "servers", (), "a table of [servers.NAME] tables")
    servers = [_check_server(c, name, raw) for name, raw in servers_raw.items()]
    search_path, refused = check_search_path(c.string_list(data, "path", ()))
    for message, fix in refused:
        c.problem(("path",), message, fix)
    if search_path:
        servers = [replace(s, search_path=search_path) if s is not None and s.command else s for s in servers]
    policy = parse_policy(c, c.table(data, "policy", (), "a [policy] table"))
    audit = _check_audit(c, c.table(data, "audit", (), "an [audit] table"))
    # Integrity and context budget: only what the profile sets, so the defaults stay in profile_model.py.
    budget: dict[str, object] = {}
    for key, allowed in _BUDGET_CHOICES.items():
        value = c.typed(data, key, (), str, "a string")
        if value is not None and value not in allowed:
            c.problem((key,), f"must be one of {', '.join(allowed)}, not '{value}'", f'write {key} = "{allowed[0]}"')
        elif value is not None:
            budget[key] = value
    max_tools = c.typed(data, "max_tools", (), int, "an integer")
    if max_tools is not None and max_tools < 1:
        c.problem(("max_tools",), f"must be at least 1, not {max_tools}", 'remove it, or write expose = "search"')
    elif max_tools is not None:
        budget["max_tools"] = max_tools
    if (hide_flagged := c.typed(data, "hide_flagged", (), bool, "true or false")) is not None:
        budget["hide_flagged"] = hide_flagged
    if (registry := _check_registry(c, data)) is not None:
        budget["registry"] = registry
    if (shared := c.typed(data, "shared", (), bool, "true or false")) is not None:
        budget["shared"] = shared
    profile = Profile(
        name=c.path.stem,
        path=c.path,
        servers=tuple(s for s in servers if s is not None),
        policy=policy,
        description=description,
        max_name_length=DEFAULT_MAX_NAME_LENGTH if max_len is None else max_len,
        audit=audit,
    )
    return replace(profile, **budget)


def load_profile(path: Path) -> Profile:
    """Parse, merge (`extends`, see `inherit.py`) and validate one profile; `ProfileError` lists every problem."""
    return load_profile_and_text(path)[0]


def load_profile_and_text(path: Path) -> tuple[Profile, str]:
    """`load_profile`, and the text of the profile's own file exactly as parsed (what `profile show` prints)."""
    path = path.expanduser().absolute()
    layers = resolve_layers(path, lambda text: LineIndex(text).line)
    merged = merge_layers(layers)
    checker = _Checker(path, "")  # lines come from each layer's own index, via `relocate`
    profile = _check_profile(checker, merged.data)
    if checker.problems:
        raise ProfileError(merged.relocate(checker.problems))
    return replace(profile, sources=merged.sources), layers[-1].text
