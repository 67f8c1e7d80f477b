"""The audit key: a per-user secret that MACs the audit chain and keys argument digests.

Whoever can edit `audit.jsonl` should not be able to read this key, or they could rewrite
the chain. So it lives in the OS keyring (service `mcpmux`, entry `audit:hmac-key`, a name
no profile can reference and `mcpmux secret` cannot overwrite: `:` is not allowed in a
secret name). Only when there is no usable keyring (none installed, locked, no answer
within `KEYRING_TIMEOUT`) does it live in `audit.key` beside the log, 0600: that protects it
from other users, not from anything running as you. Each segment of the log names which
key wrote it, and `mcpmux audit verify` says so.

Keyring calls block (a locked Secret Service can block forever), so each runs in a daemon
thread that is abandoned after `KEYRING_TIMEOUT` seconds, as `mcpmux.secrets.store` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import stat
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from mcpmux.errors import AuditError, NoKeyring
from mcpmux.paths import ensure_private_dir

SERVICE = "mcpmux"
"""The keyring service of `mcpmux.secrets.store` (not imported from there: it would pull anyio into the pure core)."""
KEYRING_NAME = "audit:hmac-key"
KEY_FILE = "audit.key"
KEYRING_TIMEOUT = 5.0
KeySource = Literal["keyring", "file"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class AuditKey:
    """32 random bytes and where they live. A subkey per use, so a MAC of one kind never passes as another."""

    secret: bytes = field(repr=False)
    source: KeySource
    where: str
    """Said to a person: `the OS keyring (…)` or the key file's path."""
    id: str = field(init=False)
    """16 hex digits naming the key (not secret): head records carry it, so verify knows which key to use."""
    _chain: Any = field(init=False, repr=False, compare=False)
    _digest: Any = field(init=False, repr=False, compare=False)
    _anchor: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", hmac.digest(self.secret, b"mcpmux audit key id", "sha256").hex()[:16])
        # Keyed once here; each MAC copies the prepared state, which halves its cost.
        for name, label in (("_chain", b"chain v2"), ("_digest", b"args digest"), ("_anchor", b"anchor")):
            subkey = hmac.digest(self.secret, b"mcpmux audit " + label, "sha256")
            object.__setattr__(self, name, hmac.new(subkey, digestmod=hashlib.sha256))

    def mac(self, body: bytes) -> str:
        """The MAC of one log line's body (hex)."""
        h = self._chain.copy()
        h.update(body)
        return h.hexdigest()

    def anchor_mac(self, body: bytes) -> str:
        h = self._anchor.copy()
        h.update(body)
        return h.hexdigest()

    def args_digest(self, arguments: Any) -> str:
        """`hmac-sha256:<hex>` of the canonical JSON of `arguments`: equal arguments give equal digests, and
        a guessed value cannot be confirmed without the key."""
        h = self._digest.copy()
        h.update(orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS, default=str))
        return "hmac-sha256:" + h.hexdigest()

    @property
    def description(self) -> str:
        if self.source == "keyring":
            return f"the key in {self.where}"
        return f"the key file {self.where} (0600: safe from other users, not from programs running as you)"


def bounded(fn: Callable[[], _T], timeout: float) -> _T:
    """Run blocking `fn` in a daemon thread; `TimeoutError` after `timeout` s (the thread is abandoned)."""
    outcome: list[tuple[bool, object]] = []

    def worker() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=worker, name="mcpmux-audit-key", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TimeoutError
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # pyright: ignore[reportReturnType]  # fn's own result


def _backend_name() -> str:
    import keyring  # here: importing keyring costs ~100 ms, and only the writer's start and verify need it

    backend = keyring.get_keyring()
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def _keyring_call(fn: Callable[[], _T], timeout: float) -> _T:
    try:
        return bounded(fn, timeout)
    except TimeoutError:
        raise NoKeyring(f"the keyring did not answer within {timeout:g} s (locked?)") from None
    except Exception as exc:  # backends are plugins: NoKeyringError, D-Bus errors, a bad PYTHON_KEYRING_BACKEND
        raise NoKeyring(f"the keyring failed: {type(exc).__name__}: {exc}") from None


def _parse(text: str | None, where: str) -> bytes | None:
    if text is None:
        return None
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise NoKeyring(f"{where} does not hold 64 hex digits")
    return secret


def keyring_key(*, create: bool, lock: Path | None = None, timeout: float = KEYRING_TIMEOUT) -> AuditKey | None:
    """The key in the OS keyring; with `create`, made there first if absent. `NoKeyring` when it cannot be used."""
    import keyring

    name = _keyring_call(_backend_name, timeout)
    where = f"the OS keyring ({name}, service '{SERVICE}', entry '{KEYRING_NAME}')"

    def get() -> str | None:
        return keyring.get_password(SERVICE, KEYRING_NAME)

    secret = _parse(_keyring_call(get, timeout), where)
    if secret is None and create:
        with _locked(lock):  # two serves starting at once must not each store a key of their own
            secret = _parse(_keyring_call(get, timeout), where)
            if secret is None:
                fresh = os.urandom(32).hex()
                _keyring_call(lambda: keyring.set_password(SERVICE, KEYRING_NAME, fresh), timeout)  # pyright: ignore[reportUnknownMemberType]
                if _keyring_call(get, timeout) != fresh:  # the null backend accepts and forgets
                    raise NoKeyring(f"{name} did not keep the key")
                secret = bytes.fromhex(fresh)
    return None if secret is None else AuditKey(secret, "keyring", where)


def file_key(path: Path, *, create: bool) -> AuditKey | None:
    """The key in the 0600 file `path`; with `create`, made first if absent. `AuditError` if others could read it."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                return None
            ensure_private_dir(path.parent)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue  # another process made it first: read theirs
            with os.fdopen(fd, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
                f.flush()
                os.fsync(f.fileno())
            continue
        except OSError as exc:
            raise AuditError(path, f"cannot read the audit key file {path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise AuditError(
                    path,
                    f"the audit key file {path} is not a private file of yours (mode {info.st_mode & 0o777:o}): "
                    f"anyone who can read it can forge the audit log; delete it and run `mcpmux audit verify` "
                    "to see which events it keyed, or chmod 600 it if only you ever had access",
                )
            text = f.read(200).decode("ascii", errors="replace")
        try:
            secret = _parse(text, str(path))
        except NoKeyring as exc:
            raise AuditError(path, f"{exc}: the audit key file is damaged; delete it to start a new key") from None
        assert secret is not None
        return AuditKey(secret, "file", str(path))
    raise AuditError(path, f"cannot create the audit key file {path}")


def key_file(log: Path) -> Path:
    return log.with_name(KEY_FILE)


def obtain_key(log: Path, *, timeout: float = KEYRING_TIMEOUT) -> tuple[AuditKey, str | None]:
    """The writer's key for the log at `log`, made if needed: the keyring's, else the file's.

    Returns (key, why the keyring was not used or None). `AuditError` when neither can be had.
    """
    try:
        key = keyring_key(create=True, lock=log.with_name(log.name + ".lock"), timeout=timeout)
        assert key is not None
        return key, None
    except NoKeyring as exc:
        reason = str(exc)
    key = file_key(key_file(log), create=True)
    assert key is not None
    return key, reason


def available_keys(log: Path, *, timeout: float = KEYRING_TIMEOUT) -> tuple[list[AuditKey], list[str]]:
    """Every existing key a verifier can use (never creates one), and why a store could not be read."""
    keys: list[AuditKey] = []
    notes: list[str] = []
    try:
        if (found := keyring_key(create=False, timeout=timeout)) is not None:
            keys.append(found)
    except NoKeyring as exc:
        notes.append(f"the OS keyring cannot be read here: {exc}")
    try:
        if (found := file_key(key_file(log), create=False)) is not None:
            keys.append(found)
    except AuditError as exc:
        notes.append(str(exc))
    return keys, notes


@contextlib.contextmanager
def _locked(lock: Path | None) -> Generator[None]:
    if lock is None:
        yield
        return
    ensure_private_dir(lock.parent)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
