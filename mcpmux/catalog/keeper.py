"""Keeps the live catalog: builds it from listings, applies tool pins and `max_tools`, records what changed.

The supervisor calls `rebuild` whenever a listing changes; this is where a
rug-pulled tool is hidden (pins.py / integrity.py), where the lock file is
updated on first use, and where `catalog_changed` audit events come from.
It calls `settle` once every server's first start attempt is done: only then
are the `max_tools` cut and policy rules that match no tool worth a warning.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping

from mcpmux.audit import lifecycle
from mcpmux.audit.log import AuditLog
from mcpmux.catalog.build import Catalog, Listing, build_catalog, with_integrity
from mcpmux.catalog.naming import SEP
from mcpmux.integrity.check import IntegrityReport, apply_integrity
from mcpmux.integrity.pins import PinSet, load_pins, lock_path, save_pins
from mcpmux.paths import StatePaths
from mcpmux.policy.decide import Policy
from mcpmux.profile.model import Profile, ServerSpec

logger = logging.getLogger("mcpmux")


class CatalogKeeper:
    def __init__(
        self, profile: Profile, policy: Policy, paths: StatePaths, audit: AuditLog | None, *, record_pins: bool = True
    ) -> None:
        self.record_pins = record_pins
        """False for commands that only look (`pin diff`): the lock file is read, never written."""
        self.profile = profile
        self.policy = policy
        self.audit = audit
        self.catalog = Catalog()
        self._lock = lock_path(profile, paths)
        self._pins: PinSet = load_pins(self._lock)  # a broken lock file is a ProfileError naming it
        self._report: IntegrityReport | None = None
        self._cut_note: str | None = None
        self._settled = False
        self._all_tools: tuple[str, ...] = ()
        """Every tool name of the last rebuild (exposed and other), those hidden by policy or integrity included."""
        self._with_tools: frozenset[str] = frozenset()
        """The servers that listed at least one tool in the last rebuild."""

    def rebuild(self, listings: Mapping[str, Listing]) -> frozenset[str]:
        """Swap in a new catalog; returns the kinds whose visible part changed (tools, prompts, resources)."""
        raw = build_catalog(self.profile, self.policy, listings)
        # Before filtering: a deny rule hides the tools it matches, which must not make it look unused.
        self._all_tools = tuple(n for name, r in raw.routes.items() for n in (name, *r.facts.names, *r.facts.shared))
        self._with_tools = frozenset(name for name, listing in listings.items() if listing.tools)
        report = self._pinned(raw)
        for warning in report.warnings():
            logger.warning("%s", warning)
        catalog, cut = with_integrity(raw, report, self.profile.max_tools)
        # Before `settle` the figure only grows as servers come up: one warning with the final figure is enough.
        if cut and cut != self._cut_note and self._settled:
            logger.warning("%s", cut)
        self._cut_note = cut
        old, self.catalog = self.catalog, catalog
        if self.audit is not None:
            for event in report.audit_events(self.profile.name, self._report):
                self.audit.write(event)
            before = {n: lifecycle.tool_fingerprint(r.definition) for n, r in old.routes.items()}
            after = {n: lifecycle.tool_fingerprint(r.definition) for n, r in catalog.routes.items()}
            if (event := lifecycle.catalog_changed(before, after)) is not None:
                self.audit.write(event)
        self._report = report
        return changed_kinds(old, catalog)

    def _pinned(self, raw: Catalog) -> IntegrityReport:
        """Check `raw`'s tools against the pins, recording first uses (one pin set for every catalog built here)."""
        report = apply_integrity(self.profile, raw.routes.values(), self._pins)
        if report.pins_changed and self.record_pins:
            self._pins = report.pins
            save_pins(self._lock, report.pins, self.profile.name)
        return report

    def overlay(self, listings: Mapping[str, Listing]) -> tuple[Catalog, IntegrityReport]:
        """The catalog of one host of a shared gateway that has servers of its own (`shared = false`):
        `listings` are the shared servers' and that host's copies'. Named, decided and pinned exactly as the
        shared catalog (the same profile, policy and pins), so a tool has one name and one pin for every host;
        auditing what is the host's own is its caller's (front/private.py)."""
        raw = build_catalog(self.profile, self.policy, listings)
        report = self._pinned(raw)
        return with_integrity(raw, report, self.profile.max_tools)[0], report

    def settle(self) -> None:
        """Every server's first start attempt is done: warn about the `max_tools` cut and unused policy rules.

        Only the first call does anything (a profile switch makes a new keeper, which warns for its profile).
        Safe to call early: a server with no tools yet counts as absent, so an early call can miss
        a typo but never blames a rule that is right.
        """
        if self._settled:
            return
        self._settled = True
        if self._cut_note:
            logger.warning("%s", self._cut_note)
        absent = [s for s in self.profile.servers if s.name not in self._with_tools]
        # An absent server's aliases are exact exposed names, so they count as tools a rule may be meant for.
        names = [*self._all_tools, *(alias for spec in absent for alias in spec.aliases.values())]
        # unused_rules names each rule by its key, `policy.rules[N].tools [...]`.
        maybe_absent = tuple(
            f"policy.rules[{rule.index}]."
            for rule in self.policy.spec.rules
            if any(_may_match_tools_of(p, spec, self.profile.max_name_length) for p in rule.tools for spec in absent)
        )
        for unused in self.policy.unused_rules(names):
            if not unused.startswith(maybe_absent):
                logger.warning(
                    "%s matches no tool of the running servers in %s; check the name (tools are named SERVER%sTOOL)",
                    unused,
                    self.profile.path,
                    SEP,
                )


def changed_kinds(old: Catalog, new: Catalog) -> frozenset[str]:
    """The kinds whose visible part differs between two catalogs (tools, prompts, resources)."""
    differs = (
        ("tools", new.visible != old.visible),
        ("prompts", list(new.prompts.values()) != list(old.prompts.values())),
        ("resources", (new.resources, new.templates) != (old.resources, old.templates)),
    )
    return frozenset(kind for kind, changed in differs if changed)


def _may_match_tools_of(pattern: str, spec: ServerSpec, max_name_length: int) -> bool:
    """Whether glob `pattern` could match a tool of `spec`, which listed none (failed, disabled or still starting).

    Rules match the whole exposed name as fnmatch globs, so `gh*` or `*__create_issue` may be meant for
    server `github` as much as `github__*`: the pattern could match iff some leading part of it matches
    the name's fixed start whole. Cutting inside `[...]` leaves a literal `[`, which no server prefix has.
    """
    if not spec.namespaced:
        return True  # its tools keep their own names: any rule may be meant for them
    # A name too long for max_name_length is shortened to its start plus `_` and up to 12 hex digits (naming.py).
    start = f"{spec.prefix}{SEP}"[: max_name_length - 13]
    return any(fnmatch.fnmatchcase(start, pattern[:i]) for i in range(len(pattern) + 1))
