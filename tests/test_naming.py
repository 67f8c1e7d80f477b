from __future__ import annotations

import hashlib
import random

import pytest

from mcpmux.catalog.naming import MIN_MAX_LEN, SEP, VALID_NAME, NamedTool, assign_names, closest, split
from mcpmux.profile.model import DEFAULT_MAX_NAME_LENGTH

MAX = DEFAULT_MAX_NAME_LENGTH


def _hash(qualified: str, length: int = 6) -> str:
    return hashlib.sha256(qualified.encode()).hexdigest()[:length]


def _names(tools: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    named, _ = assign_names(tools, max_len=MAX)
    return {(t.server, t.tool): t.exposed for t in named}


def _assert_well_formed(named: list[NamedTool], max_len: int) -> None:
    exposed = [t.exposed for t in named]
    assert len(set(exposed)) == len(exposed)
    for name in exposed:
        assert VALID_NAME.fullmatch(name), name
        assert 1 <= len(name) <= max_len, name


@pytest.mark.parametrize(
    ("server", "tool", "exposed"),
    [
        ("git", "git_status", "git__git_status"),
        ("time", "get-current-time", "time__get-current-time"),
        ("fs", "read.file", "fs__read_file"),
        ("fs", "lire_fichier_é", "fs__lire_fichier__"),
        ("web", "search tool", "web__search_tool"),
        ("x", "a" * (MAX - 3), "x__" + "a" * (MAX - 3)),
    ],
)
def test_a_short_name_is_kept_or_has_its_invalid_characters_replaced(server: str, tool: str, exposed: str) -> None:
    named, problems = assign_names([(server, tool)], max_len=MAX)
    assert [t.exposed for t in named] == [exposed]
    assert problems == []


@pytest.mark.parametrize(
    ("server", "tool", "reason"),
    [
        ("git", "git_status", None),
        ("fs", "read.file", "characters outside [A-Za-z0-9_-] replaced"),
        ("x", "a" * 60, f"shortened from 'x__{'a' * 60}' (63 > {MAX} characters)"),
    ],
)
def test_the_reason_says_why_a_name_differs_from_the_qualified_name(server: str, tool: str, reason: str | None) -> None:
    named, _ = assign_names([(server, tool)], max_len=MAX)
    assert named[0].reason == reason


@pytest.mark.parametrize(
    ("server", "tool", "max_len", "prefix"),
    [
        ("github", "x" * 80, MAX, "github__" + "x" * (MAX - 8 - 7)),
        ("github", "create.pull.request.review.comment.reply.thread", 40, "github__create_pull_request_revie"),
        ("s" * 70, "tool", MAX, "s" * (MAX - 7)),
        ("srv", "é" * 100, 20, "srv__" + "_" * 8),
    ],
)
def test_a_long_name_becomes_a_prefix_plus_a_hash_of_exactly_max_len(
    server: str, tool: str, max_len: int, prefix: str
) -> None:
    named, problems = assign_names([(server, tool)], max_len=max_len)
    qualified = f"{server}{SEP}{tool}"
    assert named[0].exposed == f"{prefix}_{_hash(qualified)}"
    assert len(named[0].exposed) == max_len
    assert problems == []


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        # the plain name keeps it; the generated one gets the hash
        ([("a", "b.c"), ("a", "b_c")], [f"a__b_c_{_hash('a__b.c')}", "a__b_c"]),
        ([("a", "b_c"), ("a", "b.c")], ["a__b_c", f"a__b_c_{_hash('a__b.c')}"]),
        # two generated names that collide both get the hash, whatever the order
        ([("a", "b.c"), ("a", "b:c")], [f"a__b_c_{_hash('a__b.c')}", f"a__b_c_{_hash('a__b:c')}"]),
        # distinct pairs with the same qualified name
        # (sorted order decides who gets the longer hash: ("a", "_b") < ("a_", "b"))
        ([("a_", "b"), ("a", "_b")], [f"a___b_{_hash('a___b', 8)}", f"a___b_{_hash('a___b')}"]),
    ],
)
def test_colliding_names_are_made_unique_with_a_hash(tools: list[tuple[str, str]], expected: list[str]) -> None:
    named, _ = assign_names(tools, max_len=MAX)
    assert [t.exposed for t in named] == expected


def test_different_tools_with_the_same_qualified_name_are_reported() -> None:
    _, problems = assign_names([("a_", "b"), ("a", "_b")], max_len=MAX)
    assert problems == ["'a___b' names 2 different tools; each gets its own name"]


def test_a_tool_listed_twice_gets_two_names_and_a_problem() -> None:
    named, problems = assign_names([("a", "b"), ("a", "b"), ("a", "b")], max_len=MAX)
    assert [t.exposed for t in named] == ["a__b", f"a__b_{_hash('a__b')}", f"a__b_{_hash('a__b', 8)}"]
    assert named[1].reason == "hash added: another tool has the same name"
    assert problems == ["'a__b' is listed more than once; each copy gets its own name"] * 2


@pytest.mark.parametrize(
    ("aliases", "exposed", "problem"),
    [
        ({("git", "git_status"): "status"}, ["status", "git__git_log"], None),
        ({("git", "git_status"): "git__git_status"}, ["git__git_status", "git__git_log"], None),
        (
            {("git", "git_status"): "git.status"},
            ["git__git_status", "git__git_log"],
            "alias 'git.status' for 'git__git_status' has characters outside [A-Za-z0-9_-]; alias ignored",
        ),
        (
            {("git", "git_status"): "s" * (MAX + 1)},
            ["git__git_status", "git__git_log"],
            f"alias '{'s' * (MAX + 1)}' for 'git__git_status' is longer than {MAX} characters; alias ignored",
        ),
        (
            {("git", "git_status"): "git__git_log"},
            ["git__git_status", "git__git_log"],
            "alias 'git__git_log' for 'git__git_status' clashes with another tool's name; alias ignored",
        ),
        (
            {("git", "git_status"): "g", ("git", "git_log"): "g"},
            ["git__git_status", "git__git_log"],
            "alias 'g' is given to 'git__git_status', 'git__git_log'; alias ignored for all of them",
        ),
        # tools swap names through aliases: neither is a plain name any more, so no clash
        (
            {("git", "git_status"): "git__git_log", ("git", "git_log"): "git__git_status"},
            ["git__git_log", "git__git_status"],
            None,
        ),
        ({("other", "tool"): "x"}, ["git__git_status", "git__git_log"], None),
    ],
)
def test_an_alias_wins_when_valid_and_otherwise_falls_back_with_a_problem(
    aliases: dict[tuple[str, str], str], exposed: list[str], problem: str | None
) -> None:
    named, problems = assign_names([("git", "git_status"), ("git", "git_log")], max_len=MAX, aliases=aliases)
    assert [t.exposed for t in named] == exposed
    assert problems == ([problem] if problem else [])


def test_an_alias_is_reported_as_the_reason() -> None:
    named, _ = assign_names([("git", "git_status")], max_len=MAX, aliases={("git", "git_status"): "status"})
    assert named[0].reason == "alias from profile"


def test_an_alias_takes_a_name_a_generated_name_wanted() -> None:
    named, problems = assign_names([("a", "b.c"), ("z", "tool")], max_len=MAX, aliases={("z", "tool"): "a__b_c"})
    assert [t.exposed for t in named] == [f"a__b_c_{_hash('a__b.c')}", "a__b_c"]
    assert problems == []


def test_names_do_not_depend_on_input_order() -> None:
    tools = [(s, t) for s in ("git", "fs", "web.x") for t in ("a.b", "a_b", "a:b", "x" * 70, "ok")]
    expected = _names(tools)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = tools[:]
        rng.shuffle(shuffled)
        assert _names(shuffled) == expected


def test_a_name_does_not_change_when_an_unrelated_tool_is_added() -> None:
    tools = [("fs", "read.file"), ("srv", "y" * 80), ("git", "git_status")]
    before = _names(tools)
    after = _names([("new", "thing.x"), *tools, ("srv", "z" * 80)])
    assert {k: after[k] for k in before} == before


def test_the_same_input_gives_the_same_names_every_run() -> None:
    tools = [("s", f"t.{i}") for i in range(50)] + [("s", "q" * 90)]
    assert assign_names(tools, max_len=MAX) == assign_names(tools, max_len=MAX)


@pytest.mark.parametrize("max_len", [MIN_MAX_LEN, 24, MAX, 64])
def test_every_name_in_a_large_awkward_batch_is_valid_short_and_unique(max_len: int) -> None:
    rng = random.Random(20240611)
    alphabet = "aA0_-.:/ é💥__"
    servers = ["s", "s_", "git", "a" * 40, "web.search", "é"]
    tools = [
        (rng.choice(servers), "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90)))) for _ in range(2000)
    ]
    named, _ = assign_names(tools, max_len=max_len)
    assert [(t.server, t.tool) for t in named] == tools
    _assert_well_formed(named, max_len)


def test_a_max_len_too_small_for_a_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="max_len"):
        assign_names([("a", "b")], max_len=MIN_MAX_LEN - 1)


@pytest.mark.parametrize(
    ("exposed", "parts"),
    [
        ("git__git_status", ("git", "git_status")),
        ("git__a__b", ("git", "a__b")),
        ("status", None),
        ("__x", None),
        ("x__", None),
    ],
)
def test_split_cuts_at_the_first_separator(exposed: str, parts: tuple[str, str] | None) -> None:
    assert split(exposed) == parts


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("git__git_stauts", "git__git_status"),
        ("git_status", "git__git_status"),
        ("time__get_current_time", "time__get_current_time"),
        ("zzzz", None),
    ],
)
def test_closest_suggests_the_name_a_person_most_likely_meant(name: str, suggestion: str | None) -> None:
    candidates = ["git__git_status", "git__git_log", "time__get_current_time"]
    assert closest(name, candidates) == suggestion
