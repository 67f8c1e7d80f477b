"""One audit event as one line of text, for `mcpmux audit tail` (and `-f`): readable at 80 columns.

    2026-11-25 13:57:19Z  git__git_status  ok  12.0 ms  cursor
    2026-11-25 13:57:20Z  git__git_push  denied  0.0 ms  cursor  policy.deny[0] "git__git_push"
    2026-11-25 13:57:21Z  downstream_exit git  exit 1

Fields are separated by two spaces and left out when empty; a line never holds a newline (every
value from the log is escaped by `cell`), so `grep` and `cut` see one event per line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from rich.text import Text

from mcpmux.cli._console import cell

_TS = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?Z")
_OUTCOME_STYLES = {
    **dict.fromkeys(("error", "timeout", "unavailable", "tool_error"), "red"),
    **dict.fromkeys(("denied", "unknown"), "yellow"),
    "ok": "green",
}


def _when(ts: Any) -> str:
    m = _TS.fullmatch(ts) if isinstance(ts, str) else None
    return f"{m.group(1)} {m.group(2)}Z" if m else str(ts)


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else ""


def _count(value: object) -> int:
    return len(cast("list[object]", value)) if isinstance(value, list) else 0


def _lifecycle_detail(event: Mapping[str, Any]) -> str:
    """What a lifecycle event says beyond its name and server."""
    name = event.get("event")
    if event.get("error") is not None:
        return str(event["error"])
    if name == "profile_switch":
        return f"{event.get('from_profile')} → {event.get('profile')}"
    if name == "catalog_changed":  # tool names, as lists: how many of each is what fits on a line
        counts = {key: _count(event.get(key)) for key in ("added", "removed", "changed")}
        return " ".join(f"{key} {count}" for key, count in counts.items() if count)
    if name == "refused":
        return f"{event.get('kind')} {event.get('name')}: {event.get('rule')}"
    if event.get("exit_code") is not None:
        return f"exit {event['exit_code']}"
    if event.get("attempt") is not None:
        return f"attempt {event['attempt']}"
    return "" if event.get("reason") is None else str(event["reason"])


def event_line(event: Mapping[str, Any]) -> Text:
    """`event` as one line: when, what, how it ended, how long, which host, why."""
    name = event.get("event")
    parts: list[Text] = [cell(_when(event.get("ts")), "dim")]
    if name == "tool_call":
        outcome = event.get("outcome")
        why = event.get("error") or (event.get("rule") if event.get("decision") != "allowed" else None)
        parts += [
            cell(event.get("exposed") or event.get("tool"), "bold"),
            cell(outcome, _OUTCOME_STYLES.get(str(outcome), "")),
            cell(_ms(event.get("duration_ms"))),
            cell(event.get("host")),
            cell(why, "dim"),
        ]
    else:
        what = " ".join(str(part) for part in (name, event.get("server")) if part is not None)
        parts += [cell(what, "cyan"), cell(_lifecycle_detail(event), "dim")]
    return Text("  ").join(part for part in parts if part.plain)
