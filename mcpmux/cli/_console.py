"""Consoles for the CLI, and the only ways text from a profile, a server, a host or a log reaches them.

Human output goes to stderr unless a command's job is to print data. Such text is printed
through `say`, `shown` (inside rich markup) or `cell` (a table cell): each escapes control and
invisible characters (`mcpmux.printable`), so ESC sequences, OSC 8 hyperlinks, a carriage
return or a bidi override cannot hide or rewrite what is shown, and `shown` escapes rich
markup too, so a `[link=…]` in a tool name stays text.

Output that is not a terminal (a pipe, a file, a test) is never folded: rich would fold tables
at 80 columns there, splitting names like `git__status` across lines for `grep` and `cut`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.text import Text

from mcpmux.printable import printable

PIPE_WIDTH = 100_000
"""The width rich lays out for when its output is not a terminal: wider than any line mcpmux prints."""


class _PipeAwareConsole(Console):
    """A console as wide as the terminal on a terminal, and unbounded (`PIPE_WIDTH`) anywhere else."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        # Asked per print: a test harness or a redirect can swap the stream after import.
        return size if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# emoji=False: `:name:` codes in a server's text stay as written.
err_console = _PipeAwareConsole(stderr=True, emoji=False)
out_console = _PipeAwareConsole(emoji=False)


def shown(value: object) -> str:
    """`value` as text to put inside rich markup: control characters and markup escaped."""
    return escape(printable(str(value)))


def cell(value: object, style: str = "", *, lines: bool = False) -> Text:
    """Plain text (never markup) for a table cell or title, control characters escaped; None is empty."""
    return Text("" if value is None else printable(str(value), lines=lines), style=style)


def say(text: str, console: Console = err_console, **options: Any) -> None:
    """Print `text` as it is (no markup, never wrapped mid-line), keeping its lines and escaping everything else."""
    console.print(printable(text, lines=True), markup=False, highlight=False, soft_wrap=True, **options)
