"""`--json` output: one JSON object per command run, on stdout, with nothing else on stdout.

Every object starts with `"version": 1`; a change that could break a script reading it raises the
version (adding keys does not). The shapes are documented in the README ("JSON output"). The
audit commands that list events print JSON Lines instead (one event per line, as the log has it),
so that `audit tail -f --json` can stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import typer

from mcpmux.printable import printable

JSON_VERSION = 1


def print_json(body: Mapping[str, Any]) -> None:
    """`{"version": 1, **body}` to stdout, indented; paths and other objects as their text."""
    text = orjson.dumps({"version": JSON_VERSION, **body}, option=orjson.OPT_INDENT_2, default=str).decode()
    # orjson escapes control characters; `printable` writes bidi and zero-width ones as \\u escapes too.
    typer.echo(printable(text, lines=True))


def print_json_line(value: Mapping[str, Any]) -> None:
    """One JSON Lines record to stdout (an audit event or a group of them)."""
    typer.echo(printable(orjson.dumps(value, default=str).decode()))
