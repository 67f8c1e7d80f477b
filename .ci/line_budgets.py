"""Fail when a file is over its line budget: 400 for mcpmux/, 600 for tests/, or what pyproject.toml declares.

A file whose job needs more lines gets a declared budget (with the reason beside it in
pyproject.toml) instead of being squeezed under a global cap.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

DEFAULTS = {"mcpmux": 400, "tests": 600}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    declared: dict[str, int] = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mcpmux"]["line-budgets"]
    over: list[str] = []
    for top, default in DEFAULTS.items():
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            budget = declared.get(rel, default)
            lines = len(path.read_text().splitlines())
            if lines > budget:
                over.append(f"{rel}: {lines} lines, budget {budget}: split it, or declare why it needs more")
    stale = [rel for rel in declared if not (root / rel).is_file()]
    over += [f"{rel}: declared in [tool.mcpmux.line-budgets] but not found" for rel in stale]
    sizes = sorted(len(f.read_text().splitlines()) for f in (root / "mcpmux").rglob("*.py") if f.name != "__init__.py")
    median = sizes[len(sizes) // 2] if len(sizes) % 2 else (sizes[len(sizes) // 2 - 1] + sizes[len(sizes) // 2]) / 2
    summary = f"{len(sizes)} modules in mcpmux/, median {median:g} lines, largest {sizes[-1]} (reported, not enforced)"
    report = "\n".join([*over, summary]) if over else f"every file is within its budget; {summary}"
    (sys.stderr if over else sys.stdout).write(report + "\n")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
