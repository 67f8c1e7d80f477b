"""`mcpmux.timespec`: the one reading of `--at`, `--since` and `--until` (the CLI tests run it end to end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpmux.timespec import parse_time

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - timedelta(seconds=30)),
        ("10m", NOW - timedelta(minutes=10)),
        ("-10m", NOW - timedelta(minutes=10)),
        ("+2h", NOW + timedelta(hours=2)),
        ("3d", NOW - timedelta(days=3)),
        ("1.5h", NOW - timedelta(hours=1.5)),
        (" now ", NOW),
        ("2026-11-25T10:00Z", datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
        ("2026-11-25T10:00:00z", datetime(2026, 11, 25, 10, 0, tzinfo=UTC)),
        ("2026-11-25T10:00+02:00", datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
    ],
)
def test_a_relative_time_counts_from_now_and_an_iso_time_with_an_offset_is_that_moment(
    text: str, expected: datetime
) -> None:
    assert parse_time(text, NOW) == expected


def test_days_start_at_local_midnight_and_a_time_without_an_offset_is_local() -> None:
    midnight = NOW.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    assert (parse_time("today", NOW), parse_time("Yesterday", NOW)) == (midnight, midnight - timedelta(days=1))
    assert parse_time("2026-11-25", NOW) == datetime(2026, 11, 25).astimezone()
    assert parse_time("2026-11-25T10:00", NOW) == datetime(2026, 11, 25, 10, 0).astimezone()


@pytest.mark.parametrize("text", ["noon", "", "2h ago", "10 minutes", "99999999999w", "+-2h", "2026-13-01"])
def test_anything_else_is_refused_naming_every_accepted_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"use 30m, 1h, 2d or 1w \(ago\), \+2h \(from now\), now, today, yesterday"):
        parse_time(text, NOW)


@given(st.text(max_size=40))
def test_any_text_is_a_time_with_a_timezone_or_a_value_error(text: str) -> None:
    try:
        when = parse_time(text, NOW)
    except ValueError:
        return
    assert when.tzinfo is not None
