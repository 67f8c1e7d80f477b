"""Keeps the live catalog: builds it from listings, applies tool pins and `max_tools`, records what changed.

The supervisor calls `rebuild` whenever a listing changes; this is where a
rug-pulled tool is hidden (pins.py / integrity.py), where the lock file is
updated on first use, and where `catalog_changed` audit events come from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mcpmux import audit_events
from mcpmux.audit import AuditLog
from mcpmux.catalog import Catalog, Listing, build_catalog, with_integrity
from mcpmux.integrity import IntegrityReport, apply_integrity
from mcpmux.paths import StatePaths
from mcpmux.pins import PinSet, load_pins, lock_path, save_pins
from mcpmux.policy import Policy
from mcpmux.profile_model import Profile

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

    def rebuild(self, listings: Mapping[str, Listing]) -> frozenset[str]:
        """Swap in a new catalog; returns the kinds whose visible part changed (tools, prompts, resources)."""
        raw = build_catalog(self.profile, self.policy, listings)
        report = apply_integrity(self.profile, raw.routes.values(), self._pins)
        if report.pins_changed and self.record_pins:
            self._pins = report.pins
            save_pins(self._lock, report.pins, self.profile.name)
        for warning in report.warnings():
            logger.warning("%s", warning)
        catalog, cut = with_integrity(raw, report, self.profile.max_tools)
        if cut and cut != self._cut_note:
            logger.warning("%s", cut)
        self._cut_note = cut
        old, self.catalog = self.catalog, catalog
        if self.audit is not None:
            for event in report.audit_events(self.profile.name, self._report):
                self.audit.write(event)
            before = {n: audit_events.tool_fingerprint(r.definition) for n, r in old.routes.items()}
            after = {n: audit_events.tool_fingerprint(r.definition) for n, r in catalog.routes.items()}
            if (event := audit_events.catalog_changed(before, after)) is not None:
                self.audit.write(event)
        self._report = report
        differs = (
            ("tools", catalog.visible != old.visible),
            ("prompts", list(catalog.prompts.values()) != list(old.prompts.values())),
            ("resources", (catalog.resources, catalog.templates) != (old.resources, old.templates)),
        )
        return frozenset(kind for kind, changed in differs if changed)
