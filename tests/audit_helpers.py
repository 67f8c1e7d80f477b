"""Audit keys and logs for tests that check the chain without a keyring or a subprocess."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson

from mcpmux.audit.chain import link_of
from mcpmux.audit.key import AuditKey
from mcpmux.audit.log import AuditLog

KEY = AuditKey(bytes(range(32)), "file", "the test key")
OTHER_KEY = AuditKey(bytes(range(1, 33)), "keyring", "another test key")


def write_log(
    path: Path, n: int = 6, *, key: AuditKey | None = KEY, rotate_bytes: int = 0, keep: int = 10
) -> list[bytes]:
    """`n` tool calls through a real `AuditLog`; the live file's lines, with their newlines."""
    with AuditLog(path, key=key, rotate_bytes=rotate_bytes, keep=keep) as log:
        for i in range(n):
            log.write({"event": "tool_call", "exposed": f"t__{i}", "outcome": "ok"})
    return path.read_bytes().splitlines(keepends=True)


def rechain(lines: list[bytes], *, keep_macs: bool = True, start: tuple[int, str] | None = None) -> list[bytes]:
    """What an attacker without the key can do after removing lines: renumber `seq` and recompute every `prev`.

    With `keep_macs` the (now stale) `mac` fields stay; without, they are dropped and the lines claim
    version 1, a plain sha256 chain anyone can recompute. `start`: the first line's (seq, prev), else its own.
    """
    out: list[bytes] = []
    first = orjson.loads(lines[0])
    first_seq, link = start or (first["seq"], first["prev"])
    for i, raw in enumerate(lines):
        event = orjson.loads(raw)
        mac = event.pop("mac", None)
        event["seq"], event["prev"] = first_seq + i, link
        if mac is not None and keep_macs:
            event["mac"] = mac
        elif mac is not None:
            event["v"] = 1
        body = orjson.dumps(event)
        link = link_of(body) if "mac" in event else hashlib.sha256(body).hexdigest()
        out.append(body + b"\n")
    return out
