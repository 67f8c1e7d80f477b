"""What a policy decides and what it decides about: the verdicts, and a tool's facts as the policy reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp_types as types


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict: `rule` is the profile key a person would edit, `reason` a sentence for the agent."""

    allowed: bool
    rule: str
    reason: str
    matched: tuple[str, ...] = ()
    """Every glob and rule that covered the name (for `mcpmux policy explain`)."""


@dataclass(frozen=True, slots=True)
class CallDecision:
    decision: Decision
    arguments: dict[str, Any] | None
    """What to forward downstream (with `fixed` values applied); None when the call is denied or had none."""


@dataclass(frozen=True, slots=True)
class ToolFacts:
    """A tool's annotations and other names; None is "not annotated" (the MCP spec: not read-only, destructive)."""

    read_only: bool | None = None
    destructive: bool | None = None
    names: tuple[str, ...] = ()
    """Names besides the exposed one that are this tool's alone: `NAMESPACE__TOOL` unshortened (`TOOL` with
    `namespace = false`) and `SERVER__TOOL`."""
    shared: tuple[str, ...] = ()
    """Such names that another tool has too: deny globs and rules match them, allow ones do not."""

    @classmethod
    def from_annotations(
        cls, annotations: types.ToolAnnotations | None, *, names: tuple[str, ...] = (), shared: tuple[str, ...] = ()
    ) -> ToolFacts:
        if annotations is None:
            return cls(names=names, shared=shared) if names or shared else UNANNOTATED
        return cls(annotations.read_only_hint, annotations.destructive_hint, names, shared)

    @property
    def annotated(self) -> bool:
        return self.read_only is not None or self.destructive is not None

    @property
    def presumed_destructive(self) -> bool:
        # The spec: destructiveHint is meaningful only when readOnlyHint is false; it defaults to true.
        return self.read_only is not True and self.destructive is not False


UNANNOTATED = ToolFacts()
"""A tool with no annotations and no other names (shared, so the decision cache keys stay small)."""
