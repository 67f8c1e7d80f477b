"""A heuristic scanner for tool definitions that try to steer the model ("tool poisoning").

It reads every text a model sees of a tool (title, description, every string and
key in its input and output schema) and reports what honest tools rarely contain:

| code | severity | what |
|---|---|---|
| `invisible-unicode` | high | tag characters (U+E0000–E007F, which smuggle ASCII), zero-width and bidi controls |
| `model-instruction` | high, medium | text for the model: "ignore previous instructions", `<IMPORTANT>`, … |
| `sensitive-path` | medium | secrets and config files: `~/.ssh`, `id_rsa`, `.env`, `mcp.json`, `.aws/credentials` |
| `tool-reference` | medium | another server's tool, by exposed or (distinctive) original name |
| `same-name` | low | another server offers a tool of the same or nearly the same name (shadowing) |
| `long-description` | low | a description over `LONG_DESCRIPTION` characters |

It is a heuristic: it flags, it does not prove. A clean report does not make a
tool safe, and a legitimate tool may be flagged; `hide_flagged = true` in a profile
hides tools with medium or high findings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import mcp_types as types

from mcpmux.integrity.pins import RouteLike

Severity = Literal["low", "medium", "high"]
LONG_DESCRIPTION = 2000
"""Characters; real descriptions of popular servers stay well under 1,500."""
_EXCERPT = 40
"""Characters of context on each side of a hit."""

INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u061c\u180e\U000e0000-\U000e007f]+")
_USER = r"(the\s+)?user"


def _rule(severity: Severity, label: str, pattern: str) -> tuple[Severity, str, re.Pattern[str]]:
    return severity, label, re.compile(pattern, re.IGNORECASE)


_INSTRUCTIONS = (
    _rule(
        "high",
        "tells the model to ignore its instructions",
        r"\b(ignore|disregard|forget|override)\s+(all\s+|any\s+|your\s+|the\s+)*"
        r"(previous|prior|above|earlier|other|system)\s+(instructions|prompts?|rules|messages)",
    ),
    _rule("high", "has a tag aimed at the model", r"<\s*/?\s*(important|system|instructions?|secret|hidden|admin)\s*>"),
    _rule(
        "high",
        "asks to keep something from the user",
        r"\b(do\s+not|don'?t|never)\s+(tell|inform|notify|alert|warn|(mention|reveal|show)\s+(this\s+|it\s+)?to)\s+"
        + _USER,
    ),
    _rule(
        "high",
        "asks to act without the user knowing",
        r"\bwithout\s+(telling|informing|notifying|asking|alerting|showing\s+(it\s+|this\s+)?to)\s+" + _USER,
    ),
    _rule("high", "asks to keep something from the user", _USER + r"\s+(must|should)\s+not\s+(know|see|be\s+told)"),
    _rule(
        "medium",
        "gives the model orders before use",
        r"\bbefore\s+using\s+this\s+tool,?\s+(you\s+)?(must|should|need\s+to|first)\b",
    ),
    _rule("medium", "claims precedence over other tools", r"\b(always|only)\s+use\s+this\s+tool\s+instead\b"),
    _rule("medium", "speaks about the model's prompt", r"\b(system\s+prompt|you\s+are\s+now\b|new\s+instructions)"),
)
_SENSITIVE = re.compile(
    r"~/\.ssh|\.ssh/|\bid_(rsa|dsa|ecdsa|ed25519)\b|(?<![\w.])\.env\b|\bmcp\.json\b|claude_desktop_config\.json"
    r"|\.aws/credentials|\.netrc\b|\.npmrc\b|\.pypirc\b|/etc/(passwd|shadow)\b|\.git-credentials\b|\.kube/config"
    r"|\.docker/config\.json|\.gnupg\b|\bprivate[ _]key\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    where: str
    """The field of the definition: `description`, `inputSchema.properties.path.description`, …"""
    message: str
    excerpt: str
    """The text around the hit, invisible characters shown as escapes (tag characters decoded)."""

    def __str__(self) -> str:
        return f"{self.severity} {self.code} in {self.where}: {self.message}: {self.excerpt!r}"


def hides(finding: Finding) -> bool:
    """Whether `hide_flagged = true` hides a tool with this finding."""
    return finding.severity in ("medium", "high")


def _show(text: str) -> str:
    def escape(match: re.Match[str]) -> str:
        chars = match.group(0)
        tags = "".join(chr(ord(c) - 0xE0000) for c in chars if 0xE0020 <= ord(c) <= 0xE007E)
        escaped = "".join(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}" for c in chars[:8])
        return f"[hidden text: {tags}]" if tags else escaped + ("…" if len(chars) > 8 else "")

    return INVISIBLE.sub(escape, text).replace("\n", " ")


def _excerpt(text: str, start: int, end: int) -> str:
    left, right = max(0, start - _EXCERPT), min(len(text), end + _EXCERPT)
    return ("…" if left else "") + _show(text[left:right]) + ("…" if right < len(text) else "")


def _walk(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in cast(dict[str, Any], value).items():
            yield f"{where}.{key}", key
            yield from _walk(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(cast(list[Any], value)):
            yield from _walk(item, f"{where}[{index}]")


def tool_texts(tool: types.Tool) -> Iterator[tuple[str, str]]:
    """(where, text) for every text of a definition a model may read."""
    if tool.title:
        yield "title", tool.title
    if tool.description:
        yield "description", tool.description
    if tool.annotations and tool.annotations.title:
        yield "annotations.title", tool.annotations.title
    yield from _walk(tool.input_schema, "inputSchema")
    if tool.output_schema is not None:
        yield from _walk(tool.output_schema, "outputSchema")


def scan_tool(tool: types.Tool, others: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings in one definition. `others` maps names of other servers' tools to the exposed name they denote."""
    findings: list[Finding] = []
    refs = _names_pattern(others or {})
    for where, text in tool_texts(tool):
        if hit := INVISIBLE.search(text):
            what = "tag characters" if any(0xE0000 <= ord(c) <= 0xE007F for c in hit.group(0)) else "characters"
            message = f"contains invisible {what} (U+{ord(hit.group(0)[0]):04X})"
            findings.append(Finding("invisible-unicode", "high", where, message, _excerpt(text, *hit.span())))
        for severity, label, pattern in _INSTRUCTIONS:
            if hit := pattern.search(text):
                findings.append(Finding("model-instruction", severity, where, label, _excerpt(text, *hit.span())))
        if hit := _SENSITIVE.search(text):
            message = f"mentions a secret or configuration file ({hit.group(0)})"
            findings.append(Finding("sensitive-path", "medium", where, message, _excerpt(text, *hit.span())))
        if refs is not None and (hit := refs.search(text)):
            target = (others or {})[hit.group(1)]
            message = f"mentions another server's tool {target}"
            findings.append(Finding("tool-reference", "medium", where, message, _excerpt(text, *hit.span())))
    if tool.description and len(tool.description) > LONG_DESCRIPTION:
        message = f"is {len(tool.description)} characters long (over {LONG_DESCRIPTION})"
        findings.append(Finding("long-description", "low", "description", message, _excerpt(tool.description, 0, 0)))
    return findings


def _names_pattern(names: Mapping[str, str]) -> re.Pattern[str] | None:
    if not names:
        return None
    # Longest first, so `git__git_log_all` is not reported as `git__git_log`.
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n)))
    return re.compile(rf"(?<![\w-])({alternatives})(?![\w-])")


def _distinctive(name: str) -> bool:
    """An original name unlikely to be an ordinary word: `send_email`, `readFile`, not `search`."""
    return len(name) >= 5 and ("_" in name or "-" in name or re.search(r"[a-z][A-Z]", name) is not None)


def _similar_key(name: str) -> str:
    return re.sub(r"[_\-.\s]", "", name).lower()


def scan_catalog(routes: Iterable[RouteLike]) -> dict[str, tuple[Finding, ...]]:
    """Findings per exposed name: each definition, plus cross-server shadowing and references."""
    chosen = list(routes)
    by_server: dict[str, set[str]] = defaultdict(set)
    for route in chosen:
        by_server[route.server].add(route.tool)
    results: dict[str, tuple[Finding, ...]] = {}
    for route in chosen:
        own = by_server[route.server]
        others: dict[str, str] = {}
        for other in chosen:
            if other.server != route.server:
                others[other.exposed] = other.exposed
                if _distinctive(other.tool) and other.tool not in own:
                    others.setdefault(other.tool, other.exposed)
        findings = scan_tool(route.definition, others)
        findings += _shadowing(route, chosen)
        results[route.exposed] = tuple(findings)
    return results


def _shadowing(route: RouteLike, routes: list[RouteLike]) -> list[Finding]:
    key = _similar_key(route.tool)
    twins = [r for r in routes if r.server != route.server and _similar_key(r.tool) == key]
    if not twins:
        return []
    names = ", ".join(r.exposed for r in twins)
    same = all(r.tool == route.tool for r in twins)
    message = f"{'the same' if same else 'a nearly identical'} tool name is offered by {names}: a model may pick either"
    return [Finding("same-name", "low", "name", message, route.tool)]
