"""Where a shared gateway listens, and the one-line hello a pipe and a gateway exchange when attaching.

One gateway per (user, state folder, profile, mcpmux version): the socket's name carries a hash of the
profile's path (or "the active profile" for serves that follow `mcpmux profile use`) and the version, so
pipes and gateways of different versions run side by side instead of speaking to each other. The hello
checks it again (a reinstall can keep the version string and change the code's wire).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson

from mcpmux import __version__
from mcpmux.paths import StatePaths
from mcpmux.wire import as_object

PROTOCOL = 2
"""The attach protocol's version: bumped whenever the hello or what follows it changes (2: stdio handed over)."""
MAX_HELLO_BYTES = 4096


def gateway_key(profile_path: Path | None) -> str:
    """Names the gateway of a profile file (None: the active profile, followed as `mcpmux profile use` changes it)."""
    source = "active" if profile_path is None else str(profile_path.resolve())
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def _version_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", __version__)[:24]


def shared_dir(paths: StatePaths) -> Path:
    return paths.state_dir / "shared"


def socket_path(paths: StatePaths, key: str) -> Path:
    return shared_dir(paths) / f"gw-{key}-{_version_tag()}.sock"


def lock_path(paths: StatePaths, key: str) -> Path:
    return shared_dir(paths) / f"gw-{key}-{_version_tag()}.lock"


def log_path(paths: StatePaths, key: str) -> Path:
    """The gateway's own stderr (it has no terminal)."""
    return paths.logs_dir / f"gateway-{key}.log"


def hello(key: str, **extra: Any) -> bytes:
    """The pipe's first line."""
    return orjson.dumps({"mcpmux": "attach", "protocol": PROTOCOL, "version": __version__, "key": key, **extra}) + b"\n"


def welcome(pid: int, *, handoff: bool) -> bytes:
    """The gateway's answer to a hello it accepts; `handoff`: it took the host's stdio and serves it itself."""
    message = {"mcpmux": "attached", "protocol": PROTOCOL, "version": __version__, "pid": pid, "handoff": handoff}
    return orjson.dumps(message) + b"\n"


DONE = b'{"mcpmux":"done"}\n'
"""The gateway's last line to a serve whose stdio it took over: the host's input ended and all is answered."""


def handed_off(line: bytes) -> bool:
    """Whether a welcome says the gateway took the host's stdio."""
    try:
        return (as_object(orjson.loads(line)) or {}).get("handoff") is True
    except orjson.JSONDecodeError:
        return False


def refusal(reason: str) -> bytes:
    return orjson.dumps({"mcpmux": "refused", "reason": reason}) + b"\n"


def mismatch(line: bytes, key: str | None = None) -> str | None:
    """Why a hello (or welcome) line does not match this process; None when it does."""
    try:
        message = as_object(orjson.loads(line)) or {}
    except orjson.JSONDecodeError:
        return "the first line is not a JSON hello"
    if message.get("mcpmux") == "refused":
        return f"the gateway refused: {message.get('reason')}"
    if message.get("protocol") != PROTOCOL or message.get("version") != __version__:
        theirs = f"mcpmux {message.get('version')} (attach protocol {message.get('protocol')})"
        return f"{theirs} differs from this mcpmux {__version__} (attach protocol {PROTOCOL})"
    if key is not None and message.get("key") != key:
        return "the hello names another profile's gateway"
    return None
