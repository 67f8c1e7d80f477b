"""`mcpmux doctor`: every check that a profile would work here, each with the fix when it fails.

Checks are data (`Check`), gathered by small functions; the CLI only renders them. Secret
checks ask the keyring whether a value is present and never hold on to (or print) it.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcpmux.downstream.process import base_environment, resolve_command, with_search_path
from mcpmux.errors import MCPMuxError, ProfileError, SecretError
from mcpmux.hosts.configs import HOST_NAMES, HOSTS, config_paths, read_config, server_tables
from mcpmux.oauth.storage import KeyringTokenStorage
from mcpmux.paths import state_paths
from mcpmux.profile.lookup import resolve_profile
from mcpmux.profile.model import Profile
from mcpmux.profile.trust import trust_command, trust_status
from mcpmux.secrets.keyrings import backend_name, backend_warning
from mcpmux.secrets.store import KeyringStore, SecretStore

Status = Literal["ok", "warn", "fail"]
_PACKAGES = ("mcpmux", "mcp", "keyring", "anyio")
_WEAK_BACKENDS = ("fail.Keyring", "null.Keyring", "unavailable")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def environment_checks() -> list[Check]:
    version = ".".join(str(v) for v in sys.version_info[:3])
    python_ok = sys.version_info >= (3, 11)
    checks = [Check("python", "ok" if python_ok else "fail", f"{version} ({sys.executable})", "use Python 3.11+")]
    for package in _PACKAGES:
        try:
            checks.append(Check(f"package {package}", "ok", importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(f"package {package}", "fail", "not installed", "pip install -e . (or mcpmux)"))
    backend = backend_name()
    if any(weak in backend for weak in _WEAK_BACKENDS):
        fix = "run a Secret Service (GNOME Keyring, KeePassXC) or set PYTHON_KEYRING_BACKEND"
        checks.append(Check("keyring backend", "fail", backend, fix))
    elif (warning := backend_warning()) is not None:  # the test `secret set` and `import` warn on
        kind = "stores values unencrypted" if warning.plaintext else "not an OS keyring"
        fix = "fine for tests; use the OS keyring for real credentials"
        checks.append(Check("keyring backend", "warn", f"{backend} ({kind})", fix))
    else:
        checks.append(Check("keyring backend", "ok", backend))
    return checks


def profile_checks(profile_arg: str | None, *, cwd: Path | None = None) -> tuple[Profile | None, list[Check]]:
    """Is the profile found, valid, trusted, and does each enabled server's command resolve?"""

    try:
        profile = resolve_profile(profile_arg, cwd=cwd)
    except ProfileError as exc:
        shown = "; ".join(str(p) for p in exc.problems[:5])
        return None, [Check("profile", "fail", shown, "fix the problems above; `mcpmux validate` lists them all")]
    checks = [Check("profile", "ok", f"{profile.name} ({profile.path}), {len(profile.servers)} servers")]
    checks += _trust_checks(profile)
    for server in profile.enabled_servers:
        if server.command is None:
            checks.append(Check(f"server {server.name}", "ok", f"remote: {server.url}"))
            continue
        env = {**base_environment(), **{k: v for k, v in server.env.items() if isinstance(v, str)}}
        env = with_search_path(env, server.search_path)
        found = resolve_command(server.command, env, server.cwd)
        if found is None:
            fix = "install it, or write its absolute path as `command`"
            checks.append(Check(f"server {server.name}", "fail", f"command '{server.command}' not found", fix))
        else:
            checks.append(Check(f"server {server.name}", "ok", f"command {found}"))
    return profile, checks


def _trust_checks(profile: Profile) -> list[Check]:
    try:
        status = trust_status(profile)
    except MCPMuxError as exc:
        return [Check("trust", "fail", str(exc))]
    if status in ("user", "trusted"):
        return [Check("trust", "ok", "your own profile" if status == "user" else "trusted (this exact content)")]
    detail = "changed since you trusted it" if status == "changed" else "not trusted yet"
    return [Check("trust", "fail", detail, f"review it, then: {trust_command(profile.path)}")]


async def secret_checks(profile: Profile, store: SecretStore) -> list[Check]:
    checks: list[Check] = []
    for name in sorted({n for s in profile.enabled_servers for n in s.secret_names}):
        try:
            present = await store.get(name) is not None
        except SecretError as exc:
            checks.append(Check(f"secret {name}", "fail", str(exc)))
            continue
        if present:
            checks.append(Check(f"secret {name}", "ok", "present in the keyring"))
        else:
            checks.append(Check(f"secret {name}", "fail", "missing", f"mcpmux secret set {name}"))
    return checks


async def sign_in_checks(profile: Profile) -> list[Check]:
    """Each remote server that signs in with OAuth: whether `auth login` has stored a token (never shown)."""
    checks: list[Check] = []
    for spec in (s for s in profile.enabled_servers if s.url is not None and s.oauth is not None):
        assert spec.url is not None
        storage = KeyringTokenStorage(KeyringStore(), spec.name, spec.url)
        name, fix = f"sign-in {spec.name}", f"mcpmux auth login {spec.name}"
        try:
            signed_in = await storage.load() and storage.signed_in
        except SecretError as exc:
            checks.append(Check(name, "fail", str(exc)))
            continue
        if signed_in:
            left = storage.seconds_left()
            when = "" if left is None else " (expired: refreshes on use)" if left <= 0 else f" (for {int(left)} s)"
            checks.append(Check(name, "ok", f"signed in with OAuth{when}"))
        else:
            checks.append(Check(name, "warn", "not signed in with OAuth (needed if the server asks for it)", fix))
    return checks


def _runs_mcpmux(entry: Any) -> str | None:
    """The command line of a host entry that starts mcpmux, else None."""
    if not isinstance(entry, dict):
        return None
    command, args = entry.get("command"), entry.get("args")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    words = [str(command), *(str(a) for a in args)] if isinstance(args, list) else [str(command)]  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if isinstance(command, str) and (Path(command).stem == "mcpmux" or "mcpmux" in words[1:3]):
        return " ".join(words)
    return None


def host_checks(*, cwd: Path | None = None) -> list[Check]:
    checks: list[Check] = []
    for name in HOST_NAMES:
        host = HOSTS[name]
        for path in (p for p in config_paths(host, cwd=cwd) if p.is_file()):
            try:
                entries = server_tables(host, read_config(path), cwd=cwd)
            except MCPMuxError as exc:
                checks.append(Check(f"host {name}", "warn", str(exc), "fix that file, or ignore it if unused"))
                continue
            for entry_name, entry in entries.items():
                if (line := _runs_mcpmux(entry)) is None:
                    continue
                command = Path(line.split(" ")[0])
                if command.is_absolute() and not os.access(command, os.X_OK):
                    fix = f"mcpmux install {name} --path {path}"
                    checks.append(Check(f"host {name}", "fail", f"{path}: '{entry_name}' runs missing {command}", fix))
                else:
                    checks.append(Check(f"host {name}", "ok", f"{path}: '{entry_name}' runs {line}"))
    if not checks:
        checks.append(
            Check("hosts", "warn", "no host config points at mcpmux", "mcpmux install claude-desktop|cursor|…")
        )
    return checks


def state_checks() -> list[Check]:
    paths = state_paths()
    checks: list[Check] = []
    for folder in dict.fromkeys((paths.config_dir, paths.state_dir, paths.logs_dir)):
        if folder.is_dir() and folder.stat().st_mode & 0o077:
            mode = f"{folder.stat().st_mode & 0o777:o}"
            checks.append(Check("state folder", "fail", f"{folder} is mode {mode}", f"chmod 700 {folder}"))
    log = paths.audit_log
    if log.is_file() and log.stat().st_mode & 0o077:
        checks.append(Check("audit log", "fail", f"{log} is mode {log.stat().st_mode & 0o777:o}", f"chmod 600 {log}"))
    return checks or [Check("state folders", "ok", f"owner-only ({paths.config_dir})")]


async def run_doctor(profile_arg: str | None, store: SecretStore, *, cwd: Path | None = None) -> list[Check]:
    checks = environment_checks()
    profile, found = profile_checks(profile_arg, cwd=cwd)
    checks += found
    if profile is not None:
        checks += await secret_checks(profile, store) + await sign_in_checks(profile)
    return checks + host_checks(cwd=cwd) + state_checks()
