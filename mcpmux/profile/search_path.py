"""A profile's `path`: folders searched for every server's `command` (a GUI host starts mcpmux with a minimal PATH).

Each must be absolute (or start with `~`): a relative one would be searched from each server's
working folder, where anyone who can write a file could plant a `npx`. A folder missing on this
machine is fine (a shared profile may list `/opt/homebrew/bin` for macOS and `~/.local/bin`).
"""

from __future__ import annotations

import os
from pathlib import Path


def check_search_path(items: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """The folders (home expanded), and a (problem, fix) for each item refused."""
    folders: list[str] = []
    problems: list[tuple[str, str]] = []
    for item in items:
        folder = Path(item).expanduser()
        if os.pathsep in item:
            problems.append((f"'{item}' holds '{os.pathsep}'", 'write one folder per item: ["/a/bin", "/b/bin"]'))
        elif not folder.is_absolute():
            problems.append((f"'{item}' is not an absolute folder", 'write it from / or ~, e.g. "~/.local/bin"'))
        else:
            folders.append(str(folder))
    return tuple(folders), problems
