"""End to end, `shared = false` servers: SDK hosts attached to one shared gateway, each with copies of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.context import ClientRequestContext
from mcp.client.session import ClientSession, ElicitationFnT, ListRootsFnT

from mcpmux.control import pid_alive
from tests.conftest import FIXTURES, REPO, fixture_server_toml, processes_marked_by
from tests.e2e_helpers import audit_events, gateway_pids, wait_for_exit
from tests.test_shared_e2e import WriteProfile, shared_host, status_json, text_of

pytestmark = pytest.mark.anyio

SESSION_SERVER = FIXTURES / "session_server.py"


def session_toml(*settings: str) -> str:
    """The per-session fixture server as a `shared = false` server (a copy for each host)."""
    lines = ["[servers.session]", f'command = "{sys.executable}"', f'args = ["{SESSION_SERVER}"]', "shared = false"]
    return "\n".join([*lines, *settings]) + "\n"


def profile_text(*extra: str) -> str:
    return fixture_server_toml("alpha") + session_toml() + "".join(extra)


def pid_of_serve(gateway: dict[str, Any], copy: int) -> int:
    """The pid of the serve (the host's pipe) whose copy has pid `copy`, as `status --json` shows it."""
    (host,) = [h for h in gateway["hosts"] if any(s["pid"] == copy for s in h["servers"])]
    return int(host["pipe_pid"])


async def pid_of(session: ClientSession) -> int:
    return int(text_of(await session.call_tool("session__pid", {})))


async def test_a_private_server_runs_once_per_host_and_keeps_each_hosts_state_apart(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(profile_text())
    async with shared_host(profile, idle=0.5) as first, shared_host(profile, idle=0.5) as second:
        assert text_of(await first.call_tool("session__remember", {"value": "first's"})) == ""
        assert text_of(await second.call_tool("session__remember", {"value": "second's"})) == ""
        recalled = [text_of(await host.call_tool("session__recall", {})) for host in (first, second)]
        pids = [await pid_of(host) for host in (first, second)]
        echoed = text_of(await second.call_tool("alpha__echo", {"text": "shared"}))
        names = [sorted(t.name for t in (await host.list_tools()).tools) for host in (first, second)]
        (gateway,) = gateway_pids(mcpmux_home)
        processes = processes_marked_by(gateway)
        statuses = await anyio.to_thread.run_sync(status_json)
        command = [sys.executable, "-m", "mcpmux", "status"]
        shown_text = await anyio.run_process(command, cwd=REPO, check=False)
    assert recalled == ["first's", "second's"]
    assert echoed == "shared"
    assert pids[0] != pids[1] and set(pids) <= set(processes)
    assert len(processes) == 3  # alpha once; session once for each host
    assert names[0] == names[1] and {"alpha__echo", "session__recall", "session__ask"} <= set(names[0])
    (shown,) = [s for s in statuses if s.get("shared")]
    assert [s["name"] for s in shown["servers"]] == ["alpha"]  # the gateway's own: the shared ones
    own = [[(s["name"], s["pid"], s["status"]) for s in h["servers"]] for h in shown["hosts"]]
    assert sorted(own) == sorted([[("session", pid, "running")] for pid in pids])
    for pid in pids:  # the table names each copy with its host
        assert f"session (for mcp, serve pid {pid_of_serve(shown, pid)})" in shown_text.stdout.decode()
    logs = {s["log_path"] for h in shown["hosts"] for s in h["servers"]}
    assert len(logs) == 2  # each host's copy logs into a file of its own
    await wait_for_exit(gateway, 20)
    assert processes_marked_by(gateway) == []


async def test_a_private_servers_question_reaches_only_its_own_host_while_both_hosts_call_it(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(profile_text())
    asked: dict[str, list[str]] = {"one": [], "two": []}
    both_asked = anyio.Event()

    def elicit_as(who: str) -> ElicitationFnT:
        async def elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
            asked[who].append(params.message)
            if all(asked.values()):
                both_asked.set()
            await both_asked.wait()  # answered only once both calls are in flight and both hosts were asked
            return types.ElicitResult(action="accept", content={"answer": f"{who} answers"})

        return elicit

    results: dict[str, str] = {}

    async def ask(who: str, host: ClientSession) -> None:
        results[who] = text_of(await host.call_tool("session__ask", {"question": f"for {who}?"}))

    async with (
        shared_host(profile, elicitation_callback=elicit_as("one")) as one,
        shared_host(profile, elicitation_callback=elicit_as("two")) as two,
    ):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "one", one)
                tg.start_soon(ask, "two", two)
    assert results == {"one": "one answers", "two": "two answers"}
    assert asked == {"one": ["for one?"], "two": ["for two?"]}


async def test_a_private_servers_roots_are_its_own_hosts_while_both_hosts_call_it(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(profile_text())
    listed: dict[str, int] = {"one": 0, "two": 0}
    both_asked = anyio.Event()

    def roots_of(who: str) -> ListRootsFnT:
        async def roots(context: ClientRequestContext) -> types.ListRootsResult:
            listed[who] += 1
            if all(listed.values()):
                both_asked.set()
            await both_asked.wait()  # both calls in flight: a shared server would ask neither host
            return types.ListRootsResult(roots=[types.Root.model_validate({"uri": f"file:///{who}"})])

        return roots

    results: dict[str, str] = {}

    async def ask(who: str, host: ClientSession) -> None:
        results[who] = text_of(await host.call_tool("session__roots", {}))

    async with (
        shared_host(profile, list_roots_callback=roots_of("one")) as one,
        shared_host(profile, list_roots_callback=roots_of("two")) as two,
    ):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, "one", one)
                tg.start_soon(ask, "two", two)
    assert results == {"one": "file:///one", "two": "file:///two"}


async def test_a_host_that_detaches_ends_its_copy_and_leaves_the_other_hosts_untouched(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(profile_text())
    async with shared_host(profile, idle=0.5) as staying:
        await staying.call_tool("session__remember", {"value": "kept"})
        kept = await pid_of(staying)
        async with shared_host(profile, idle=0.5) as leaving:
            gone = await pid_of(leaving)
        await wait_for_exit(gone, 20)
        recalled = text_of(await staying.call_tool("session__recall", {}))
        still = await pid_of(staying)
        (gateway,) = gateway_pids(mcpmux_home)
        processes = processes_marked_by(gateway)
    assert recalled == "kept" and still == kept
    assert len(processes) == 2 and gone not in processes  # alpha, and the staying host's copy
    await wait_for_exit(gateway, 20)
    assert processes_marked_by(gateway) == [] and not pid_alive(kept)
    detached = audit_events(mcpmux_home, "host_detached")
    assert len(detached) == 2


async def test_a_policy_deny_applies_to_a_private_servers_tools(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    rule = '[[policy.rules]]\ntools = ["session__remember"]\neffect = "deny"\n'
    profile = write_profile(profile_text(rule))
    async with shared_host(profile) as host:
        names = {t.name for t in (await host.list_tools()).tools}
        denied = await host.call_tool("session__remember", {"value": "x"})
        allowed = text_of(await host.call_tool("session__recall", {}))
    assert "session__remember" not in names and "session__recall" in names
    assert denied.is_error and "is not allowed" in text_of(denied)
    assert allowed == ""  # the denied call never reached the copy
    calls = [(e["exposed"], e["decision"]) for e in audit_events(mcpmux_home, "tool_call")]
    assert ("session__remember", "denied") in calls and ("session__recall", "allowed") in calls


async def test_a_copy_that_crashes_is_restarted_without_touching_the_other_hosts_copy(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(profile_text())
    async with shared_host(profile) as crashing, shared_host(profile) as other:
        await other.call_tool("session__remember", {"value": "other's"})
        others = await pid_of(other)
        crashed = await pid_of(crashing)
        await crashing.call_tool("session__crash", {})
        await wait_for_exit(crashed, 20)
        with anyio.fail_after(30):
            while True:  # nothing signals "restarted" to the caller; poll its observable effect, bounded
                if not (answer := await crashing.call_tool("session__pid", {})).is_error:
                    break
                await anyio.sleep(0.05)
        restarted = int(text_of(answer))
        recalled = text_of(await other.call_tool("session__recall", {}))
        still = await pid_of(other)
    assert restarted != crashed
    assert (still, recalled) == (others, "other's")
    restarts = audit_events(mcpmux_home, "downstream_restart")
    assert [e["server"] for e in restarts] == ["session"]


async def copy_pid(host: ClientSession, other_than: set[int]) -> int:
    """The pid of the host's copy once it is one not in `other_than` (a live switch is applied asynchronously)."""
    with anyio.fail_after(30):
        while True:  # nothing tells a host that a switch was applied; poll its observable effect, bounded
            answer = await host.call_tool("session__pid", {})
            if not answer.is_error and int(text_of(answer)) not in other_than:
                return int(text_of(answer))
            await anyio.sleep(0.1)


async def test_a_live_edit_adds_changes_and_removes_every_hosts_copy(
    write_profile: WriteProfile, mcpmux_home: Path, gateways: None
) -> None:
    profile = write_profile(fixture_server_toml("alpha"))
    async with shared_host(profile) as first, shared_host(profile) as second:
        hosts = (first, second)
        assert text_of(await first.call_tool("alpha__echo", {"text": "before"})) == "before"
        write_profile(profile_text())  # the same file, saved with the server added: hosts attached before get copies
        added = [await copy_pid(host, set()) for host in hosts]
        write_profile(profile_text('env = { MODE = "changed" }\n'))  # the server's settings changed
        for pid in added:
            await wait_for_exit(pid, 30)
        changed = [await copy_pid(host, set(added)) for host in hosts]
        write_profile(fixture_server_toml("alpha"))  # saved without the server
        for pid in changed:
            await wait_for_exit(pid, 30)
        names = {t.name for t in (await first.list_tools()).tools}
        echoed = text_of(await second.call_tool("alpha__echo", {"text": "still"}))
    assert len(set(added)) == 2 and len(set(changed)) == 2
    assert not any(name.startswith("session__") for name in names)
    assert echoed == "still"


def test_validate_accepts_shared_false_and_names_a_value_that_is_not_a_boolean(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(session_toml())
    bad.write_text(session_toml().replace("shared = false", 'shared = "no"'))

    def validate(path: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mcpmux", "validate", str(path)]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)

    accepted, refused = validate(good), validate(bad)
    assert accepted.returncode == 0, accepted.stderr
    assert refused.returncode == 1
    problems: Any = refused.stdout + refused.stderr
    assert f"{bad}:4: servers.session.shared: must be true or false, not a string" in problems


async def test_outside_shared_mode_a_shared_false_server_is_served_as_any_other(
    write_profile: WriteProfile, mcpmux_home: Path
) -> None:
    profile = write_profile(profile_text())
    command = [sys.executable, "-m", "mcpmux", "call", "session__remember", "value=v", "--profile", str(profile)]
    done = await anyio.run_process(command, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert [e.get("shared") for e in audit_events(mcpmux_home, "serve_start")] == []  # no gateway was started
    calls = [(e["exposed"], e["outcome"]) for e in audit_events(mcpmux_home, "tool_call")]
    assert calls == [("session__remember", "ok")]
