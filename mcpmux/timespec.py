"""Times as a person types them: the one grammar of every `--at`, `--since` and `--until`.

    10m, 2h, 3d, 1w, 30s     that long ago (decimals allowed: 1.5h)
    +10m, +2h                that long from now (for `--at`: what a rule will decide later)
    now, today, yesterday    today and yesterday start at local midnight
    2026-11-25               ISO 8601 date: local midnight
    2026-11-25T10:00[:00]    ISO 8601 date-time: local time unless it ends in `Z` or an offset (+01:00)

Pure: the CLI turns the ValueError into a usage error naming the option.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"([+-]?)(\d+(?:\.\d+)?)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

FORMS = (
    "use 30m, 1h, 2d or 1w (ago), +2h (from now), now, today, yesterday, or an ISO 8601 date or date-time "
    "such as 2026-11-25 or 2026-11-25T10:00 (local time unless it ends in Z or an offset like +01:00)"
)
"""The accepted forms, as every error about a time names them."""


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """The moment `text` names, timezone-aware; ValueError naming the accepted forms when it names none."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if m := _RELATIVE.fullmatch(text):
        try:
            span = timedelta(**{_UNITS[m.group(3)]: float(m.group(2))})
            return now + span if m.group(1) == "+" else now - span
        except OverflowError:
            raise ValueError(f"{text!r} is too far from now: {FORMS}") from None
    lowered = text.lower()
    if lowered == "now":
        return now
    local_midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    if lowered == "today":
        return local_midnight
    if lowered == "yesterday":
        return local_midnight - timedelta(days=1)
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
        return when if when.tzinfo is not None else when.astimezone()
    except (ValueError, OverflowError, OSError):  # the last two: a naive time at the ends of the calendar
        raise ValueError(f"cannot read {text!r} as a time: {FORMS}") from None
