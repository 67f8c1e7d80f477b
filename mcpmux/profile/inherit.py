"""Profile inheritance: `extends = ["base"]`, resolved into one merged table before validation.

Each `extends` item is a name (`base` → `base.toml` beside the profile, then in the user
profiles folder) or a path relative to the profile's folder (has a `/` or ends in `.toml`).
Files merge in depth-first order, farthest ancestor first, each file once (a diamond
merges its shared base once), the profile itself last. Merge rules, later file wins:

- top-level scalars (`description`, `max_name_length`): overridden;
- `servers`: merged by name; a server's keys override the parent's; `env`, `headers` and
  `aliases` merge key by key; `args` is replaced whole; setting `command` drops an
  inherited `url` and `headers`, setting `url` drops an inherited `command`, `args`,
  `cwd` and `env`; `enabled = false` disables an inherited server;
- `policy`: `allow` and `deny` concatenated parent-first (duplicates dropped), `default` overridden;
- `audit`: merged key by key (a child setting `args` keeps an inherited `required`).

Validation runs once, on the merged table; `Merged.relocate` then points each problem
at the file (and line) that last set the key, so a problem in a parent names the parent.
A relative `cwd` is made absolute against the folder of the file that set it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from mcpmux.errors import Problem, ProfileError
from mcpmux.paths import state_paths
from mcpmux.profile.model import Profile, SourceFile

Key = tuple[str, ...]
LineOf = Callable[[Key], "int | None"]
Table = dict[str, object]

_KEYED = ("env", "headers", "aliases")  # server sub-tables merged key by key
_DROPS = {"command": ("url", "headers"), "url": ("command", "args", "cwd", "env")}


@dataclass(frozen=True, slots=True)
class Layer:
    """One file of an inheritance chain, parsed: its text and the sha256 of the bytes that text came from."""

    path: Path
    data: Table
    line: LineOf
    text: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Merged:
    """The effective table of a profile and where each key of it came from."""

    data: Table
    layers: tuple[Layer, ...]
    origins: Mapping[str, tuple[Path, int | None]]

    @property
    def sources(self) -> tuple[SourceFile, ...]:
        """Each file merged and the sha256 of the bytes parsed, in merge order: what trust and audit pin."""
        return tuple(SourceFile(layer.path, layer.sha256) for layer in self.layers)

    def relocate(self, problems: list[Problem]) -> list[Problem]:
        """Point each problem at the file and line that set its key; order: by file in merge order, then line."""
        moved = [self._relocated(p) for p in problems]
        order = {layer.path: index for index, layer in enumerate(self.layers)}
        return sorted(moved, key=lambda p: (order.get(p.path, len(order)), p.line or 0))

    def _relocated(self, problem: Problem) -> Problem:
        key = problem.key
        best = max((k for k in self.origins if k and (key == k or key.startswith(k + "."))), key=len, default=None)
        if best is None:
            return problem
        path, line = self.origins[best]
        return replace(problem, path=path, line=line)


def read_toml(path: Path) -> tuple[str, Table, str]:
    """The text, parsed table and sha256 of one TOML file; `ProfileError` (naming the file) if unreadable or invalid.

    One read: the hash is of the very bytes parsed, so a file swapped after the read cannot be
    trusted or audited under the hash of content that never ran (and vice versa).
    """
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ProfileError([Problem(path, None, "", f"cannot read the profile: {reason}", "check the path")]) from exc
    try:
        return text, tomllib.loads(text), hashlib.sha256(data).hexdigest()
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"at line (\d+)", str(exc))
        line = int(where.group(1)) if where else None
        problem = Problem(path, line, "", f"TOML syntax error: {exc}", "fix the syntax on that line")
        raise ProfileError([problem]) from exc


def _parent_path(value: str, folder: Path) -> list[Path]:
    """Where an `extends` item may live, in lookup order."""
    if "/" in value or value.endswith(".toml"):
        return [(folder / Path(value).expanduser()).resolve()]
    return [folder / f"{value}.toml", state_paths().profiles_dir / f"{value}.toml"]


def _extends(layer: Layer) -> list[Path]:
    raw = layer.data.get("extends", [])
    where = layer.line(("extends",))
    if not isinstance(raw, list) or not all(isinstance(i, str) and i for i in cast(list[object], raw)):
        fix = 'write extends = ["base"] (profile names, or paths relative to this file)'
        raise ProfileError([Problem(layer.path, where, "extends", "must be an array of profile names or paths", fix)])
    parents: list[Path] = []
    for index, value in enumerate(cast(list[str], raw)):
        candidates = _parent_path(value, layer.path.parent)
        found = next((c.resolve() for c in candidates if c.is_file()), None)
        if found is None:
            looked = " and ".join(str(c) for c in candidates)
            fix = "fix the name, or write a path relative to this profile's folder"
            message = f"extends[{index}]: no profile '{value}' (looked for {looked})"
            raise ProfileError([Problem(layer.path, where, "extends", message, fix)])
        parents.append(found)
    return parents


def resolve_layers(path: Path, index: Callable[[str], LineOf]) -> tuple[Layer, ...]:
    """Every file `path` extends (depth-first, farthest ancestor first, each once), then `path` itself.

    `index(text)` gives a key path → line function for a file's text. Cycles raise `ProfileError` naming the chain.
    """
    order: list[Layer] = []
    done: set[Path] = set()

    def visit(file: Path, chain: tuple[Path, ...]) -> None:
        text, data, sha256 = read_toml(file)
        layer = Layer(file, data, index(text), text, sha256)
        for parent in _extends(layer):
            if parent in chain or parent == file:
                names = " → ".join(p.name for p in (*chain, file, parent)[(*chain, file).index(parent) :])
                fix = "remove one of these `extends` entries"
                line = layer.line(("extends",))
                raise ProfileError([Problem(file, line, "extends", f"inheritance cycle: {names}", fix)])
            if parent not in done:
                visit(parent, (*chain, file))
        done.add(file)
        order.append(layer)

    visit(path.resolve(), ())
    return tuple(order)


def _as_table(value: object) -> Table | None:
    return cast(Table, value) if isinstance(value, dict) else None


def _merge_server(into: Table, layer_server: Table, folder: Path) -> Table:
    result = dict(into)
    for transport, dropped in _DROPS.items():
        if transport in layer_server:
            for key in dropped:
                result.pop(key, None)
    for key, value in layer_server.items():
        old, new = _as_table(result.get(key)), _as_table(value)
        if key in _KEYED and old is not None and new is not None:
            result[key] = {**old, **new}
        elif key == "cwd" and isinstance(value, str) and not Path(value).expanduser().is_absolute():
            result[key] = str(folder / Path(value).expanduser())
        else:
            result[key] = value
    return result


def _merge_policy(into: Table, layer_policy: Table) -> Table:
    result = dict(into)
    for key, value in layer_policy.items():
        old = result.get(key)
        if key in ("allow", "deny") and isinstance(old, list) and isinstance(value, list):
            items = [*cast(list[object], old), *cast(list[object], value)]
            result[key] = [i for n, i in enumerate(items) if i not in items[:n]]
        else:
            result[key] = value
    return result


def _merge(into: Table, layer: Layer) -> Table:
    result = dict(into)
    for key, value in layer.data.items():
        old, new = _as_table(result.get(key)) or {}, _as_table(value)
        if key == "servers" and new is not None:
            servers = dict(old)
            for name, server in new.items():
                own = _as_table(server)
                inherited = _as_table(servers.get(name)) or {}
                servers[name] = server if own is None else _merge_server(inherited, own, layer.path.parent)
            result[key] = servers
        elif key == "policy" and new is not None:
            result[key] = _merge_policy(old, new)
        elif key == "audit" and new is not None:
            result[key] = {**old, **new}
        else:
            result[key] = value
    return result


def _record(origins: dict[str, tuple[Path, int | None]], layer: Layer, table: Table, where: Key) -> None:
    for key, value in table.items():
        path = (*where, key)
        origins[".".join(path)] = (layer.path, layer.line(path))
        if (sub := _as_table(value)) is not None:
            _record(origins, layer, sub, path)
        elif isinstance(value, list):  # an array of tables, e.g. [[policy.rules]]: `policy.rules[0].tools`
            for index, item in enumerate(cast(list[object], value)):
                if (sub := _as_table(item)) is not None:
                    _record(origins, layer, sub, (*where, f"{key}[{index}]"))


def merge_layers(layers: tuple[Layer, ...]) -> Merged:
    """The merged table (without `extends`) of `resolve_layers`' result, with the origin of every key."""
    data: Table = {}
    origins: dict[str, tuple[Path, int | None]] = {}
    for layer in layers:
        data = _merge(data, layer)
        _record(origins, layer, layer.data, ())
    data.pop("extends", None)
    return Merged(data, layers, origins)


def profile_sources(profile: Profile) -> list[Path]:
    """The profile's own file, then every file it extends (reverse merge order): what trust covers."""
    return [source.path for source in reversed(profile.sources)] or [profile.path]


def resolved_toml(path: Path) -> str:
    """The effective profile at `path` as TOML, headed by the files it was merged from (secrets stay references)."""
    import tomli_w

    layers = resolve_layers(path.expanduser().absolute(), lambda _text: lambda _key: None)
    merged = merge_layers(layers)
    header = "".join(f"# merged from: {layer.path} (sha256 {layer.sha256})\n" for layer in layers)
    return header + tomli_w.dumps(merged.data)
