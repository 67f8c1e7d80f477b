"""The size of `tools/list` for a 200-tool catalog, listed whole (`expose = "all"`) and in discovery mode.

Run from the repository root: `python -m bench.context_bench`. Pure: no server is started.

The catalog is 10 servers x 20 tools shaped like real ones (mcp-server-git, server-filesystem,
GitHub's server): a one- or two-sentence description and 1-5 described parameters. Tokens are
`mcpmux.discovery.estimate_tokens` (compact JSON characters / 4).
"""

from __future__ import annotations

import json
import sys

import mcp_types as types

from mcpmux.catalog.search import SearchIndex, estimate_tokens, meta_tools

SERVERS = ("git", "github", "fs", "slack", "jira", "postgres", "browser", "calendar", "mail", "docs")
VERBS = ("list", "get", "create", "update", "delete", "search", "read", "write", "move", "share")
NOUNS = ("items", "comments")
PARAMS = (
    ("path", "The path of the item, relative to the workspace root."),
    ("query", "Words to search for; supports quoted phrases."),
    ("limit", "The maximum number of results to return (1-100)."),
    ("cursor", "An opaque cursor from a previous call, to fetch the next page."),
    ("content", "The new content, as UTF-8 text."),
)


def catalog() -> list[types.Tool]:
    tools: list[types.Tool] = []
    for server in SERVERS:
        for i, (verb, noun) in enumerate((v, n) for n in NOUNS for v in VERBS):
            params = PARAMS[: 1 + i % len(PARAMS)]
            schema = {
                "type": "object",
                "properties": {name: {"type": "string", "description": text} for name, text in params},
                "required": [params[0][0]],
            }
            description = (
                f"{verb.capitalize()} {noun} in {server}. Returns the {noun} as JSON with their ids, titles "
                f"and timestamps. Only works within the configured {server} workspace."
            )
            tools.append(types.Tool(name=f"{server}__{verb}_{noun}", description=description, input_schema=schema))
    return tools


def main() -> None:
    tools = catalog()
    meta = meta_tools({server: sum(t.name.startswith(f"{server}__") for t in tools) for server in SERVERS})
    full, small = estimate_tokens(tools), estimate_tokens(meta)
    index = SearchIndex(tools)
    rows = {
        "tools": len(tools),
        "all_tokens": full,
        "search_tokens": small,
        "ratio": round(full / small, 1),
        "example_search": index.search("search slack comments", 3),
    }
    if "--json" in sys.argv:
        print(json.dumps(rows))
        return
    print(f"{len(tools)} tools, tools/list size (estimated tokens):")
    print(f'  expose = "all"     {full:>7} tokens ({len(tools)} tools)')
    print(f'  expose = "search"  {small:>7} tokens ({len(meta)} meta-tools), {rows["ratio"]}x smaller')
    print(f"  example: search('search slack comments') -> {rows['example_search']}")


if __name__ == "__main__":
    main()
