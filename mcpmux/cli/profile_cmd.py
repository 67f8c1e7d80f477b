"""`mcpmux validate` and `mcpmux profile list|use|show`: thin commands over `mcpmux.profile`.

None of these starts a downstream. Problems print as `file:line: key.path: message (fix)`,
one per line and never wrapped, so editors and CI can jump to them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich.syntax import Syntax
from rich.table import Table

from mcpmux.cli._active import active_json, active_line
from mcpmux.cli._console import cell, err_console, out_console, say
from mcpmux.cli._json import print_json
from mcpmux.cli._options import JsonOption, ProfileOption, one_profile
from mcpmux.errors import ControlError, MCPMuxError, Problem, ProfileError
from mcpmux.printable import printable
from mcpmux.profile import lookup as profiles
from mcpmux.profile.load import load_profile, load_profile_and_text
from mcpmux.profile.model import Profile, ServerSpec

sub = typer.Typer(help="List, choose and show profiles.", no_args_is_help=True)

Target = Annotated[
    str | None,
    typer.Argument(help="Profile name or path; default: the active profile.", show_default=False),
]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {"file": str(problem.path), "line": problem.line, "key": problem.key, "message": problem.message} | {
        "fix": problem.fix
    }


def validate(target: Target = None, profile_option: ProfileOption = None, as_json: JsonOption = False) -> None:
    """Check a profile (syntax, keys, types, names, secret references, policy) without starting anything."""
    try:
        profile = profiles.resolve_profile(one_profile(target, profile_option))
    except ProfileError as exc:
        if as_json:
            print_json({"ok": False, "path": None, "servers": None, "problems": list(map(_problem_json, exc.problems))})
        else:
            for problem in exc.problems:
                say(str(problem))
        # The problems are printed above; the error only sets the exit code and says how many.
        raise MCPMuxError(f"{_plural(len(exc.problems), 'problem')} found; fix them and validate again") from exc
    if as_json:
        print_json({"ok": True, "path": str(profile.path), "servers": len(profile.servers), "problems": []})
        return
    count = _plural(len(profile.servers), "server")
    say(f"ok: {profile.path} ({count})")


def _list_json(entries: list[profiles.ProfileEntry]) -> None:
    from mcpmux.profile.trust import trust_status

    listed: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in entries:
        try:
            loaded = load_profile(entry.path)
            servers, trust, problems = len(loaded.servers), trust_status(loaded), []
        except ProfileError as exc:
            servers, trust, problems = None, None, list(map(_problem_json, exc.problems))
        row = {"name": entry.name, "path": str(entry.path), "source": entry.source, "shadowed": entry.name in seen}
        listed.append(row | {"active": entry.active, "trust": trust, "servers": servers, "problems": problems})
        seen.add(entry.name)
    print_json({"active": active_json(), "profiles": listed})


@sub.command("list")
def list_cmd(as_json: JsonOption = False) -> None:
    """List project profiles (profiles/ from here up to the repository root) and user profiles; `*` marks the active."""
    from mcpmux.profile.trust import trust_status

    entries = profiles.list_profiles()
    if as_json:
        _list_json(entries)
        return
    if not entries:
        err_console.print("no profiles found in profiles/ folders up to the repository root or the user folder")
        err_console.print(active_line(), markup=False, highlight=False, soft_wrap=True)
        return
    seen: set[str] = set()
    table = Table("", "name", "source", "trust", "servers", "path")
    for entry in entries:
        try:
            loaded = load_profile(entry.path)
            servers, trust = cell(len(loaded.servers)), cell(trust_status(loaded))
        except ProfileError:
            servers, trust = cell("invalid", "red"), cell("")
        # A name already listed (nearer project folder first, then user) is never picked by name: say so.
        source = f"{entry.source} (shadowed)" if entry.name in seen else entry.source
        seen.add(entry.name)
        table.add_row("*" if entry.active else "", cell(entry.name), source, trust, servers, cell(entry.path))
    out_console.print(table)
    # Said in full, since the active profile may live in another project than the ones listed here.
    err_console.print(active_line(), markup=False, highlight=False, soft_wrap=True)


@sub.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Name of the new profile (its file is NAME.toml).")],
    source: Annotated[str | None, typer.Option("--from", help="Copy this profile instead of the starter.")] = None,
    user: Annotated[bool, typer.Option("--user", help="Write to your user profiles, not ./profiles.")] = False,
) -> None:
    """Write a commented starter profile (or a copy of another) to ./profiles/NAME.toml; never overwrites."""
    from mcpmux.paths import state_paths
    from mcpmux.profile.starter import copied_text, starter_text, write_new

    folder = state_paths().profiles_dir if user else Path.cwd() / profiles.PROJECT_DIR
    text = copied_text(profiles.find_profile(source)) if source else starter_text(name)
    target = write_new(folder / f"{name}.toml", text, private=user)
    say(f"wrote {target}; check it with: mcpmux validate {target}")


@sub.command("use")
def use(name: Annotated[str, typer.Argument(help="Profile name or path.")]) -> None:
    """Make a profile the active one (recorded by its absolute path); it must load cleanly and be trusted first."""
    from mcpmux.profile.trust import require_trusted

    require_trusted(profiles.resolve_profile(name))
    path = profiles.set_active_profile(name)
    # The path is what was recorded: a host's `mcpmux serve` finds it from whatever folder it starts in.
    say(f"active profile: {path.stem} ({path})")
    for line in anyio.run(running_serves_note, name):
        say(line)  # names the host each serve reported: text from outside


# Hosts known to accept `notifications/tools/list_changed` without refreshing their tool list
# (clientInfo name → what the user must do instead).
STALE_ON_LIST_CHANGED = {
    "claude-ai": "Claude Desktop does not refresh its tools on list_changed: restart it (or reopen the chat)",
}


async def running_serves_note(name: str) -> list[str]:
    """One line per running serve: whether it follows this switch, and what its host needs to see it."""
    from mcpmux.control import list_endpoints, request

    lines: list[str] = []
    for endpoint in list_endpoints():
        try:
            status = await request(endpoint.path, "status", timeout_seconds=2.0)
        except ControlError:
            continue
        host = status.get("host") or "an unknown host"
        if not status.get("follows_active"):
            lines.append(f"serve pid {endpoint.pid} ({host}) is pinned to '{status.get('profile')}' and stays on it")
            continue
        lines.append(f"serve pid {endpoint.pid} ({host}) switches to '{name}' now; its host is told with list_changed")
        if (advice := STALE_ON_LIST_CHANGED.get(str(status.get("host")))) is not None:
            lines.append(f"  note: {advice}")
    return lines


def server_json(server: ServerSpec) -> dict[str, Any]:
    """A server of a profile as `profile show --json` prints it: what runs, never a secret's value."""
    runs = {"command": server.command, "args": list(server.args), "url": server.url, "cwd": server.cwd}
    return {"name": server.name, **runs, "secrets": list(server.secret_names), "enabled": server.enabled}


def _show_json(profile: Profile) -> None:
    from mcpmux.profile.trust import trust_status

    about = {"name": profile.name, "path": str(profile.path), "description": profile.description}
    files = [{"path": str(path), "sha256": sha} for path, sha in profile.source_hashes.items()]
    servers = [server_json(server) for server in profile.servers]
    print_json(about | {"sha256": profile.sha256, "trust": trust_status(profile), "files": files, "servers": servers})


@sub.command("show")
def show(
    target: Target = None,
    profile_option: ProfileOption = None,
    resolved: Annotated[
        bool, typer.Option("--resolved", help="Print the effective profile, `extends` merged.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print a profile's TOML and a summary of its servers (secrets by name only, never values)."""
    path = profiles.resolve_profile_path(one_profile(target, profile_option))
    if as_json:
        _show_json(load_profile(path))  # an invalid profile is an error naming its problems
        return
    if resolved:
        from mcpmux.profile.inherit import resolved_toml

        load_profile(path)  # only a valid profile has an effective form; errors name the file that holds them
        # Plain TOML, so it can be redirected into a file. Escapes stay valid TOML: tomli_w already writes
        # control characters as \u escapes, and `printable` writes the rest (bidi, zero-width) as \uXXXX.
        typer.echo(printable(resolved_toml(path), lines=True), nl=False)
        return
    try:
        profile, text = load_profile_and_text(path)  # one read: the text shown is the text parsed
    except ProfileError:
        _print_toml(path.read_bytes().decode("utf-8", errors="replace"))  # what the problems point into
        raise
    _print_toml(text)
    title = f"{profile.name}: {profile.description}" if profile.description else profile.name
    table = Table("server", "runs", "secrets", "enabled", title=cell(title))
    for server in profile.servers:
        runs = server.url or shlex.join([server.command or "", *server.args])
        secrets = ", ".join(server.secret_names) or "-"
        table.add_row(cell(server.name), cell(runs), cell(secrets), "yes" if server.enabled else "no")
    out_console.print(table)


def _print_toml(text: str) -> None:
    # TOML allows raw bidi overrides and zero-width characters in strings and comments: shown escaped.
    if not out_console.is_terminal:  # piped: the TOML as it is, not padded to the (unbounded) width
        say(text.removesuffix("\n"), out_console)
        return
    out_console.print(Syntax(printable(text, lines=True), "toml", line_numbers=True, word_wrap=True))


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(sub, name="profile")
