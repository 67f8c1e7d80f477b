"""Policy over everything a server offers besides tools: prompts, resources, completions, its requests to the host.

Pure, like decide.py, whose `Policy` it asks (README "Policy: beyond tools" is the user's version):

- **A server denied whole.** A `policy.deny` glob, or a deny rule without time or argument
  conditions, that matches every name in a server's namespace (`evil__*`, `ev*`, `*`) denies
  the server whole: none of its prompts, resources, templates or completions are listed or
  served, and its sampling, elicitation and roots requests never reach the host. "Every name"
  is tested with two probe names no real tool has (`evil__` + control characters), so a glob
  that names only some tools (`evil__read_*`) does not deny the server whole.
- **Prompts** are named like tools (`<namespace>__<prompt>`) and decided by the same globs and
  rules, as reads: `read_only` and `deny_destructive` never hide a prompt.
- **Resources** (and templates, by their URI pattern): the server denied whole, or a
  `[policy.resources] deny` glob over the exposed URI → denied; an `allow` glob → allowed;
  otherwise allowed only when `[policy.resources] allow` is empty and `policy.default = "allow"`.
- **Completions** follow what they complete (the prompt, or the resource template).
- **Requests to the host** (`sampling/createMessage`, `elicitation/create`, `roots/list`) are
  carried only for servers named by a glob of `[policy.requests]` `sampling` / `elicitation` /
  `roots` (each `["*"]` by default), and never for a server denied whole.

Any decision that cannot be made (an unknown request method) is a refusal.
"""

from __future__ import annotations

import functools
import json
import re

from mcpmux.policy.decide import Policy
from mcpmux.policy.rules import compile_globs
from mcpmux.policy.verdict import Decision, ToolFacts

_AS_READ = ToolFacts(read_only=True, destructive=False)
"""Prompts and the probes are reads: annotation modes never decide them."""
_PROBES = ("\x00", "\x01\x7f")
_REQUESTS = {"sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots"}


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str] | None:
    return compile_globs((pattern,))


def _globs_hit(key: str, patterns: tuple[str, ...], name: str) -> str | None:
    for i, pattern in enumerate(patterns):
        rx = _glob(pattern)
        if rx is not None and rx.match(name):
            return f"{key}[{i}] {json.dumps(pattern)}"
    return None


class Primitives:
    """Decisions for one profile's policy beyond tools; `Policy` caches what it decides, so these are cheap."""

    __slots__ = ("_policy",)

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def server(self, prefix: str, *, host: str | None = None) -> Decision | None:
        """The decision denying the server with namespace `prefix` whole, or None when it is not denied whole."""
        verdicts = [self._policy.decide(f"{prefix}__{probe}", tool=_AS_READ, host=host) for probe in _PROBES]
        if all(not d.allowed and d.rule.startswith(("policy.deny[", "policy.rules[")) for d in verdicts):
            first = verdicts[0]
            return Decision(False, first.rule, f"server '{prefix}' is denied whole by {first.rule}", first.matched)
        return None

    def prompt(self, exposed: str, prefix: str, *, host: str | None = None) -> Decision:
        return self.server(prefix, host=host) or self._policy.decide(exposed, tool=_AS_READ, host=host)

    def resource(self, uri: str, prefix: str, *, host: str | None = None) -> Decision:
        """May `host` list or read the resource (or template pattern) exposed as `uri`."""
        whole = self.server(prefix, host=host)
        if whole is not None:
            return whole
        spec = self._policy.spec.resources
        if (deny := _globs_hit("policy.resources.deny", spec.deny, uri)) is not None:
            return Decision(False, deny, f"resource '{uri}' is denied by {deny}")
        if (allow := _globs_hit("policy.resources.allow", spec.allow, uri)) is not None:
            return Decision(True, allow, f"allowed by {allow}")
        if spec.allow:
            rule = "policy.resources.allow"
            return Decision(False, rule, f"resource '{uri}' matches no {rule} pattern")
        default = self._policy.spec.default
        rule = f"policy.default = {json.dumps(default)}"
        return Decision(default == "allow", rule, f"{'allowed' if default == 'allow' else 'denied'} by {rule}")

    def request(self, server: str, prefix: str, method: str, *, host: str | None = None) -> Decision:
        """May `server` send `method` (sampling, elicitation, roots) to the host."""
        whole = self.server(prefix, host=host)
        if whole is not None:
            return whole
        kind = _REQUESTS.get(method)
        if kind is None:
            return Decision(False, "mcpmux", f"mcpmux does not relay '{method}' to the host")
        patterns: tuple[str, ...] = getattr(self._policy.spec.requests, kind)
        key = f"policy.requests.{kind}"
        if (hit := _globs_hit(key, patterns, server)) is not None:
            return Decision(True, hit, f"allowed by {hit}")
        return Decision(False, key, f"server '{server}' may not send '{method}' to the host (not in {key})")
