"""All downstreams of one profile: parallel start, restarts with backoff, the live catalog, shutdown.

One task per downstream keeps it alive (start → serve until exit → back off →
start again, within a restart budget). A downstream that cannot start because of
its configuration (command not found, missing secret) fails at once without
retries; one that crashes is restarted. Either way the others keep serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any, Literal

import anyio
import anyio.abc

from mcpmux import wire
from mcpmux.audit import lifecycle
from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import Catalog, Listing
from mcpmux.catalog.keeper import CatalogKeeper
from mcpmux.downstream import cache as catalog_cache
from mcpmux.downstream import era as protocol_era
from mcpmux.downstream import facts as server_facts
from mcpmux.downstream.coalesce import Coalescer
from mcpmux.downstream.connection import Downstream, Hooks, ListKind
from mcpmux.downstream.events import DownstreamEvents
from mcpmux.downstream.facts import ServerFacts
from mcpmux.downstream.flow import ReadGate
from mcpmux.downstream.launch import LISTING_FIELD, Connect, launch, list_everything
from mcpmux.downstream.logs import watch_log
from mcpmux.downstream.state import ServerState, Status
from mcpmux.errors import DownstreamError, MCPMuxError, StartFailed
from mcpmux.paths import StatePaths, ensure_private_dir
from mcpmux.policy.decide import Policy
from mcpmux.profile.model import Profile, ServerSpec
from mcpmux.secrets.redact import Redactor
from mcpmux.secrets.store import SecretStore
from mcpmux.wire import JSON

logger = logging.getLogger("mcpmux")

IDLE_CHECK_SECONDS = 1.0


class Supervisor:
    def __init__(
        self,
        profile: Profile,
        *,
        store: SecretStore,
        paths: StatePaths,
        audit: AuditLog | None = None,
        record_pins: bool = True,
        clock: Callable[[], datetime] | None = None,
        connect: Connect = launch,
    ) -> None:
        self.profile = profile
        self._connect = connect
        """Spawns or connects one server (launch.py); tests pass an in-process one (memory.py)."""
        self._clock = clock
        self.reload_error: str | None = None
        """Why the last edit of the profile was not applied (shown by `mcpmux status`), or None."""
        self.policy = Policy.from_spec(profile.policy, clock=clock)
        self.audit = audit
        self._keeper = CatalogKeeper(profile, self.policy, paths, audit, record_pins=record_pins)
        self.paths = paths
        self._cache_dir = paths.state_dir / "cache"
        self._store = store
        self.states = {spec.name: self._new_state(spec) for spec in profile.enabled_servers}
        self.ready = anyio.Event()
        self._first_attempts_left = len(self.states)
        self._tg: anyio.abc.TaskGroup | None = None
        self._queued: list[tuple[Callable[..., Coroutine[Any, Any, Any]], tuple[Any, ...]]] = []
        self._subscribers: list[DownstreamEvents] = []
        self._secrets: dict[str, str] = {}
        self.flow = ReadGate(self._running)
        """Paused while the host is not reading mcpmux's output (front/stdio.py)."""
        self._relists = Coalescer(self.start_soon)
        self.redactor = Redactor({})
        """Every secret any downstream of this run was given: redacted from everything bound for the host,
        whichever server sent it (server B may read server A's environment)."""
        if not self.states:
            self.ready.set()
            self._keeper.settle()

    # --- running ----------------------------------------------------------------------
    async def run(self) -> None:
        """Keep every enabled downstream alive until cancelled.

        Each server's keeper ends its own downstream on the way out (shielded, bounded), so
        cancelling this group ends them all in parallel.
        """
        ensure_private_dir(self.paths.profile_logs_dir(self.profile.path))
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for fn, args in self._queued:
                tg.start_soon(fn, *args)
            self._queued.clear()
            for state in self.states.values():
                tg.start_soon(self._keep_scoped, state, name=f"keep {state.spec.name}")
            await anyio.sleep_forever()  # the group outlives failed servers: switches and calls still use it

    async def _stop(self, state: ServerState, *, status: Status = "stopped") -> None:
        """End the state's downstream; the state shows `status` (and no downstream) from the first moment."""
        ds, state.downstream, state.status = state.downstream, None, status
        if ds is None:
            return
        ds.begin_close(f"server '{state.spec.name}' is shutting down")
        await ds.close()

    async def _keep_scoped(self, state: ServerState) -> None:
        """Keep one server until cancelled alone (it left the profile) or with the gateway; then end it."""
        with anyio.CancelScope() as state.scope:
            try:
                await self._keep(state)
            finally:
                with anyio.CancelScope(shield=True):  # a server that gave up still shows why in `mcpmux status`
                    await self._stop(state, status="failed" if state.status == "failed" else "stopped")

    def switch(self, profile: Profile) -> dict[str, list[str]]:
        """Move to `profile` live: servers whose settings are identical keep running; the rest stop or start."""
        old = self.states
        keep = {n: s for n, s in old.items() if (spec := profile.server(n)) is not None and spec == s.spec}
        new_specs = [spec for spec in profile.enabled_servers if spec.name not in keep]
        for name, state in old.items():
            if name not in keep:
                state.scope.cancel()
        self.profile = profile
        self.policy = Policy.from_spec(profile.policy, clock=self._clock)
        self._keeper = CatalogKeeper(profile, self.policy, self.paths, self.audit, record_pins=self._keeper.record_pins)
        self.states = {**keep, **{spec.name: self._new_state(spec) for spec in new_specs}}
        for spec in new_specs:
            self.start_soon(self._keep_scoped, self.states[spec.name])
        self._rebuild()
        if self.ready.is_set():  # the new keeper settles once the new servers' first attempts are done
            self._first_attempts_left = len(new_specs)
            if not new_specs:
                self._keeper.settle()
        stopped = sorted(set(old) - set(keep))
        return {"kept": sorted(keep), "started": [s.name for s in new_specs], "stopped": stopped}

    def _new_state(self, spec: ServerSpec) -> ServerState:
        log_path = self.paths.server_log(self.profile.path, spec.name)
        known = catalog_cache.load_era(self._cache_dir, spec)
        return ServerState(spec, log_path, facts=server_facts.load(self._cache_dir, spec), era=known)

    @property
    def facts(self) -> dict[str, ServerFacts | None]:
        """Each enabled server's handshake facts; None for one never seen that is still starting."""
        nothing = ServerFacts(None, {})  # a server that failed to start offers nothing
        return {name: s.facts or (nothing if s.status == "failed" else None) for name, s in self.states.items()}

    async def _keep(self, state: ServerState) -> None:
        name = state.spec.name
        first = True
        if state.spec.start == "lazy" and (cached := catalog_cache.load(self._cache_dir, state.spec)) is not None:
            state.listing, state.status, first = cached, "idle", False
            self._rebuild()
            self._first_attempt_done()
        while True:
            if state.status == "idle":
                await state.wanted.wait()
            state.status = "starting" if first or state.status == "idle" else "restarting"
            up = False
            try:
                await self._start(state)
                up = True
            except MCPMuxError as exc:
                state.last_error = str(exc)
                logger.error("%s", exc)
                retry = isinstance(exc, DownstreamError) and not isinstance(exc, StartFailed)
            else:
                retry = True
                tools = len(state.listing.tools)
                logger.info(
                    "server '%s' is up (pid %s, %d tools)", name, state.downstream and state.downstream.pid, tools
                )
            if first:
                first = False
                self._first_attempt_done()
            if up and state.downstream is not None:
                if await self._serve(state) == "idle":
                    logger.info(
                        "server '%s' was idle for %g s; stopped until the next call",
                        name,
                        state.spec.idle_timeout_seconds,
                    )
                    state.wanted, state.up = anyio.Event(), anyio.Event()
                    await self._stop(state, status="idle")
                    continue
                state.last_error = f"exited with code {state.downstream.exit_code}"
                if state.downstream.fatal is not None:
                    state.last_error, retry = str(state.downstream.fatal), False
                self._event(lifecycle.downstream_exit(name, state.downstream.pid, state.downstream.exit_code))
                logger.warning("server '%s' %s (log: %s)", name, state.last_error, state.log_path)
                # Its routes stay while it restarts, so a call is told "restarting", not "unknown tool".
                await self._stop(state, status="restarting")
                state.up = anyio.Event()
            if not retry or not state.may_restart():
                state.status = "failed"
                state.listing = Listing()
                self._rebuild()
                logger.error("server '%s' failed and will not be restarted: %s", name, state.last_error)
                self._event(lifecycle.downstream_failed(name, state.last_error or "", str(state.log_path)))
                for subscriber in self._subscribers:
                    subscriber.server_failed(name, state.last_error or "")
                return
            state.status = "restarting"
            delay = state.backoff()
            self._event(lifecycle.downstream_restart(name, state.restart_count, round(delay, 3)))
            await anyio.sleep(delay)

    async def _serve(self, state: ServerState) -> Literal["exited", "idle"]:
        """Watch a running server until it exits (or, lazy, goes idle); ping it to catch a hang."""
        ds = state.downstream
        assert ds is not None
        outcome: Literal["exited", "idle"] = "exited"

        async def health() -> None:
            while True:
                await anyio.sleep(state.spec.health_interval_seconds)
                pauses = self.flow.pauses
                try:
                    await ds.request("ping", None, state.spec.timeout_seconds)
                except DownstreamError as exc:
                    if self.flow.overlapped(pauses):
                        continue  # its answer may be waiting unread behind the host's back-pressure
                    logger.warning("server '%s' failed its health check (%s); restarting it", ds.name, exc)
                    ds.kill()
                    return

        async def idle() -> None:
            nonlocal outcome
            while True:
                await anyio.sleep(IDLE_CHECK_SECONDS)
                quiet = time.monotonic() - state.last_used
                if not ds.busy and quiet > state.spec.idle_timeout_seconds:
                    outcome = "idle"
                    tg.cancel_scope.cancel()
                    return

        async with anyio.create_task_group() as tg:
            if state.spec.command is not None:  # its stderr goes straight into the log: kept under the cap
                tg.start_soon(watch_log, state.log_path)
            if state.spec.health_interval_seconds > 0:
                tg.start_soon(health)
            if state.spec.start == "lazy":
                tg.start_soon(idle)
            await ds.exited.wait()
            tg.cancel_scope.cancel()
        return outcome

    async def wake(self, server: str) -> None:
        """Start an idle lazy server for a call and wait until it runs (bounded by its startup timeout).

        A server that did not come up within the bound is marked failed, so the call is answered
        rather than waking it again.
        """
        state = self.states[server]
        up = state.up
        state.wanted.set()
        with anyio.move_on_after(state.spec.startup_timeout_seconds + 1):
            await up.wait()
        if state.status == "idle":
            state.status = "failed"

    async def wait_ready(self, seconds: float) -> None:
        """Wait until every server's first start attempt is done, at most `seconds`.

        Past the bound the start-up counts as done: later calls are answered with what is up
        instead of waiting again.
        """
        with anyio.move_on_after(seconds):
            await self.ready.wait()
        self.ready.set()

    def _first_attempt_done(self) -> None:
        self._first_attempts_left -= 1
        if self._first_attempts_left <= 0:
            self.ready.set()
            self._keeper.settle()  # warnings that need every server's tools (unused rules, max_tools)

    def _learn(self, server: str, secrets: dict[str, str]) -> None:
        """Redact `server`'s secrets (again, when a token was refreshed) from what it sends and from the audit."""
        if (state := self.states.get(server)) is not None:
            state.redactor = Redactor(secrets)
        if secrets.items() - self._secrets.items():
            self._secrets.update(secrets)
            self.redactor = Redactor(self._secrets)

    async def _start(self, state: ServerState) -> None:
        spec = state.spec
        hooks = Hooks(on_notification=self._on_notification, on_request=self._on_request, on_secrets=self._learn)
        protocol, secrets = await self._connect(spec, self._store, state.log_path, hooks)
        self._learn(spec.name, secrets)
        state.downstream = protocol
        try:
            with anyio.fail_after(spec.startup_timeout_seconds):
                await self._open(state, protocol)
                state.listing = await list_everything(protocol, spec.startup_timeout_seconds)
        except TimeoutError:
            await self._stop(state)
            raise DownstreamError(
                spec.name,
                f"server '{spec.name}' did not finish starting within "
                f"{spec.startup_timeout_seconds:g} s (log: {state.log_path})",
                state.log_path,
            ) from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop(state)
            raise
        state.status = "running"
        if self.flow.paused:  # its start-up had to be read; from now on it waits like the others
            protocol.pause_reading()
        self._event(lifecycle.downstream_start(spec.name, protocol.pid))
        state.started_at = state.last_used = time.monotonic()
        state.last_error = None
        state.up.set()
        if spec.start == "lazy":
            catalog_cache.save(self._cache_dir, spec, state.listing)
        if protocol.initialize_result is not None:
            facts = server_facts.ServerFacts.of(protocol.initialize_result, state.redactor.redact_text)
            server_facts.remember(self._cache_dir, spec, facts, state.facts)
            state.facts = facts
        self._rebuild()

    async def _open(self, state: ServerState, ds: Downstream) -> None:
        """Open in the server's era: probed or remembered on stdio; a remote one's transport has rules of its own."""
        spec, remote = state.spec, state.spec.command is None
        era = await protocol_era.connect(ds, "handshake" if remote else state.era, spec.startup_timeout_seconds)
        if era != state.era and not remote:
            catalog_cache.save_era(self._cache_dir, spec, era)
        state.era = era

    # --- catalog ----------------------------------------------------------------------
    def _rebuild(self) -> None:
        listings = {name: s.listing for name, s in self.states.items() if s.status in ("running", "idle", "restarting")}
        changed = self._keeper.rebuild(listings)
        if changed:
            for subscriber in self._subscribers:
                subscriber.catalog_changed(self.catalog, changed)

    @property
    def catalog(self) -> Catalog:
        return self._keeper.catalog

    def _event(self, event: dict[str, Any]) -> None:
        if self.audit is not None:
            self.audit.write(event)

    def _on_notification(self, ds: Downstream, method: str, msg: JSON, line: bytes) -> None:
        kinds = _RELIST.get(method)
        if kinds and self._tg is not None:  # a storm of notifications costs one re-list in flight, one after
            self._relists.request((ds, kinds), partial(self._relist, ds, kinds))
        for subscriber in self._subscribers:
            subscriber.notification(ds, method, msg, line)

    def _on_request(self, ds: Downstream, msg: JSON) -> None:
        if not any(subscriber.request(ds, msg) for subscriber in self._subscribers):
            ds.write(wire.error_response(msg.get("id"), wire.METHOD_NOT_FOUND, "no host is connected to answer this"))

    def subscribe(self, events: DownstreamEvents) -> None:
        """Hear catalog changes, notifications and requests from every downstream (see downstream/events.py)."""
        self._subscribers.append(events)

    async def _relist(self, ds: Downstream, kinds: tuple[ListKind, ...]) -> None:
        state = self.states.get(ds.name)
        if state is None or state.downstream is not ds or state.status != "running":
            return
        try:
            fresh: dict[ListKind, list[Any]] = {}
            for kind in kinds:
                fresh[kind] = await ds.list_all(kind, state.spec.startup_timeout_seconds)
        except DownstreamError as exc:
            logger.warning("server '%s': could not re-list %s after list_changed: %s", ds.name, kinds, exc)
            return
        if state.downstream is ds:
            state.listing = replace(
                state.listing,
                **{LISTING_FIELD[kind]: tuple(items) for kind, items in fresh.items()},
            )
            self._rebuild()

    def _running(self) -> list[Downstream]:
        return [s.downstream for s in self.states.values() if s.downstream is not None and s.status == "running"]

    def retry(self, server: str, url: str) -> bool:
        """Start again a failed remote `server` at `url` (`auth login` renewed its sign-in); False if there is none."""
        state = self.states.get(server)
        if state is None or state.status != "failed" or state.spec.url != url:
            return False
        if self.ready.is_set():  # its first attempt settles nothing more (as for a server a switch starts)
            self._first_attempts_left = 1
        self.states[server] = self._new_state(state.spec)
        self.start_soon(self._keep_scoped, self.states[server])
        return True

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run `fn` in the supervisor's task group (cancelled with the gateway); queued until `run` starts."""
        if self._tg is None:
            self._queued.append((fn, args))
        else:
            self._tg.start_soon(fn, *args)

    def live(self, server: str) -> ServerState | None:
        return self.states.get(server)


_RELIST: dict[str, tuple[ListKind, ...]] = {
    "notifications/tools/list_changed": ("tools",),
    "notifications/prompts/list_changed": ("prompts",),
    "notifications/resources/list_changed": ("resources", "resource_templates"),
}
