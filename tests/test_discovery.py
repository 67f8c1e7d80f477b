"""Discovery mode: ranking, describe, meta-tool argument handling, and the token estimate."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest

from mcpmux.catalog.search import (
    CALL_TOOL,
    META_TOOLS,
    SearchIndex,
    call_target,
    describe,
    describe_result,
    estimate_tokens,
    meta_tools,
    search,
    search_result,
    words,
)


def tool(name: str, description: str, *params: str) -> types.Tool:
    schema = {"type": "object", "properties": {p: {"type": "string"} for p in params}}
    return types.Tool(name=name, description=description, input_schema=schema)


CATALOG = [
    tool("git__git_log", "Shows the commit logs", "repo_path", "max_count"),
    tool("git__git_commit", "Records changes to the repository", "repo_path", "message"),
    tool("git__git_status", "Shows the working tree status", "repo_path"),
    tool("time__get_current_time", "Get current time in a specific timezone", "timezone"),
    tool("time__convert_time", "Convert time between timezones", "source_timezone", "time", "target_timezone"),
    tool("fs__read_file", "Read the complete contents of a file from the file system.", "path"),
    tool("fs__write_file", "Create a new file or overwrite an existing file with new content.", "path", "content"),
]


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("commit log", "git__git_log"),
        ("commits", "git__git_commit"),
        ("current time in Tokyo", "time__get_current_time"),
        ("convert between timezones", "time__convert_time"),
        ("read a file", "fs__read_file"),
        ("write content", "fs__write_file"),
        ("status of the working tree", "git__git_status"),
    ],
)
def test_search_ranks_the_tool_that_fits_the_words_first(query: str, best: str):
    assert search(CATALOG, query, 3)[0][0] == best


def test_search_is_deterministic_limited_and_leaves_out_non_matches():
    first = search(CATALOG, "file", 10)
    assert first == search(list(reversed(CATALOG)), "file", 10)
    assert [name for name, _ in first] == ["fs__read_file", "fs__write_file"]
    assert search(CATALOG, "time", 1) == search(CATALOG, "time", 5)[:1]
    assert search(CATALOG, "kubernetes", 10) == []


def test_identifiers_split_into_words_and_plurals_meet_singulars():
    assert words("getCurrentTime git__git_log") == ["get", "current", "time", "git", "git", "log"]
    assert words("commits") == words("commit")


def test_describe_gives_the_full_definition_under_the_exposed_name():
    described = describe(CATALOG[0])
    assert described == {
        "name": "git__git_log",
        "description": "Shows the commit logs",
        "inputSchema": CATALOG[0].input_schema,
    }


def test_the_meta_tools_are_three_named_under_mcpmux_with_object_schemas():
    tools = meta_tools({"git": 12, "time": 2})
    assert tuple(t.name for t in tools) == META_TOOLS
    assert "git (12), time (2)" in (tools[0].description or "")
    assert all(t.input_schema["type"] == "object" for t in tools)


def test_a_search_result_lists_names_summaries_and_scores():
    result = search_result(SearchIndex(CATALOG), {"query": "commit log", "limit": 2})
    assert "isError" not in result
    hits = result["structuredContent"]["tools"]
    assert [h["name"] for h in hits] == ["git__git_log", "git__git_commit"]
    assert hits[0]["summary"] == "Shows the commit logs"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs 'query'"),
        ({"query": "  "}, "needs 'query'"),
        ({"query": "x", "limit": 0}, "'limit' must be an integer from 1 to 50, not 0"),
        ({"query": "x", "limit": True}, "'limit' must be an integer"),
    ],
)
def test_bad_search_arguments_are_an_error_result_saying_what_to_pass(arguments: dict[str, Any], message: str):
    result = search_result(SearchIndex(CATALOG), arguments)
    assert result["isError"] is True
    assert message in result["content"][0]["text"]


def test_describing_a_tool_that_is_not_available_suggests_the_closest_one():
    result = describe_result(CATALOG, {"name": "git__git_lgo"})
    assert result["isError"] is True
    assert "no tool named 'git__git_lgo' is available (did you mean git__git_log?)" in result["content"][0]["text"]
    assert describe_result(CATALOG, {"name": "git__git_log"})["structuredContent"]["name"] == "git__git_log"


CALL_TARGETS: list[tuple[dict[str, Any], object]] = [
    ({"name": "git__git_log", "arguments": {"max_count": 3}}, ("git__git_log", {"max_count": 3})),
    ({"name": "git__git_log"}, ("git__git_log", {})),
    ({"arguments": {}}, "needs 'name'"),
    ({"name": "git__git_log", "arguments": [1]}, "'arguments' must be an object, not list"),
    ({"name": CALL_TOOL}, "calls catalog tools, not the meta-tool"),
]


@pytest.mark.parametrize(("arguments", "expected"), CALL_TARGETS)
def test_call_tool_arguments_become_a_relay_call_or_an_error(arguments: dict[str, Any], expected: object):
    target = call_target(arguments)
    if isinstance(expected, tuple):
        assert target == expected
    else:
        assert isinstance(target, dict) and target["isError"] is True
        assert str(expected) in target["content"][0]["text"]


def test_the_token_estimate_of_200_tools_dwarfs_the_three_meta_tools():
    catalog = [
        tool(f"s{i // 20}__tool_{i}", "Does one specific thing with the given inputs. " * 4, "a", "b")
        for i in range(200)
    ]
    full, meta = estimate_tokens(catalog), estimate_tokens(meta_tools({f"s{i}": 20 for i in range(10)}))
    assert full > 20 * meta
    assert estimate_tokens([]) == 3  # {"tools":[]}
