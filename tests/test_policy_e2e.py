"""End to end: the policy engine through the gateway, with the SDK fixture server as a real stdio downstream.

Hidden tools, argument constraints, fixed values, rate limits and host rules go
through `mcpmux serve` as a subprocess with an SDK client as the host. Time
windows need a clock the test controls, so those run in-process through
`open_gateway(clock=...)`, which still spawns the downstream as a real
subprocess. `mcpmux policy explain` runs as a subprocess on a written profile.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from mcpmux.gateway import open_gateway
from mcpmux.profile.load import load_profile
from tests.conftest import FIXTURES, REPO, fixture_server_toml, host_session
from tests.e2e_helpers import audit_events

pytestmark = pytest.mark.anyio

WriteProfile = Callable[..., Path]

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MONDAY_20 = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
SATURDAY_10 = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
LEDGER = FIXTURES / "ledger_server.py"


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def calls_of(home: Path, exposed: str) -> list[dict[str, Any]]:
    return [e for e in audit_events(home, "tool_call") if e.get("exposed") == exposed]


def ledger_toml(name: str, **settings: str) -> str:
    """A ledger_server.py downstream: `transfer(amount: int)` (lax coercion) and `read_note(path)` (open as given)."""
    lines = [f"[servers.{name}]", f'command = "{sys.executable}"', f'args = ["{LEDGER}"]']
    return "\n".join([*lines, *(f"{k} = {v}" for k, v in settings.items())]) + "\n"


def mcp_server_time() -> str:
    path = shutil.which("mcp-server-time")
    if path is None:
        pytest.fail("mcp-server-time is not installed: pip install -e '.[dev]'")
    return path


# ---- hidden tools ------------------------------------------------------------------------------------------------


async def test_a_glob_denied_tool_is_hidden_from_the_host_and_refused_when_called_anyway(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha") + '[policy]\ndeny = ["*__delete_*", "alpha__cr*"]\n')
    async with host_session(profile) as host:
        names = {t.name for t in (await host.list_tools()).tools}
        refused = await host.call_tool("alpha__crash", {})
        still_up = await host.call_tool("alpha__echo", {"text": "alive"})
    assert "alpha__echo" in names
    assert not names & {"alpha__delete_everything", "alpha__crash"}
    assert refused.is_error
    assert text_of(refused) == "tool 'alpha__crash' is not allowed: denied by policy.deny[1] \"alpha__cr*\""
    assert text_of(still_up) == "alive"  # the crash never reached the downstream
    assert [(e["decision"], e["rule"]) for e in calls_of(mcpmux_home, "alpha__crash")] == [
        ("denied", 'policy.deny[1] "alpha__cr*"')
    ]


async def test_read_only_hides_every_unannotated_tool_and_keeps_those_annotated_read_only(
    write_profile: WriteProfile, mcpmux_home: Path
):
    time_server = f'[servers.time]\ncommand = "{mcp_server_time()}"\nargs = ["--local-timezone", "UTC"]\n'
    profile = write_profile(fixture_server_toml("alpha") + time_server + "[policy]\nread_only = true\n")
    async with host_session(profile) as host:
        tools = (await host.list_tools()).tools
        refused = await host.call_tool("alpha__echo", {"text": "x"})
        allowed = await host.call_tool("time__get_current_time", {"timezone": "UTC"})
    assert sorted(t.name for t in tools) == ["time__convert_time", "time__get_current_time"]
    assert all(t.annotations is not None and t.annotations.read_only_hint for t in tools)
    assert refused.is_error
    assert "denied by policy.read_only = true (the tool has no annotations)" in text_of(refused)
    assert not allowed.is_error
    assert [(e["decision"], e["rule"]) for e in calls_of(mcpmux_home, "alpha__echo")] == [
        ("denied", "policy.read_only")
    ]


async def test_read_only_over_a_server_without_annotations_hides_all_its_tools(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + "[policy]\nread_only = true\n")
    async with host_session(profile) as host:
        tools = (await host.list_tools()).tools
        refused = await host.call_tool("alpha__env_names", {})
    assert tools == []
    assert refused.is_error
    assert "policy.read_only" in text_of(refused)


# ---- arguments -------------------------------------------------------------------------------------------------

PATTERN_RULE = """
[[policy.rules]]
tools = ["alpha__echo"]
effect = "allow"
[policy.rules.args]
text = { pattern = "^[a-z]+$" }
"""


async def test_an_argument_outside_its_constraint_is_refused_naming_argument_constraint_and_rule(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha") + PATTERN_RULE)
    async with host_session(profile) as host:
        refused = await host.call_tool("alpha__echo", {"text": "Hello World"})
        passed = await host.call_tool("alpha__echo", {"text": "hello"})
    assert refused.is_error
    message = text_of(refused)
    assert "argument 'text'" in message
    assert "does not match pattern ^[a-z]+$" in message
    assert "policy.rules[0].args.text.pattern" in message
    assert not passed.is_error
    assert text_of(passed) == "hello"
    denied, allowed = calls_of(mcpmux_home, "alpha__echo")
    assert (denied["decision"], denied["outcome"], denied["rule"]) == (
        "denied",
        "denied",
        "policy.rules[0].args.text.pattern",
    )
    assert denied["result_bytes"] == 0
    assert (allowed["decision"], allowed["rule"]) == ("allowed", "policy.rules[0]")


async def test_a_refused_argument_never_reaches_the_downstream(write_profile: WriteProfile, mcpmux_home: Path):
    # `crash` takes no arguments: were the refused call forwarded, the downstream would exit with code 7.
    rule = '\n[[policy.rules]]\ntools = ["alpha__crash"]\neffect = "allow"\n[policy.rules.args]\n'
    rule += 'confirm = { equals = "yes", required = true }\n'
    profile = write_profile(fixture_server_toml("alpha") + rule)
    async with host_session(profile) as host:
        refused = await host.call_tool("alpha__crash", {"confirm": "no"})
        after = await host.call_tool("alpha__echo", {"text": "same process"})
    assert refused.is_error
    assert "policy.rules[0].args.confirm.equals" in text_of(refused)
    assert text_of(after) == "same process"
    assert len(audit_events(mcpmux_home, "downstream_start")) == 1
    assert not [e for e in audit_events(mcpmux_home, "downstream_exit") if e.get("exit_code") == 7]


DENY_BIG_AMOUNTS = """
[[policy.rules]]
tools = ["ledger__transfer"]
effect = "deny"
[policy.rules.args]
amount = { min = 100 }
"""


async def test_a_deny_on_amount_refuses_a_numeric_string_the_server_reads_as_that_amount(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(ledger_toml("ledger") + DENY_BIG_AMOUNTS)
    async with host_session(profile) as host:
        as_string = await host.call_tool("ledger__transfer", {"amount": "5000"})
        as_number = await host.call_tool("ledger__transfer", {"amount": 5000})
        small = await host.call_tool("ledger__transfer", {"amount": "5"})
    for refused in (as_string, as_number):
        assert refused.is_error
        assert text_of(refused) == "tool 'ledger__transfer' is not allowed: denied by policy.rules[0]"
    assert (small.is_error, text_of(small)) == (False, "transferred 5")  # the server did coerce the string
    assert [(e["decision"], e["rule"]) for e in calls_of(mcpmux_home, "ledger__transfer")] == [
        ("denied", "policy.rules[0]"),
        ("denied", "policy.rules[0]"),
        ("allowed", 'policy.default = "allow"'),
    ]


PATH_RULES = """
[[policy.rules]]
tools = ["notes__read_note"]
effect = "allow"
[policy.rules.args]
path = {{ within = ["{notes}"] }}

[[policy.rules]]
tools = ["vault__read_note"]
effect = "deny"
[policy.rules.args]
path = {{ within = ["{vault}"] }}
"""


async def test_a_relative_path_is_judged_against_the_servers_cwd_not_mcpmuxs(
    write_profile: WriteProfile, tmp_path: Path
):
    notes, vault = tmp_path / "notes", tmp_path / "vault"
    for folder, name, text in ((notes, "note.txt", "a note"), (vault, "key.txt", "the key")):
        folder.mkdir()
        (folder / name).write_text(text)
    servers = ledger_toml("notes", cwd=f'"{notes}"') + ledger_toml("vault", cwd=f'"{vault}"')
    profile = write_profile(servers + PATH_RULES.format(notes=notes, vault=vault))
    async with host_session(profile) as host:  # mcpmux itself runs in the repository (serve_params)
        inside = await host.call_tool("notes__read_note", {"path": "note.txt"})
        secret = await host.call_tool("vault__read_note", {"path": "key.txt"})
        escaping = await host.call_tool("notes__read_note", {"path": "../vault/key.txt"})
    assert (inside.is_error, text_of(inside)) == (False, "a note")
    assert secret.is_error
    assert text_of(secret) == "tool 'vault__read_note' is not allowed: denied by policy.rules[1]"
    assert escaping.is_error
    assert f"resolves to {vault / 'key.txt'}, outside {notes}" in text_of(escaping)


FIXED_RULE = """
[[policy.rules]]
tools = ["alpha__show_env"]
effect = "allow"
[policy.rules.args]
name = { fixed = "GREETING" }
"""


async def test_a_fixed_argument_is_hidden_from_the_schema_and_forced_into_every_call(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha", env='{ GREETING = "hi", OTHER = "other" }') + FIXED_RULE)
    async with host_session(profile) as host:
        tools = {t.name: t for t in (await host.list_tools()).tools}
        without = await host.call_tool("alpha__show_env", {})
        overridden = await host.call_tool("alpha__show_env", {"name": "OTHER"})
    schema = tools["alpha__show_env"].input_schema
    assert "name" not in schema.get("properties", {})
    assert "name" not in schema.get("required", [])
    assert "text" in tools["alpha__echo"].input_schema["properties"]  # other tools keep their schema
    assert (without.is_error, text_of(without)) == (False, "hi")
    assert (overridden.is_error, text_of(overridden)) == (False, "hi")


# ---- rate and hosts --------------------------------------------------------------------------------------------


async def test_a_rate_limit_refuses_the_call_past_it_and_leaves_other_tools_alone(
    write_profile: WriteProfile, mcpmux_home: Path
):
    rule = '\n[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "allow"\nrate = "2/minute"\n'
    profile = write_profile(fixture_server_toml("alpha") + rule)
    async with host_session(profile) as host:
        results = [await host.call_tool("alpha__echo", {"text": str(i)}) for i in range(3)]
        other = await host.call_tool("alpha__show_env", {"name": "NOPE"})
    assert [r.is_error for r in results] == [False, False, True]
    assert "over the rate 2/minute for this tool" in text_of(results[2])
    assert "policy.rules[0].rate" in text_of(results[2])
    assert not other.is_error
    assert [e["rule"] for e in calls_of(mcpmux_home, "alpha__echo")] == [
        "policy.rules[0]",
        "policy.rules[0]",
        "policy.rules[0].rate",
    ]


async def test_a_lazy_servers_wake_up_takes_one_rate_slot_not_two(write_profile: WriteProfile, mcpmux_home: Path):
    rule = '\n[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "allow"\nrate = "1/minute"\n'
    profile = write_profile(fixture_server_toml("alpha", start='"lazy"') + rule)
    async with host_session(profile) as host:  # no cache yet: it starts once to learn its catalog
        await host.list_tools()
    async with host_session(profile) as host:  # listed from the cache: the first call wakes it
        woken = await host.call_tool("alpha__echo", {"text": "woken"})
        over = await host.call_tool("alpha__echo", {"text": "over"})
    assert (woken.is_error, text_of(woken)) == (False, "woken")
    assert over.is_error
    assert "over the rate 1/minute for this tool" in text_of(over)
    assert [e["rule"] for e in calls_of(mcpmux_home, "alpha__echo")] == ["policy.rules[0]", "policy.rules[0].rate"]


HOST_RULES = """
[[policy.rules]]
tools = ["alpha__echo"]
effect = "deny"
hosts = ["mc*"]

[[policy.rules]]
tools = ["alpha__show_env"]
effect = "allow"
hosts = ["other-host"]
"""
OTHER_HOST = types.Implementation(name="other-host", version="1")


async def test_a_rule_naming_hosts_decides_what_each_host_sees_and_may_call(
    write_profile: WriteProfile, mcpmux_home: Path
):
    profile = write_profile(fixture_server_toml("alpha") + HOST_RULES)
    async with host_session(profile) as host:  # the SDK client's clientInfo.name is "mcp"
        names = {t.name for t in (await host.list_tools()).tools}
        refused = await host.call_tool("alpha__echo", {"text": "x"})
    async with host_session(profile, client_info=OTHER_HOST) as other:
        other_names = {t.name for t in (await other.list_tools()).tools}
        allowed = await other.call_tool("alpha__echo", {"text": "for other-host"})
    assert "alpha__echo" not in names
    assert {"alpha__echo", "alpha__show_env"} <= other_names
    assert "alpha__show_env" in names  # an allow rule for another host does not hide it under default = "allow"
    assert refused.is_error
    assert "denied by policy.rules[0]" in text_of(refused)
    assert text_of(allowed) == "for other-host"
    assert [(e["host"], e["decision"], e["rule"]) for e in calls_of(mcpmux_home, "alpha__echo")] == [
        ("mcp", "denied", "policy.rules[0]"),
        ("other-host", "allowed", 'policy.default = "allow"'),
    ]


async def test_under_default_deny_an_allow_rule_naming_this_host_lists_and_allows_the_tool(
    write_profile: WriteProfile,
):
    rule = '[policy]\ndefault = "deny"\n\n[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "allow"\n'
    profile = write_profile(fixture_server_toml("alpha") + rule + 'hosts = ["other-host"]\n')
    async with host_session(profile, client_info=OTHER_HOST) as other:
        names = {t.name for t in (await other.list_tools()).tools}
        result = await other.call_tool("alpha__echo", {"text": "finance agent"})
    assert names == {"alpha__echo"}
    assert text_of(result) == "finance agent"


# ---- time windows, in-process with an injected clock --------------------------------------------------------------

WINDOW_RULE = """
[[policy.rules]]
tools = ["alpha__echo"]
effect = "allow"
hours = "09:00-17:00"
days = ["mon-fri"]
timezone = "UTC"
"""


async def test_a_time_window_allows_calls_inside_it_and_refuses_them_outside_naming_the_rule(
    write_profile: WriteProfile,
):
    profile = load_profile(write_profile(fixture_server_toml("alpha") + WINDOW_RULE))
    now = [MONDAY_10]
    async with open_gateway(profile, clock=lambda: now[0]) as gateway:
        with anyio.fail_after(30):
            await gateway.supervisor.ready.wait()
            inside = await gateway.relay.call("alpha__echo", {"text": "in hours"})
            now[0] = MONDAY_20
            evening = await gateway.relay.call("alpha__echo", {"text": "late"})
            now[0] = SATURDAY_10
            weekend = await gateway.relay.call("alpha__echo", {"text": "weekend"})
            untimed = await gateway.relay.call("alpha__show_env", {"name": "NOPE"})
    assert not inside.get("isError")
    assert inside["content"][0]["text"] == "in hours"
    assert evening.get("isError")
    assert "policy.rules[0].hours" in evening["content"][0]["text"]
    assert weekend.get("isError")
    assert "policy.rules[0].days" in weekend["content"][0]["text"]
    assert not untimed.get("isError")  # a tool no rule covers ignores the window


async def test_a_deny_rule_with_hours_refuses_only_inside_its_window(write_profile: WriteProfile):
    rule = '\n[[policy.rules]]\ntools = ["alpha__echo"]\neffect = "deny"\nhours = "18:00-08:00"\n'
    profile = load_profile(write_profile(fixture_server_toml("alpha") + rule))
    now = [MONDAY_20]
    async with open_gateway(profile, clock=lambda: now[0]) as gateway:
        with anyio.fail_after(30):
            await gateway.supervisor.ready.wait()
            night = await gateway.relay.call("alpha__echo", {"text": "night"})
            now[0] = MONDAY_10
            day = await gateway.relay.call("alpha__echo", {"text": "day"})
    assert night.get("isError")
    assert "denied by policy.rules[0]" in night["content"][0]["text"]
    assert not day.get("isError")
    assert day["content"][0]["text"] == "day"


# ---- policy explain --------------------------------------------------------------------------------------------

EXPLAIN_PROFILE = """
[policy]
default = "deny"
deny = ["alpha__delete_*"]

[[policy.rules]]
tools = ["alpha__echo"]
effect = "allow"
hours = "09:00-17:00"
[policy.rules.args]
text = { pattern = "^[a-z]+$" }
"""


async def explain(profile: Path, *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "mcpmux", "policy", "explain", *args, "--profile", str(profile), "--json"]
    with anyio.fail_after(30):
        done = await anyio.run_process(command, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


async def test_policy_explain_json_names_the_deciding_rule(write_profile: WriteProfile):
    profile = write_profile(fixture_server_toml("alpha") + EXPLAIN_PROFILE)
    at = ["--at", MONDAY_10.isoformat()]
    allowed = await explain(profile, "alpha__echo", "--args", '{"text": "hello"}', *at)
    refused = await explain(profile, "alpha__echo", "--args", '{"text": "Hello"}', *at)
    late = await explain(profile, "alpha__echo", "--args", '{"text": "hello"}', "--at", MONDAY_20.isoformat())
    hidden = await explain(profile, "alpha__delete_everything")
    unruled = await explain(profile, "alpha__show_env")
    assert (allowed["list"]["allowed"], allowed["call"]["allowed"], allowed["call"]["rule"]) == (
        True,
        True,
        "policy.rules[0]",
    )
    assert [m["rule"] for m in allowed["matched"]] == ["policy.rules[0]"]
    assert (refused["call"]["allowed"], refused["call"]["rule"]) == (False, "policy.rules[0].args.text.pattern")
    assert (late["call"]["allowed"], late["call"]["rule"]) == (False, "policy.rules[0].hours")
    assert (hidden["list"]["allowed"], hidden["list"]["rule"]) == (False, 'policy.deny[0] "alpha__delete_*"')
    assert (unruled["list"]["allowed"], unruled["list"]["rule"]) == (False, 'policy.default = "deny"')
