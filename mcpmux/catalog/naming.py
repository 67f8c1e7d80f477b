"""Exposed names for downstream tools: `<server>__<tool>`, made safe for every host.

SEP-986 allows `[A-Za-z0-9._-]{1,128}`, but hosts are stricter: Claude's API caps a
tool name at 64 characters and Claude Code prefixes `mcp__<server>__`; Cursor drops
tools whose server plus tool name exceed 60; several model APIs reject dots. So an
exposed name matches `[A-Za-z0-9_-]{1,max_len}`, and a qualified name that does not
gets a deterministic short form: never a silent drop or a bare truncation.

`assign_names` resolves names in three rounds, each of which is independent of the
order of its input, so a tool keeps its name when servers are listed in another
order, and a name changes only when it collides with another:

1. plain qualified names that are already valid and short enough;
2. aliases from the profile (an alias that is invalid, too long, or clashes with a
   round-1 name or with another alias falls back to round 3 and is reported);
3. generated names, in sorted order: characters outside the charset replaced, then
   a hash of the qualified name appended when too long or taken.

Routing never parses names: it uses the table built from the `NamedTool`s.
`split` is for display and suggestions only.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

SEP = "__"
VALID_NAME = re.compile(r"[A-Za-z0-9_-]+")
MIN_MAX_LEN = 16
"""The smallest `max_len` accepted: room for a hash suffix (`_` + up to 12 hex digits) and a short prefix."""

_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_HASH_LENGTHS = (6, 8, 10, 12)
_NO_ALIASES: Mapping[tuple[str, str], str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NamedTool:
    """One downstream tool and the name the host sees; `reason` says why it differs from `server__tool`."""

    server: str
    tool: str
    exposed: str
    reason: str | None


def is_valid(name: str, max_len: int) -> bool:
    """Whether `name` is safe to expose as-is: the strict charset and at most `max_len` characters."""
    return 0 < len(name) <= max_len and VALID_NAME.fullmatch(name) is not None


def assign_names(
    tools: Iterable[tuple[str, str]],
    *,
    max_len: int,
    aliases: Mapping[tuple[str, str], str] = _NO_ALIASES,
) -> tuple[list[NamedTool], list[str]]:
    """Name every `(server, tool)` pair: one `NamedTool` per input, in input order, all distinct.

    Returns the tools and a list of problems for a person to fix (bad or clashing
    aliases, tools listed twice, different tools with the same qualified name).
    Aliases for pairs not in `tools` are ignored: their server may not be running.
    Of a pair listed twice, the first copy keeps the name.
    Raises ValueError if `max_len` is below `MIN_MAX_LEN` (a programming error:
    profiles validate it).
    """
    if max_len < MIN_MAX_LEN:
        raise ValueError(f"max_len must be at least {MIN_MAX_LEN}, got {max_len}")
    pairs = list(tools)
    qualified = [f"{server}{SEP}{tool}" for server, tool in pairs]
    problems: list[str] = []
    exposed: dict[int, str] = {}
    taken: set[str] = set()
    # why a generated name carries a hash although it would fit: it collided
    collided: set[int] = set()

    first_seen: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(pairs):
        if pair in first_seen:
            collided.add(i)
            problems.append(f"'{qualified[i]}' is listed more than once; each copy gets its own name")
        else:
            first_seen[pair] = i
    unique = sorted(first_seen.values())

    alias_of = _valid_aliases(pairs, qualified, unique, aliases, max_len, problems)

    # round 1: plain names; different pairs can share one (`a_` + `b` and `a` + `_b`)
    plain = _groups((i, qualified[i]) for i in unique if i not in alias_of and is_valid(qualified[i], max_len))
    for name, members in plain.items():
        if len(members) == 1:
            exposed[members[0]] = name
            taken.add(name)
        else:
            collided.update(members)
            problems.append(f"'{name}' names {len(members)} different tools; each gets its own name")

    # round 2: aliases, which give way to plain names (an alias must not rename another tool)
    for i, alias in sorted(alias_of.items()):
        if alias in taken:
            problems.append(f"alias '{alias}' for '{qualified[i]}' clashes with another tool's name; alias ignored")
        else:
            exposed[i] = alias
            taken.add(alias)

    # round 3: generated names, in sorted order so the result ignores input order
    pending = sorted((pairs[i], i) for i in range(len(pairs)) if i not in exposed)
    sanitized = {i: _INVALID_CHAR.sub("_", qualified[i]) for _, i in pending}
    shared = _groups((i, sanitized[i]) for _, i in pending)
    for _, i in pending:
        candidate = sanitized[i]
        fits = len(candidate) <= max_len
        if fits and (candidate in taken or len(shared[candidate]) > 1):
            collided.add(i)
        if not fits or i in collided:
            candidate = _unique_short_form(qualified[i], candidate, max_len, taken)
        exposed[i] = candidate
        taken.add(candidate)

    named = [
        NamedTool(server, tool, exposed[i], _reason(qualified[i], exposed[i], alias_of.get(i), i in collided, max_len))
        for i, (server, tool) in enumerate(pairs)
    ]
    return named, problems


def split(exposed: str) -> tuple[str, str] | None:
    """`(server, tool)` by the first SEP, or None; for display and suggestions only, never routing."""
    server, sep, tool = exposed.partition(SEP)
    return (server, tool) if sep and server and tool else None


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a person most likely meant by `name`, for "unknown tool" errors; None if none is close."""
    pool = list(candidates)
    # a host that calls the bare tool name (`git_status` for `git__git_status`) meant the qualified one
    bare = [c for c in pool if (parts := split(c)) is not None and parts[1] == name]
    if bare:
        return bare[0]
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _valid_aliases(
    pairs: list[tuple[str, str]],
    qualified: list[str],
    unique: list[int],
    aliases: Mapping[tuple[str, str], str],
    max_len: int,
    problems: list[str],
) -> dict[int, str]:
    """Index -> alias for the aliases that are valid and claimed by one tool only."""
    candidates: list[tuple[int, str]] = []
    for i in unique:
        alias = aliases.get(pairs[i])
        if alias is None or alias == qualified[i]:
            continue
        if VALID_NAME.fullmatch(alias) is None:
            problems.append(f"alias '{alias}' for '{qualified[i]}' has characters outside [A-Za-z0-9_-]; alias ignored")
        elif len(alias) > max_len:
            problems.append(f"alias '{alias}' for '{qualified[i]}' is longer than {max_len} characters; alias ignored")
        else:
            candidates.append((i, alias))
    valid: dict[int, str] = {}
    for alias, members in _groups(candidates).items():
        if len(members) == 1:
            valid[members[0]] = alias
        else:
            owners = ", ".join(f"'{qualified[i]}'" for i in members)
            problems.append(f"alias '{alias}' is given to {owners}; alias ignored for all of them")
    return valid


def _groups(items: Iterable[tuple[int, str]]) -> dict[str, list[int]]:
    """Name -> indices with that name, indices ascending (callers feed them ascending)."""
    groups: dict[str, list[int]] = {}
    for i, name in items:
        groups.setdefault(name, []).append(i)
    return groups


def _unique_short_form(qualified: str, sanitized: str, max_len: int, taken: set[str]) -> str:
    """`prefix_<hash>` of at most `max_len` characters that is not in `taken`.

    The prefix is the start of the sanitized name, so it keeps `server__` whenever
    that fits. Longer hashes come first; a counter only after that, which in practice
    means the same qualified name listed twice.
    """
    digest = hashlib.sha256(qualified.encode()).hexdigest()
    for length in _HASH_LENGTHS:
        candidate = _with_hash(sanitized, digest[:length], max_len)
        if candidate not in taken:
            return candidate
    n = 1
    while True:
        digest = hashlib.sha256(f"{qualified}#{n}".encode()).hexdigest()
        candidate = _with_hash(sanitized, digest[: _HASH_LENGTHS[0]], max_len)
        if candidate not in taken:
            return candidate
        n += 1


def _with_hash(sanitized: str, hash_hex: str, max_len: int) -> str:
    return f"{sanitized[: max_len - 1 - len(hash_hex)]}_{hash_hex}"


def _reason(qualified: str, exposed: str, alias: str | None, collided: bool, max_len: int) -> str | None:
    if exposed == qualified:
        return None
    if exposed == alias:
        return "alias from profile"
    parts: list[str] = []
    if _INVALID_CHAR.search(qualified):
        parts.append("characters outside [A-Za-z0-9_-] replaced")
    if len(qualified) > max_len:
        parts.append(f"shortened from '{qualified}' ({len(qualified)} > {max_len} characters)")
    if collided:
        parts.append("hash added: another tool has the same name")
    return "; ".join(parts)
