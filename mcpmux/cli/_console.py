"""Consoles for the CLI, and the only ways text from a profile, a server, a host or a log reaches them.

Human output goes to stderr unless a command's job is to print data. Such text is printed
through `say`, `shown` (inside rich markup) or `cell` (a table cell): each escapes control and
invisible characters (`mcpmux.printable`), so ESC sequences, OSC 8 hyperlinks, a carriage
return or a bidi override cannot hide or rewrite what is shown, and `shown` escapes rich
markup too, so a `[link=…]` in a tool name stays text.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from mcpmux.printable import printable

# emoji=False: `:name:` codes in a server's text stay as written.
err_console = Console(stderr=True, emoji=False)
out_console = Console(emoji=False)


def shown(value: object) -> str:
    """`value` as text to put inside rich markup: control characters and markup escaped."""
    return escape(printable(str(value)))


def cell(value: object, style: str = "", *, lines: bool = False) -> Text:
    """Plain text (never markup) for a table cell or title, control characters escaped; None is empty."""
    return Text("" if value is None else printable(str(value), lines=lines), style=style)


def say(text: str, console: Console = err_console, **options: Any) -> None:
    """Print `text` as it is (no markup, never wrapped mid-line), keeping its lines and escaping everything else."""
    console.print(printable(text, lines=True), markup=False, highlight=False, soft_wrap=True, **options)
