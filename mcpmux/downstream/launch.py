"""Spawning one downstream: secrets into its environment, its command resolved, its stderr into its log.

A failure here that a restart cannot fix (command not found, missing secret, bad
cwd) is a `StartFailed`: the supervisor marks the server failed at once instead
of retrying.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcpmux.catalog.build import Listing
from mcpmux.downstream import http
from mcpmux.downstream.connection import Downstream, Hooks, ListKind
from mcpmux.downstream.login_path import login_path, merged
from mcpmux.downstream.logs import prepare_log
from mcpmux.downstream.process import base_environment, resolve_command, spawn, with_search_path
from mcpmux.errors import SecretError, StartFailed
from mcpmux.oauth.session import serve_auth
from mcpmux.paths import open_private
from mcpmux.profile.model import ServerSpec
from mcpmux.secrets.resolve import resolve_env
from mcpmux.secrets.store import SecretStore

LISTING_FIELD: dict[ListKind, str] = {
    "tools": "tools",
    "prompts": "prompts",
    "resources": "resources",
    "resource_templates": "templates",
}


Connect = Callable[[ServerSpec, SecretStore, Path, Hooks], Awaitable[tuple[Downstream, dict[str, str]]]]
"""Start one server (not yet initialized): the downstream and the secrets it was given. `launch` is the real one."""


async def launch(
    spec: ServerSpec, store: SecretStore, log_path: Path, hooks: Hooks
) -> tuple[Downstream, dict[str, str]]:
    """Spawn `spec`, or connect to it if remote (not yet initialized); returns it and the secrets it was given."""
    if spec.command is None:
        return await _connect(spec, store, log_path, hooks)
    try:
        resolved, used = await resolve_env(spec.env, store)
    except SecretError as exc:
        raise StartFailed(spec.name, f"server '{spec.name}' not started: {exc}") from exc
    env = with_search_path(base_environment() | resolved, spec.search_path)
    exe, env = await _find_command(spec, env)
    prepare_log(log_path)  # while running, logs.watch_log bounds it
    try:
        with open_private(log_path) as log:
            log.write(f"--- mcpmux: starting {spec.name}: {exe} {' '.join(spec.args)}\n".encode())
            log.flush()
            _, protocol = await spawn(
                lambda: Downstream(spec.name, log_path, hooks), [exe, *spec.args], env=env, cwd=spec.cwd, stderr=log
            )
    except OSError as exc:
        raise StartFailed(spec.name, f"server '{spec.name}' could not be started: {exc}") from exc
    assert isinstance(protocol, Downstream)
    return protocol, used


async def _find_command(spec: ServerSpec, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The executable `command` names, and the environment to run it in.

    Looked up on the server's PATH (the profile's `path` first); failing that, a bare name is
    looked up on the user's login shell's PATH (login_path.py), which then becomes the server's
    PATH too, so that what it runs in turn (`npx` → `node`) resolves the same way.
    """
    assert spec.command is not None
    if (exe := resolve_command(spec.command, env, spec.cwd)) is not None:
        return exe, env
    searched = f"PATH={env.get('PATH', '')}"
    if os.sep not in spec.command:
        login = await login_path()
        if login.path is not None:
            login_env = {**env, "PATH": merged(login.path, env.get("PATH", ""))}
            if (exe := resolve_command(spec.command, login_env, spec.cwd)) is not None:
                return exe, login_env
            searched += f", nor your login shell's ({login.shell}) PATH={login.path}"
        else:
            searched += f"; {login.why_not}"
    raise StartFailed(
        spec.name,
        f"server '{spec.name}': command '{spec.command}' not found (searched {searched}); install it, "
        f'write its absolute path as `command`, or add its folder to the profile: path = ["FOLDER"] '
        f"(`command -v {spec.command}` in a terminal prints FOLDER/{spec.command})",
    )


async def _connect(
    spec: ServerSpec, store: SecretStore, log_path: Path, hooks: Hooks
) -> tuple[Downstream, dict[str, str]]:
    """A remote (`url`) server: its headers' secrets resolved, the HTTP client started (see downstream/http.py)."""
    assert spec.url is not None
    prepare_log(log_path)
    with open_private(log_path) as log:
        log.write(f"--- mcpmux: connecting {spec.name}: {spec.url}\n".encode())  # header values are never logged
    auth = None
    try:
        headers, used = await resolve_env(spec.headers, store)
        if spec.oauth is not None:
            auth, oauth_secrets = await serve_auth(spec, store, lambda line: _note(log_path, line), hooks.on_secrets)
            used.update(oauth_secrets)
    except SecretError as exc:
        raise StartFailed(spec.name, f"server '{spec.name}' not started: {exc}") from exc
    return http.connect(spec.name, spec.url, headers, log_path, hooks, auth), used


def _note(log_path: Path, line: str) -> None:
    with open_private(log_path) as log:
        log.write(line.encode() + b"\n")


async def list_everything(ds: Downstream, wait_seconds: float) -> Listing:
    """Tools, and prompts, resources and templates where the downstream advertised them."""
    found: dict[str, tuple[Any, ...]] = {}
    kinds: tuple[ListKind, ...] = ("tools", "prompts", "resources", "resource_templates")
    for kind in kinds:
        if ds.supports(kind):
            found[LISTING_FIELD[kind]] = tuple(await ds.list_all(kind, wait_seconds))
    return Listing(**found)
