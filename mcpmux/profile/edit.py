"""Add one `[servers.NAME]` table to a profile's text, keeping every other line exactly as it was.

Profiles are written by people, with comments and an order of their own, so a profile is
never re-serialised: the new table is written as text (`server_toml`: one key a line, `env`
and `headers` as sub-tables, secrets as `{ secret = "NAME" }`) and inserted after the last
`[servers.…]` table (else at the end). Replacing a server removes its own `[servers.NAME]`
and `[servers.NAME.…]` tables first. The result is then parsed and must equal the old
profile with only that server changed; anything else (a server written as an inline table,
a header inside a multi-line string) is refused, with the fix, rather than guessed at. Pure.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import cast

import tomli_w

from mcpmux.errors import MCPMuxError
from mcpmux.profile.lines import header_key

ADDED_BY = "# Added by `mcpmux add"
"""How the comment `server_toml` writes above a table begins; replacing the table removes it too."""

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ONE_LINE = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def _string(text: str) -> str:
    return tomli_w.dumps({"v": text})[4:-1]  # tomli_w's escaping of one basic string


def _key(key: str) -> str:
    return key if key and set(key) <= _BARE_KEY else _string(key)


def _value(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        items = cast(dict[str, object], value).items()
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in items) + " }"
    if isinstance(value, list):
        items = [_value(v) for v in cast(list[object], value)]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= _ONE_LINE:
            return one_line
        return "[\n" + "".join(f"    {item},\n" for item in items) + "]"
    return tomli_w.dumps({"v": value})[4:-1]


def server_toml(name: str, table: Mapping[str, object], comment: str = "") -> str:
    """`[servers.NAME]` with `table`'s keys, one a line; `env`/`headers` tables as their own sections."""
    # A comment quotes what a registry said: one line, no control characters, so it cannot become TOML.
    lines = [f"# {_CONTROL.sub('?', comment)}"] if comment else []
    lines.append(f"[servers.{_key(name)}]")
    sections = {k: cast(dict[str, object], v) for k, v in table.items() if k in ("env", "headers", "aliases")}
    lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if k not in sections]
    for section, values in sections.items():
        lines += ["", f"[servers.{_key(name)}.{section}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def _blocks_of(lines: list[str], name: str) -> tuple[list[tuple[int, int]], int | None]:
    """The line ranges of NAME's own tables, and the line after the last `[servers.…]` table's content."""
    ranges: list[tuple[int, int]] = []
    after_servers: int | None = None
    headers = [(i, key) for i, line in enumerate(lines) if (key := header_key(line)) is not None]
    for position, (start, key) in enumerate(headers):
        end = headers[position + 1][0] if position + 1 < len(headers) else len(lines)
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # blank lines and comments before the next header belong to it
        if key[:2] == ("servers", name):
            while start > 0 and lines[start - 1].startswith(ADDED_BY):
                start -= 1
            ranges.append((start, end))
        if key[:1] == ("servers",):
            after_servers = end
    return ranges, after_servers


def with_server(text: str, name: str, block: str, *, replace: bool = False) -> str:
    """`text` with `block` (from `server_toml`) as server NAME; replaces NAME's tables only when `replace`."""
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MCPMuxError(f"the profile is not valid TOML ({exc}); fix it (mcpmux validate) and add again") from None
    servers = cast(dict[str, object], before.get("servers", {}))
    if name in servers and not replace:
        raise MCPMuxError(f"server '{name}' already exists; pass --force to replace it")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    ranges, _ = _blocks_of(lines, name)
    for start, end in reversed(ranges):
        del lines[start:end]
    _, insert_at = _blocks_of(lines, name)
    if insert_at is None:
        insert_at = len(lines)
    new_lines = ["\n", *block.splitlines(keepends=True)] if insert_at and lines[insert_at - 1].strip() else []
    new_lines = new_lines or block.splitlines(keepends=True)
    if insert_at < len(lines) and lines[insert_at].strip():
        new_lines.append("\n")
    result = "".join(lines[:insert_at] + new_lines + lines[insert_at:])
    expected = dict(before)
    added = tomllib.loads(block)["servers"][name]
    expected["servers"] = {**{k: v for k, v in servers.items() if k != name}, name: added}
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise MCPMuxError(
            f"could not add server '{name}' without touching the rest of the profile (is [servers.{name}] or "
            "[servers] written as an inline table?); write it as [servers.NAME] tables, or add the entry by hand"
        )
    return result
