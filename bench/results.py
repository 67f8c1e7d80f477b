"""Result rows, their comparison against targets, and the two outputs (a rich table, JSON).

A row holds per-round values for mcpmux, the direct connection and, where measured,
the floor (a bare stdlib line relay: bench/line_relay.py). The cells show the median
over rounds with the spread (min-max) beneath; the comparisons (overhead, ratio or %
of direct, and mcpmux against the floor) are computed from the medians, so they match
the cells a reader sees.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

Kind = Literal["overhead", "ratio", "percent", "limit", "info"]


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


@dataclass(slots=True)
class Row:
    scenario: str
    unit: str
    mcpmux: list[float]
    direct: list[float] | None = None
    kind: Kind = "info"
    floor: list[float] | None = None
    """The same measurement through a bare line relay: what any Python relay costs at least."""
    limit: float | None = None
    """overhead: max mcpmux-direct; ratio: max mcpmux/direct; percent: min 100*mcpmux/direct; limit: max mcpmux."""
    max_ratio: float | None = None
    """overhead rows only: also require the median ratio to stay within this."""
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict[str, Any])

    # --- derived --------------------------------------------------------------------
    @property
    def overhead(self) -> float | None:
        if not self.direct:
            return None
        return statistics.median(self.mcpmux) - statistics.median(self.direct)

    @property
    def ratio(self) -> float | None:
        if not self.direct:
            return None
        direct = statistics.median(self.direct)
        return statistics.median(self.mcpmux) / direct if direct else float("inf")

    @property
    def passed(self) -> bool | None:
        if self.limit is None:
            return None
        if self.kind == "overhead":
            overhead, ratio = self.overhead, self.ratio
            assert overhead is not None and ratio is not None
            return overhead <= self.limit and (self.max_ratio is None or ratio <= self.max_ratio)
        if self.kind == "ratio":
            ratio = self.ratio
            return ratio is not None and ratio <= self.limit
        if self.kind == "percent":
            ratio = self.ratio
            return ratio is not None and ratio * 100 >= self.limit
        if self.kind == "limit":
            return statistics.median(self.mcpmux) <= self.limit
        return None

    def comparison_text(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return "—"
        if self.kind == "overhead" or (self.kind == "info" and self.unit == "ms"):
            overhead = self.overhead
            assert overhead is not None
            return f"{overhead:+.3f} ms ({ratio:.2f}×)"
        if self.kind == "percent":
            return f"{ratio * 100:.1f} % of direct"
        return f"{ratio:.2f}×"

    def floor_text(self) -> str:
        """mcpmux against the floor: an overhead in ms-rows, else a ratio."""
        if not self.floor:
            return "—"
        mux, floor = statistics.median(self.mcpmux), statistics.median(self.floor)
        ratio = mux / floor if floor else float("inf")
        if self.unit == "ms":
            return f"{mux - floor:+.3f} ms ({ratio:.2f}×)"
        if self.kind == "percent":
            return f"{ratio * 100:.1f} %"
        return f"{ratio:.2f}×"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data |= {
            "mcpmux_median": statistics.median(self.mcpmux),
            "direct_median": statistics.median(self.direct) if self.direct else None,
            "floor_median": statistics.median(self.floor) if self.floor else None,
            "overhead": self.overhead,
            "ratio": self.ratio,
            "passed": self.passed,
        }
        return data


def _fmt(value: float, unit: str) -> str:
    if unit == "calls/s":
        return f"{value:,.0f}"
    if unit in ("ms", "µs"):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.1f}"


def cell(values: list[float] | None, unit: str) -> str:
    if not values:
        return "—"
    median = f"{_fmt(statistics.median(values), unit)} {unit}"
    if len(values) < 2:
        return median
    return f"{median}\n[dim]{_fmt(min(values), unit)}–{_fmt(max(values), unit)}[/dim]"


def table(rows: list[Row], title: str) -> Table:
    out = Table(title=title, show_lines=True)
    out.add_column("scenario", overflow="fold")
    out.add_column("direct", justify="right", no_wrap=True)
    out.add_column("bare relay", justify="right", no_wrap=True)
    out.add_column("mcpmux", justify="right", no_wrap=True)
    out.add_column("vs direct", justify="right")
    out.add_column("vs bare relay", justify="right")
    out.add_column("target", overflow="fold")
    out.add_column("pass/fail", justify="center")
    for row in rows:
        verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "[dim]—[/dim]"}[row.passed]
        scenario = row.scenario + (f"\n[dim]{row.note}[/dim]" if row.note else "")
        out.add_row(
            scenario,
            cell(row.direct, row.unit),
            cell(row.floor, row.unit),
            cell(row.mcpmux, row.unit),
            row.comparison_text(),
            row.floor_text(),
            row.target,
            verdict,
        )
    return out


def print_table(console: Console, header: dict[str, Any], rows: list[Row]) -> None:
    for key, value in header.items():
        console.print(f"[bold]{key}:[/bold] {value}", highlight=False)
    console.print(table(rows, "mcpmux vs direct and vs a bare line relay (median over rounds; min–max beneath)"))
    decided = [r.passed for r in rows if r.passed is not None]
    console.print(f"{sum(decided)}/{len(decided)} targets met", highlight=False)
