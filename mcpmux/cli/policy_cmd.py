"""`mcpmux policy explain TOOL`: why a tool is listed or hidden, and why a call would be allowed or refused.

It starts no downstream, so a tool's annotations are unknown unless given with
`--read-only-hint` / `--destructive-hint`; unknown is read as unannotated (the MCP
spec's defaults: not read-only, destructive). Rate limits count per serve process,
so explain always sees a fresh window. Relative paths in `--args` are read against
the downstream's working directory, as `serve` reads them: `--cwd`, else the `cwd`
of the server the tool's namespace names, else the current directory.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mcpmux.catalog.naming import split
from mcpmux.cli._console import cell, err_console, out_console, say
from mcpmux.cli._json import print_json
from mcpmux.cli._options import TIME_HELP, ProfileOption, parse_time_option
from mcpmux.errors import MCPMuxError
from mcpmux.policy.decide import Policy
from mcpmux.policy.verdict import CallDecision, Decision, ToolFacts
from mcpmux.profile.model import DAY_NAMES, PolicyRule, Profile

sub = typer.Typer(help="Explain the profile's policy decisions.", no_args_is_help=True)

_RULE_KEY = re.compile(r"policy\.rules\[(\d+)\]")


def _parse_args(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MCPMuxError(f'--args is not JSON ({exc}); write e.g. --args \'{{"branch": "main"}}\'') from exc
    if not isinstance(value, dict):
        raise MCPMuxError('--args must be a JSON object; write e.g. --args \'{"branch": "main"}\'')
    return value  # pyright: ignore[reportUnknownVariableType]


def server_cwd(profile: Profile, tool: str) -> str | None:
    """The `cwd` of the server whose namespace starts `tool` (None: it has none, or no server matches)."""
    parts = split(tool)
    spec = next((s for s in profile.servers if parts and s.namespaced and s.prefix == parts[0]), None)
    return None if spec is None or spec.cwd is None else str(spec.cwd)


def describe_rule(rule: PolicyRule) -> str:
    """One line summarising a rule, as the profile wrote it."""
    parts = [f"{rule.effect} {', '.join(rule.tools)}"]
    if rule.hosts is not None:
        parts.append(f"hosts {', '.join(rule.hosts)}")
    if rule.days is not None:
        parts.append("days " + ",".join(DAY_NAMES[d] for d in sorted(rule.days)))
    if rule.hours is not None:
        parts.append(f"hours {rule.hours.text} {rule.timezone}")
    if rule.rate is not None:
        parts.append(f"rate {rule.rate.text}")
    parts += [f"args.{a.name}" for a in rule.args]
    return "; ".join(parts)


def _describe(key: str, rules: tuple[PolicyRule, ...]) -> str:
    m = _RULE_KEY.match(key)
    rule = next((r for r in rules if m and r.index == int(m.group(1))), None)
    return describe_rule(rule) if rule is not None else key


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {"allowed": decision.allowed, "rule": decision.rule, "reason": decision.reason}


def explain(
    tool: Annotated[str, typer.Argument(help="The exposed tool name, e.g. git__git_log.")],
    args: Annotated[str | None, typer.Option("--args", help="The call's arguments as a JSON object.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="The host's clientInfo.name, e.g. claude-ai.")] = None,
    at: Annotated[str | None, typer.Option("--at", help=f"When the call happens (default now): {TIME_HELP}")] = None,
    profile: ProfileOption = None,
    read_only_hint: Annotated[
        bool | None, typer.Option("--read-only-hint/--no-read-only-hint", help="The tool's readOnlyHint.")
    ] = None,
    destructive_hint: Annotated[
        bool | None, typer.Option("--destructive-hint/--no-destructive-hint", help="The tool's destructiveHint.")
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option("--cwd", help="The downstream's working directory for relative paths (default: its profile cwd)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object to stdout.")] = False,
) -> None:
    """Show the list-time and call-time decisions for TOOL, the deciding rule and every rule that matched."""
    from mcpmux.profile.lookup import resolve_profile

    arguments, when = _parse_args(args), parse_time_option(at, "--at")
    resolved = resolve_profile(profile)
    policy = Policy.from_spec(resolved.policy, clock=None if when is None else (lambda: when))
    facts = ToolFacts(read_only_hint, destructive_hint)
    known = read_only_hint is not None or destructive_hint is not None
    listed = policy.decide(tool, tool=facts, host=host)
    directory = str(Path(cwd).resolve()) if cwd is not None else server_cwd(resolved, tool) or str(Path.cwd())
    call = policy.decide_call(tool, arguments, tool=facts, host=host, cwd=directory)
    notes = [] if known else ["annotations unknown (no downstream started): read as unannotated, per the MCP spec"]
    if as_json:
        _print_json(tool, host, when, facts, known, listed, call, notes, resolved.policy.rules, directory)
        return
    table = Table("", "verdict", "rule", "reason", title=cell(f"{tool} ({resolved.path})"))
    for stage, decision in (("list", listed), ("call", call.decision)):
        verdict = "[green]allowed[/green]" if decision.allowed else "[red]denied[/red]"
        table.add_row(stage, verdict, cell(decision.rule), cell(decision.reason))
    out_console.print(table)
    if listed.matched:
        matched = Table("matched", "what", title="every rule that covers this tool and host")
        for key in listed.matched:
            matched.add_row(cell(key), cell(_describe(key, resolved.policy.rules)))
        out_console.print(matched)
    if call.decision.allowed and call.arguments != arguments:
        say(f"forwarded arguments: {json.dumps(call.arguments)}", out_console)
    if arguments:
        say(f"relative paths read against: {directory}", out_console)
    for note in notes:
        err_console.print(f"note: {note}; pass --read-only-hint / --destructive-hint", highlight=False)


def _print_json(
    tool: str,
    host: str | None,
    when: datetime | None,
    facts: ToolFacts,
    known: bool,
    listed: Decision,
    call: CallDecision,
    notes: list[str],
    rules: tuple[PolicyRule, ...],
    cwd: str,
) -> None:
    result = {
        "tool": tool,
        "host": host,
        "at": None if when is None else when.isoformat(),
        "annotations": {"known": known, "read_only": facts.read_only, "destructive": facts.destructive},
        "list": _decision_json(listed),
        "call": {**_decision_json(call.decision), "arguments": call.arguments},
        "matched": [{"rule": key, "what": _describe(key, rules)} for key in listed.matched],
        "cwd": cwd,
        "notes": notes,
    }
    print_json(result)


def register(app: typer.Typer) -> None:
    sub.command("explain")(explain)
    app.add_typer(sub, name="policy")
