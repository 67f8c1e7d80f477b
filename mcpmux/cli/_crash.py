"""Crash reports: what the CLI writes when a command fails in a way mcpmux did not foresee.

The traceback goes to a file, never to the terminal: a person sees one line naming the file,
and a host that launched `mcpmux serve` keeps its stderr log readable.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from mcpmux import __version__
from mcpmux.paths import ensure_private_dir, state_paths


def _report_text(exc: BaseException, argv: list[str]) -> str:
    lines = [
        f"mcpmux {__version__} crash report (it may contain the arguments you passed: review it before sharing)",
        f"when: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"argv: {argv!r}",
        f"python: {platform.python_version()} ({sys.executable}) on {platform.platform()}",
        "",
        *traceback.format_exception(exc),
    ]
    return "\n".join(line.rstrip("\n") for line in lines) + "\n"


def _write_private(folder: Path, text: str) -> Path:
    # mkstemp: a new 0600 file with a unique name, never following a planted link.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    fd, name = tempfile.mkstemp(dir=folder, prefix=f"mcpmux-crash-{stamp}-{os.getpid()}-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(name)


def write_crash_report(exc: BaseException, argv: list[str]) -> tuple[Path | None, str]:
    """Write `exc`'s traceback to the state folder's logs (else the temp folder); (path, "") or (None, why not)."""
    text = _report_text(exc, argv)
    reasons: list[str] = []
    for folder in (state_paths().logs_dir, None):
        try:
            target = ensure_private_dir(folder) if folder is not None else Path(tempfile.gettempdir())
            return _write_private(target, text), ""
        except OSError as error:
            reasons.append(f"{folder or tempfile.gettempdir()}: {error.strerror or error}")
    return None, "; ".join(reasons)
