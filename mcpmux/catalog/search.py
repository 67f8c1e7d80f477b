"""Discovery mode (`expose = "search"`): three meta-tools instead of hundreds of tools. Pure.

The host lists only `mcpmux__search_tools`, `mcpmux__describe_tool` and
`mcpmux__call_tool`. Search and describe are answered here from the tools the host
could otherwise list (policy- and integrity-filtered by the caller, so a hidden
tool is neither found nor described); a call goes through the relay under the
target's exposed name, so policy, pins, audit and redaction apply as for a direct
call.

Search ranks by BM25 over words of each tool's name (weight 3), title and parameter
names (2) and description (1): split on `_`, `-`, `.`, camelCase, lower-cased, with
a light suffix stemmer. No network, no model, deterministic (ties break by name).

`estimate_tokens` sizes a `tools/list` result at one token per 4 characters of its
compact JSON: BPE tokenizers average about 4 characters per token on English and
somewhat fewer on JSON punctuation, so it is a rough, slightly low, but stable
figure for comparing catalogs, not a bill.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, cast

import mcp_types as types

SEARCH_TOOL = "mcpmux__search_tools"
DESCRIBE_TOOL = "mcpmux__describe_tool"
CALL_TOOL = "mcpmux__call_tool"
META_TOOLS = (SEARCH_TOOL, DESCRIBE_TOOL, CALL_TOOL)
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
_SUMMARY_CHARS = 200
_K1, _B = 1.2, 0.75
_WEIGHTS = {"name": 3, "title": 2, "params": 2, "description": 1}
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
    ]
)

JSON = dict[str, Any]


def meta_tools(servers: Mapping[str, int] | None = None) -> tuple[types.Tool, ...]:
    """The three meta-tools; `servers` (name → tool count) is summarised in the search tool's description."""
    summary = ", ".join(f"{name} ({count})" for name, count in (servers or {}).items())
    where = f" Servers (tools): {summary}." if summary else ""
    read_only = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return (
        types.Tool(
            name=SEARCH_TOOL,
            description=(
                "Search the tools of this gateway by words (what you want to do, or part of a tool name). "
                f"Returns matching tool names with a one-line summary, best first.{where} Then use "
                f"{DESCRIBE_TOOL} to read a tool's parameters and {CALL_TOOL} to run it."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Words to look for, e.g. 'git commit log'."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                },
                "required": ["query"],
            },
            annotations=read_only,
        ),
        types.Tool(
            name=DESCRIBE_TOOL,
            description=f"The full definition of one tool found with {SEARCH_TOOL}: description and input schema.",
            input_schema={
                "type": "object",
                "properties": {"name": {"type": "string", "description": "The tool's exact name."}},
                "required": ["name"],
            },
            annotations=read_only,
        ),
        types.Tool(
            name=CALL_TOOL,
            description=f"Call one tool by its exact name with arguments matching its input schema ({DESCRIBE_TOOL}).",
            input_schema={
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The tool's exact name."},
                    "arguments": {"type": "object", "description": "The tool's arguments.", "default": {}},
                },
                "required": ["name"],
            },
        ),
    )


# ---- ranking ----------------------------------------------------------------------------------------------------


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def words(text: str) -> list[str]:
    """Lower-cased, stemmed words of `text`; identifiers are split (`getCurrentTime`, `git__git_log`)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", spaced.lower()) if w not in _STOP]


def _fields(tool: types.Tool) -> dict[str, str]:
    properties = tool.input_schema.get("properties")
    params = " ".join(cast(dict[str, Any], properties)) if isinstance(properties, dict) else ""
    return {"name": tool.name, "title": tool.title or "", "params": params, "description": tool.description or ""}


class SearchIndex:
    """BM25 over one catalog snapshot; build it once per snapshot and query it many times."""

    def __init__(self, tools: Sequence[types.Tool]) -> None:
        self.tools = tuple(tools)
        self._docs: list[Counter[str]] = []
        for tool in self.tools:
            counts: Counter[str] = Counter()
            for field, text in _fields(tool).items():
                for word in words(text):
                    counts[word] += _WEIGHTS[field]
            self._docs.append(counts)
        self._length = sum(sum(d.values()) for d in self._docs) / max(1, len(self._docs))
        frequency: Counter[str] = Counter(word for doc in self._docs for word in doc)
        n = len(self._docs)
        self._idf = {w: math.log(1 + (n - df + 0.5) / (df + 0.5)) for w, df in frequency.items()}

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[tuple[str, float]]:
        """(name, score) of the best `limit` matches, best first; no match scores 0 and is left out."""
        terms = set(words(query))
        scored: list[tuple[str, float]] = []
        for tool, doc in zip(self.tools, self._docs, strict=True):
            size = sum(doc.values())
            score = 0.0
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + _K1 * (1 - _B + _B * size / (self._length or 1))
                    score += self._idf[term] * tf * (_K1 + 1) / norm
            if score > 0:
                scored.append((tool.name, round(score, 6)))
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[: max(0, limit)]


def search(tools: Sequence[types.Tool], query: str, limit: int = DEFAULT_LIMIT) -> list[tuple[str, float]]:
    return SearchIndex(tools).search(query, limit)


def describe(tool: types.Tool) -> JSON:
    """The definition a host would have listed: name, title, description, schemas, annotations."""
    return tool.model_dump(by_alias=True, exclude_none=True, mode="json", include=_DESCRIBED)


_DESCRIBED = {"name", "title", "description", "input_schema", "output_schema", "annotations"}


def estimate_tokens(tools: Sequence[types.Tool]) -> int:
    """Rough token size of a `tools/list` result carrying `tools` (see the module docstring)."""
    result = {"tools": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]}
    return math.ceil(len(json.dumps(result, separators=(",", ":"), ensure_ascii=False)) / 4)


# ---- meta-tool calls --------------------------------------------------------------------------------------------


def _result(data: JSON) -> JSON:
    return {"content": [{"type": "text", "text": json.dumps(data, indent=1)}], "structuredContent": data}


def _error(text: str) -> JSON:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _summary(tool: types.Tool) -> str:
    first = (tool.description or tool.title or "").strip().split("\n", 1)[0]
    return first if len(first) <= _SUMMARY_CHARS else first[: _SUMMARY_CHARS - 1] + "…"


def search_result(index: SearchIndex, arguments: Mapping[str, Any] | None) -> JSON:
    """The `CallToolResult` (as JSON) of `mcpmux__search_tools`."""
    args = arguments or {}
    query, limit = args.get("query"), args.get("limit", DEFAULT_LIMIT)
    if not isinstance(query, str) or not query.strip():
        return _error(f"{SEARCH_TOOL} needs 'query': a few words, e.g. 'list commits'")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        return _error(f"{SEARCH_TOOL}: 'limit' must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    by_name = {t.name: t for t in index.tools}
    hits = [{"name": n, "summary": _summary(by_name[n]), "score": s} for n, s in index.search(query, limit)]
    return _result({"query": query, "total_tools": len(index.tools), "tools": hits})


def describe_result(tools: Sequence[types.Tool], arguments: Mapping[str, Any] | None) -> JSON:
    """The `CallToolResult` (as JSON) of `mcpmux__describe_tool`."""
    name = (arguments or {}).get("name")
    if not isinstance(name, str):
        return _error(f"{DESCRIBE_TOOL} needs 'name': a tool name from {SEARCH_TOOL}")
    found = next((t for t in tools if t.name == name), None)
    if found is None:
        return _error(unknown_tool_text(tools, name))
    return _result(describe(found))


def call_target(arguments: Mapping[str, Any] | None) -> tuple[str, JSON] | JSON:
    """`(name, arguments)` for the relay from `mcpmux__call_tool`'s arguments, or an error result (a dict)."""
    args = arguments or {}
    name, inner = args.get("name"), args.get("arguments", {})
    if not isinstance(name, str) or not name:
        return _error(f"{CALL_TOOL} needs 'name': a tool name from {SEARCH_TOOL}")
    if name in META_TOOLS:
        return _error(f"{CALL_TOOL} calls catalog tools, not the meta-tool {name}: call {name} directly")
    if not isinstance(inner, dict):
        return _error(f"{CALL_TOOL}: 'arguments' must be an object, not {type(inner).__name__}")
    return name, dict(inner)  # pyright: ignore[reportUnknownArgumentType]


def unknown_tool_text(tools: Sequence[types.Tool], name: str) -> str:
    close = difflib.get_close_matches(name, [t.name for t in tools], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"no tool named {name!r} is available{hint}; find tools with {SEARCH_TOOL}"
