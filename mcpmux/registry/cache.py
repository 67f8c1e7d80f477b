"""Registry answers kept on disk, so `search` and `add` still work when the registry cannot be reached.

One file per request URL (named by its sha256, so no URL can choose a path), holding the
URL, when it was fetched and the JSON body, in `registry-cache/` of the state folder
(owner-only). Written whole with a temp file + `os.replace`, so a reader never sees half of
one. An unreadable or mismatched file is a miss, never an error: the cache only ever helps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import orjson

from mcpmux.paths import state_paths, write_private


@dataclass(frozen=True, slots=True)
class Cached:
    body: object
    fetched_at: str
    """ISO 8601, UTC."""


class ResponseCache:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or state_paths().state_dir / "registry-cache"

    def _file(self, url: str) -> Path:
        return self.folder / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def get(self, url: str) -> Cached | None:
        try:
            record = orjson.loads(self._file(url).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(record, dict):
            return None
        fields = cast(dict[str, object], record)
        fetched_at = fields.get("fetched_at")
        if fields.get("url") != url or not isinstance(fetched_at, str):
            return None
        return Cached(fields.get("body"), fetched_at)

    def put(self, url: str, body: object) -> None:
        when = datetime.now(UTC).isoformat(timespec="seconds")
        write_private(self._file(url), orjson.dumps({"url": url, "fetched_at": when, "body": body}))
