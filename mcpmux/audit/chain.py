"""The keyed chain's line format, head records and anchor: the pure pieces the writer and the verifier share.

A keyed line (schema version 2) is the event's JSON with `seq`, `prev` and, last, `mac`:
HMAC-SHA256 (under the audit key's chain subkey) of the line's exact bytes without
`,"mac":"…"`. `prev` is the link of the line before it: its `mac`, or for a line without one
(an unkeyed version-1 line, or one cut short by a crash) the sha256 of its exact bytes, as
in version 1. So every line authenticates itself and the one before it, and without the key
no line can be edited, dropped, moved or added without a MAC or a link failing.

Head records (`event: "audit_head"`) start each keyed segment: the first line of a new log
(`reason: "new"`, `prev` all zeros), the first line of each file after rotation (`"rotated"`,
with `oldest_seq`, the first seq of the oldest file rotation kept), and the line after an
unkeyed one or one under another key (`"key"`). Each names its key (`key`, `key_id`) and
carries a random `nonce`. A file whose first line is not a head lost its first lines.

The anchor (`audit.jsonl.anchor`, rewritten in place after every keyed append) holds the
seq and MAC of the newest line, itself MACed: a log that ends before it lost its newest lines.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mcpmux.audit.key import AuditKey

KEYED_VERSION = 2
GENESIS = "0" * 64
"""`prev` of the very first line of a log."""
HEAD_EVENT = "audit_head"
ANCHOR_SIZE = 320
"""The anchor is rewritten in place at this fixed size (a space-padded JSON line), so it never needs truncating."""

_MAC_TAIL = re.compile(rb',"mac":"([0-9a-f]{64})"\}\Z')


def anchor_path(log: Path) -> Path:
    return log.with_name(log.name + ".anchor")


def seal(body: bytes, key: AuditKey) -> tuple[bytes, str]:
    """(`body` with its `mac` as the last member, the mac). `body` is a non-empty JSON object."""
    mac = key.mac(body)
    return body[:-1] + b',"mac":"' + mac.encode() + b'"}', mac


def unseal(line: bytes) -> tuple[bytes, str] | None:
    """(the bytes the MAC covers, the MAC) of a keyed line, or None for a line without a MAC."""
    found = _MAC_TAIL.search(line)
    if found is None:
        return None
    return line[: found.start()] + b"}", found.group(1).decode()


def link_of(line: bytes) -> str:
    """What the next line's `prev` holds: this line's MAC, or the sha256 of its exact bytes if it has none."""
    sealed = unseal(line)
    return sealed[1] if sealed is not None else hashlib.sha256(line).hexdigest()


def sealed_by(line: bytes, key: AuditKey) -> bool:
    sealed = unseal(line)
    return sealed is not None and key.mac(sealed[0]) == sealed[1]


def head_record(reason: str, key: AuditKey, **fields: Any) -> dict[str, Any]:
    """A head record's own fields; the writer adds the envelope, `seq` and `prev`."""
    head = {"event": HEAD_EVENT, "reason": reason, "key": key.source, "key_id": key.id, "nonce": os.urandom(16).hex()}
    return head | fields


@dataclass(frozen=True, slots=True)
class Anchor:
    key_id: str
    seq: int
    mac: str
    """The MAC (link) of the line with `seq`."""


def encode_anchor(key: AuditKey, seq: int, mac: str) -> bytes:
    """The anchor's bytes, padded to `ANCHOR_SIZE`: its MAC covers the JSON object without `anchor_mac`."""
    body = orjson.dumps({"v": KEYED_VERSION, "key_id": key.id, "seq": seq, "mac": mac})
    line = body[:-1] + b',"anchor_mac":"' + key.anchor_mac(body).encode() + b'"}'
    return line.ljust(ANCHOR_SIZE - 1) + b"\n"


_ANCHOR = re.compile(rb'(\{.*),"anchor_mac":"([0-9a-f]{64})"\}\s*\Z', re.DOTALL)


def decode_anchor(raw: bytes, keys: list[AuditKey]) -> Anchor | str:
    """The anchor in `raw`, or why it cannot be trusted (a sentence)."""
    found = _ANCHOR.fullmatch(raw)
    try:
        fields = orjson.loads(found.group(1) + b"}") if found else None
    except orjson.JSONDecodeError:
        fields = None
    if found is None or not isinstance(fields, dict):
        return "it is not an anchor (damaged, or written over)"
    key_id, seq, mac = fields.get("key_id"), fields.get("seq"), fields.get("mac")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(key_id, str) or not isinstance(seq, int) or not isinstance(mac, str):
        return "it is not an anchor (fields missing)"
    key = next((k for k in keys if k.id == key_id), None)
    if key is None:
        return f"the key it was written with (id {key_id}) is not available here, so it cannot be checked"
    if key.anchor_mac(found.group(1) + b"}") != found.group(2).decode():
        return "its MAC does not match its content: it was edited"
    return Anchor(key_id, seq, mac)
