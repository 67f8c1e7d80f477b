"""The pure half of `mcpmux add`: registry answers → listings, server.json → a profile table, and the text edit."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mcpmux.errors import MCPMuxError, ProfileError, RegistryError
from mcpmux.profile.edit import server_toml, with_server
from mcpmux.profile.load import load_profile
from mcpmux.profile.model import SecretRef, SecretTemplate
from mcpmux.registry.document import check_name, parse_listing, parse_page
from mcpmux.registry.inputs import KEEP, Answer, Input
from mcpmux.registry.mapping import Plan, plan_server, server_name_for
from tests.fixtures.registry_server import load_entries

ENTRIES = load_entries()


def entry(name: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for e in ENTRIES if e["server"]["name"] == name and e["_meta"][OFFICIAL]["isLatest"]))


OFFICIAL = "io.modelcontextprotocol.registry/official"


def never(spec: Input) -> Answer:
    return None


def plan(item: dict[str, Any], answers: dict[str, str] | None = None, via: str | None = None, ask: Any = never) -> Plan:
    listing = parse_listing(item, "test")
    return plan_server(listing, server_name_for(listing.name), answers or {}, ask, via)


def loads_as_profile(tmp_path: Path, result: Plan) -> Any:
    path = tmp_path / "p.toml"
    path.write_text(server_toml(result.server, result.table, "test"))
    return load_profile(path).servers[0]


def test_a_listing_carries_the_registry_status_and_the_whole_server_json():
    listing = parse_listing(entry("io.github.example/weather"), "u")
    assert (listing.name, listing.version, listing.status, listing.active) == (
        "io.github.example/weather",
        "0.5.0",
        "active",
        True,
    )
    deleted = parse_listing(next(e for e in ENTRIES if e["server"]["name"].endswith("weather-leak")), "u")
    assert (deleted.status, deleted.active) == ("deleted", False)


def test_an_unknown_status_is_not_taken_as_active():
    item = entry("io.github.example/weather")
    item["_meta"][OFFICIAL]["status"] = "quarantined"
    assert parse_listing(item, "u").active is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "is not a JSON object"),
        ({"servers": "x"}, "'servers' is missing or not a list"),
        ({"servers": [], "metadata": {"nextCursor": 3}}, "'metadata.nextCursor' is not a string"),
    ],
)
def test_a_malformed_registry_answer_is_refused_saying_what_is_wrong(body: object, message: str):
    with pytest.raises(RegistryError, match=message):
        parse_page(body, "http://r/v0.1/servers")


def test_one_malformed_entry_is_left_out_of_a_page_and_counted():
    good = entry("io.github.example/weather")
    page = parse_page({"servers": [{"server": {"name": "no-slash", "version": "1"}}, good, 7]}, "u")
    assert ([listing.name for listing in page.listings], page.malformed) == (["io.github.example/weather"], 2)


def test_names_are_checked_before_they_reach_a_url():
    assert check_name("io.github.a/b") == "io.github.a/b"
    for bad in ("../../etc", "a/b/c", "a/b?x=1", "a" * 199 + "/b"):
        with pytest.raises(RegistryError):
            check_name(bad)


@pytest.mark.parametrize(
    ("registry", "server"),
    [
        ("io.github.a/weather", "weather"),
        ("com.x/My Server!!", "My-Server"),
        ("a.b/x__y", "x_y"),
        ("a.b/...", "server"),
    ],
)
def test_a_profile_server_name_comes_from_the_part_after_the_slash(registry: str, server: str):
    assert server_name_for(registry) == server


def test_templated_runtime_arguments_fill_their_variables_with_answers_and_defaults(tmp_path: Path):
    result = plan(entry("io.github.modelcontextprotocol/filesystem"), {"source_path": "/home/me/src"}, via="oci")
    assert result.table["args"] == [
        *("run", "-i", "--rm", "--mount=type=bind,src=/home/me/src,dst=/projects/work"),
        *("docker.io/mcp/filesystem:2026.1.14", "/projects"),
    ]
    assert loads_as_profile(tmp_path, result).command == "docker"


def test_a_choice_outside_the_listed_ones_is_refused():
    with pytest.raises(RegistryError, match="'kelvin' is not one of celsius, fahrenheit"):
        plan(entry("io.github.example/weather"), {"WEATHER_API_KEY": "k", "WEATHER_UNITS": "kelvin"})


def test_a_number_input_must_be_a_number():
    answers = {"db_type": "mysql", "db_password": "p", "database_name": "d", "DB_USERNAME": "u", "port": "five"}
    with pytest.raises(RegistryError, match="'five' is not a number"):
        plan(entry("com.example/database-manager"), answers)


def test_a_value_with_a_newline_is_refused_before_it_reaches_a_command_line():
    with pytest.raises(RegistryError, match="control character"):
        plan(entry("io.github.modelcontextprotocol/filesystem"), {"allowed_dir": "/tmp\n--evil"})


def test_a_fixed_header_template_with_a_secret_variable_becomes_a_secret_template(tmp_path: Path):
    result = plan(entry("io.github.example/loopback-echo"), {"port": "8123", "token": "t0k"})
    assert result.table == {
        "url": "http://127.0.0.1:8123/mcp",
        "headers": {"Authorization": "Bearer {secret:loopback-echo-token}"},
    }
    assert [(s.name, s.value) for s in result.secrets] == [("loopback-echo-token", "t0k")]
    spec = loads_as_profile(tmp_path, result)
    assert spec.headers["Authorization"] == SecretTemplate(("Bearer ", SecretRef("loopback-echo-token")))


def test_a_literal_secret_marker_in_a_value_stays_literal(tmp_path: Path):
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["environmentVariables"].append({"name": "GREETING", "value": "{secret:not-one}"})
    result = plan(item, {"WEATHER_API_KEY": "k"})
    assert loads_as_profile(tmp_path, result).env["GREETING"] == "{secret:not-one}"


def test_a_credential_named_value_given_in_plain_goes_to_the_keyring_anyway(tmp_path: Path):
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["environmentVariables"].append({"name": "SERVICE_TOKEN", "isRequired": True})
    result = plan(item, {"WEATHER_API_KEY": "k", "SERVICE_TOKEN": "plain"})
    assert result.table["env"]["SERVICE_TOKEN"] == {"secret": "weather-service-token"}  # type: ignore[index]
    assert ("weather-service-token", "plain") in [(s.name, s.value) for s in result.secrets]
    loads_as_profile(tmp_path, result)


def test_a_stored_secret_is_kept_when_the_asker_says_so():
    asked: list[str] = []

    def ask(spec: Input) -> Answer:
        asked.append(spec.key)
        return KEEP if spec.secret else None

    result = plan(entry("io.github.example/weather"), ask=ask)
    assert result.table["env"] == {"WEATHER_API_KEY": {"secret": "weather-weather-api-key"}, "WEATHER_UNITS": "celsius"}
    assert result.secrets == ()
    assert asked == ["WEATHER_API_KEY", "WEATHER_UNITS", "WEATHER_CACHE_DIR"]


def test_an_argument_that_would_carry_a_secret_on_the_command_line_is_refused():
    item = entry("io.github.example/sample-nuget")
    item["server"]["packages"][0]["packageArguments"].append(
        {"type": "named", "name": "--token", "isSecret": True, "isRequired": True}
    )
    with pytest.raises(RegistryError, match="--token would put a secret on the command line"):
        plan(item, {"token": "t"})


def test_an_sse_remote_is_used_only_when_mcpmux_reads_its_url_as_sse():
    item = entry("com.example/hybrid")
    item["server"]["remotes"] = [{"type": "sse", "url": "https://mcp.example.com/events"}]
    with pytest.raises(RegistryError, match="does not end in /sse"):
        plan(item, via="remote")
    item["server"]["remotes"] = [{"type": "sse", "url": "https://mcp.example.com/sse"}]
    assert plan(item, via="remote").table == {"url": "https://mcp.example.com/sse"}


def test_an_image_without_a_tag_or_digest_is_not_exact_enough():
    item = entry("com.example/database-manager")
    del item["server"]["packages"][0]["version"]
    with pytest.raises(RegistryError, match="has no tag or digest"):
        plan(item)


def test_npx_always_gets_yes_so_it_never_waits_on_the_mcp_pipe():
    item = entry("com.example/hybrid")
    assert plan(item).table["args"] == ["-y", "@example/hybrid-mcp-server@1.5.0", "--mode", "local"]


PROFILE = """\
# Team profile
description = "t"   # trailing comment

[servers.a]
command = "a"

[servers.a.env]
X = "1"

# about b
[servers.b]
url = "https://b.example/mcp"

# the policy
[policy]
default = "deny"
"""


def test_an_added_server_goes_after_the_last_server_and_every_other_line_stays():
    block = server_toml("new", {"command": "npx", "args": ["-y", "x@1"], "env": {"K": {"secret": "n"}}}, "Added by x")
    text = with_server(PROFILE, "new", block)
    assert text.replace(block, "", 1).replace("\n\n\n", "\n\n") == PROFILE
    assert text.index("[servers.new]") < text.index("# the policy")
    assert tomllib.loads(text)["servers"]["new"] == {
        "command": "npx",
        "args": ["-y", "x@1"],
        "env": {"K": {"secret": "n"}},
    }


def test_replacing_a_server_removes_only_its_own_tables():
    block = server_toml("a", {"command": "z"}, "")
    text = with_server(PROFILE, "a", block, replace=True)
    data = tomllib.loads(text)
    assert data["servers"]["a"] == {"command": "z"}
    assert data["servers"]["b"] == {"url": "https://b.example/mcp"}
    assert "# about b" in text and "# the policy" in text and "# trailing comment" in text
    with pytest.raises(MCPMuxError, match="already exists"):
        with_server(PROFILE, "a", block)


def test_a_server_written_as_an_inline_table_is_refused_rather_than_guessed_at():
    inline = 'servers = { a = { command = "a" } }\n'
    with pytest.raises(MCPMuxError, match="could not add server 'new' without touching the rest"):
        with_server(inline, "new", server_toml("new", {"command": "x"}))


def test_keys_that_are_not_bare_are_quoted():
    text = server_toml("s", {"url": "https://x", "headers": {"X.Key": {"secret": "n"}, "Y": 'a"b'}})
    assert tomllib.loads(text)["servers"]["s"]["headers"] == {"X.Key": {"secret": "n"}, "Y": 'a"b'}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://registry.example.com", None),
        ("http://127.0.0.1:8080", None),
        ("http://registry.example.com", "is plain http to another machine (use https)"),
        ("ftp://registry.example.com", "is not a registry URL"),
        ("https://registry.example.com/?search=x", "is not a registry URL"),
    ],
)
def test_validate_checks_a_profiles_registry_key(tmp_path: Path, value: str, problem: str | None):
    path = tmp_path / "p.toml"
    path.write_text(f'registry = "{value}"\n')
    if problem is None:
        assert load_profile(path).registry == value
    else:
        with pytest.raises(ProfileError) as caught:
            load_profile(path)
        assert [p.key for p in caught.value.problems] == ["registry"]
        assert problem in str(caught.value.problems[0])


def test_a_package_said_to_live_in_another_registry_than_its_runtime_installs_from_is_passed_over():
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["registryBaseUrl"] = "https://pypi.mallory.example"
    with pytest.raises(
        RegistryError, match=re.escape("comes from https://pypi.mallory.example, but uvx installs from")
    ):
        plan(item, {"WEATHER_API_KEY": "k"})
    image = entry("com.example/database-manager")
    image["server"]["packages"][0]["registryBaseUrl"] = "https://ghcr.io"
    with pytest.raises(RegistryError, match=re.escape("is pulled from docker.io")):
        plan(image)


@pytest.mark.parametrize("flag", ["--index-url", "--from", "--with"])
def test_a_runtime_argument_that_changes_where_the_package_comes_from_is_refused(flag: str):
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["runtimeArguments"] = [{"type": "named", "name": flag, "value": "https://evil"}]
    with pytest.raises(RegistryError, match=f"runtime argument {flag} would install from somewhere else"):
        plan(item, {"WEATHER_API_KEY": "k"})


@pytest.mark.parametrize(
    "argument",
    [{"type": "positional", "value": "evil-package"}, {"type": "named", "name": "evil-package", "value": "x"}],
)
def test_a_runtime_argument_that_is_not_an_option_is_refused_since_the_runtime_would_run_it(argument: dict[str, str]):
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["runtimeArguments"] = [argument]
    with pytest.raises(RegistryError, match="runtime argument 'evil-package' is not an option"):
        plan(item, {"WEATHER_API_KEY": "k"})


def test_a_runtime_option_and_its_value_are_one_argument_so_the_value_is_never_what_runs():
    item = entry("io.github.example/weather")
    item["server"]["packages"][0]["runtimeArguments"] = [{"type": "named", "name": "--python", "value": "evil-pkg"}]
    assert plan(item, {"WEATHER_API_KEY": "k"}).table["args"] == ["--python=evil-pkg", "weather-mcp-server@0.5.0"]


def test_a_container_given_more_of_this_machine_is_said_out_loud():
    item = entry("com.example/database-manager")
    item["server"]["packages"][0]["runtimeArguments"].append({"type": "named", "name": "--privileged"})
    answers = {"db_type": "mysql", "db_password": "p", "database_name": "d", "DB_USERNAME": "u"}
    item["server"]["packages"][0]["runtimeArguments"][-1]["format"] = "boolean"
    item["server"]["packages"][0]["runtimeArguments"][-1]["default"] = "true"
    result = plan(item, answers)
    assert "--privileged" in result.table["args"]  # type: ignore[operator]
    assert any("gives the container more of this machine: --privileged" in note for note in result.notes)


def test_a_version_that_is_not_one_printable_line_is_refused():
    item = entry("io.github.example/weather")
    item["server"]["version"] = '0.5.0\n[servers.evil]\ncommand = "sh"'
    with pytest.raises(RegistryError, match="is not a printable version string"):
        parse_listing(item, "u")


def test_a_comment_can_never_become_toml():
    text = server_toml("s", {"command": "x"}, 'from r\n[servers.evil]\ncommand = "sh"')
    assert tomllib.loads(text) == {"servers": {"s": {"command": "x"}}}


def test_a_server_added_to_a_fresh_starter_profile_loads(tmp_path: Path):
    from mcpmux.profile.starter import starter_text

    block = server_toml("weather", {"command": "uvx", "args": ["weather-mcp-server@0.5.0"]}, "Added by test")
    path = tmp_path / "fresh.toml"
    path.write_text(with_server(starter_text("fresh"), "weather", block))
    assert [s.name for s in load_profile(path).servers] == ["weather"]
    assert path.read_text().startswith(starter_text("fresh"))
