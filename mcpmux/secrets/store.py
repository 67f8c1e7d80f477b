"""Secrets: where values live (the OS keyring), how profiles reach them, and how they stay out of output.

A profile holds only `SecretRef`s. `resolve_env` turns a downstream's env spec into
real values through a `SecretStore` at spawn time; `Redactor` then scrubs those values
(and their common encodings) from anything a downstream sends back.

Keyring calls block, and a locked Secret Service can block forever. Each call runs
in its own *daemon* thread and is awaited under `anyio.fail_after(timeout)`. We do
not use `anyio.to_thread.run_sync(..., abandon_on_cancel=True)`: it times out
correctly, but its worker threads are not daemons, so a lookup stuck forever keeps
the process from exiting (measured: the interpreter hangs at shutdown). An
abandoned daemon thread dies with the process.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import anyio
import anyio.from_thread
import anyio.lowlevel
import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from mcpmux.errors import KeyringLoadError, SecretError
from mcpmux.secrets.keyrings import backend_name, describe_backend

SERVICE = "mcpmux"
"""Keyring service name; the username is the secret's name."""

DEFAULT_TIMEOUT = 10.0
"""Values shorter than this are not redacted: they would match too much unrelated text."""

SECRET_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""What a secret name may be (the same rule as a profile's `{ secret = "NAME" }`)."""

_T = TypeVar("_T")

_NO_BACKEND_FIX = (
    "options: run a Secret Service in your session (GNOME Keyring, KeePassXC); "
    "or `pip install keyrings.alt` and set PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring "
    "(stores secrets unencrypted in a file); or, in CI, set MCPMUX_SECRETS=env and pass each secret as "
    "MCPMUX_SECRET_<NAME>; `keyring --list-backends` shows what is available"
)


class SecretStore(Protocol):
    """Where secret values live. Names are the keys; values never leave except to a downstream."""

    async def get(self, name: str) -> str | None: ...

    async def set(self, name: str, value: str) -> None: ...

    async def delete(self, name: str) -> bool:
        """Remove `name`; False if it was not there."""
        ...


@runtime_checkable
class ExplainsMissing(Protocol):
    """A store that can say where it looked for a secret and how to put it there."""

    def missing_message(self, name: str) -> str: ...


def check_secret_name(name: str) -> str:
    """`name` if it is a valid secret name, else `SecretError` saying what is allowed."""
    if not SECRET_NAME.fullmatch(name):
        raise SecretError(name, f"'{name}' is not a valid secret name: use [A-Za-z0-9._-], 1-128 characters")
    return name


async def _in_daemon_thread(fn: Callable[[], _T]) -> _T:
    """Run blocking `fn` in a daemon thread and await it; if the caller is cancelled, the thread is abandoned."""
    token = anyio.lowlevel.current_token()
    done = anyio.Event()
    outcome: list[tuple[bool, object]] = []

    def worker() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))
        with contextlib.suppress(RuntimeError):  # the event loop is gone: the caller gave up long ago
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=worker, name="mcpmux-keyring", daemon=True).start()
    await done.wait()
    ok, value = outcome[0]
    if not ok:
        assert isinstance(value, BaseException)
        raise value
    return value  # pyright: ignore[reportReturnType]  # fn's own result


class KeyringStore:
    """A `SecretStore` over the `keyring` library (service `mcpmux`, username = secret name).

    With no `backend`, every call uses `keyring.get_keyring()`, so `PYTHON_KEYRING_BACKEND`
    and keyring's config file decide. Every call is bounded by `timeout` seconds.
    """

    def __init__(self, backend: KeyringBackend | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._backend = backend
        self._timeout = timeout

    def _keyring(self) -> KeyringBackend:
        if self._backend is not None:
            return self._backend
        try:
            return keyring.get_keyring()
        except Exception as exc:  # ImportError, RuntimeError (not viable), ... from a bad setting
            chosen = os.environ.get("PYTHON_KEYRING_BACKEND")
            where = f"PYTHON_KEYRING_BACKEND={chosen}" if chosen else "the keyring configured in keyringrc.cfg"
            raise KeyringLoadError(f"{where} could not be loaded ({type(exc).__name__}: {exc})") from exc

    def _name(self) -> str:
        return describe_backend(self._backend) if self._backend is not None else backend_name()

    async def get(self, name: str) -> str | None:
        return await self._run(name, lambda: self._keyring().get_password(SERVICE, name))

    def missing_message(self, name: str) -> str:
        return f"secret '{name}' is not in the keyring (service '{SERVICE}'); store it with: mcpmux secret set {name}"

    async def set(self, name: str, value: str) -> None:
        def set_password() -> bool:
            backend = self._keyring()
            backend.set_password(SERVICE, name, value)  # pyright: ignore[reportUnknownMemberType]
            # Read back: a disabled keyring (`keyring --disable` selects null.Keyring) accepts and drops values.
            return backend.get_password(SERVICE, name) == value

        if not await self._run(name, set_password):
            raise SecretError(
                name,
                f"secret '{name}': the keyring ({self._name()}) accepted the value but does not return it, "
                f"so it was not stored (a disabled keyring does this); {_NO_BACKEND_FIX}",
            )

    async def delete(self, name: str) -> bool:
        def delete() -> bool:
            backend = self._keyring()
            if backend.get_password(SERVICE, name) is None:
                return False
            backend.delete_password(SERVICE, name)
            return True

        return await self._run(name, delete)

    async def _run(self, name: str, fn: Callable[[], _T]) -> _T:
        where = describe_backend(self._backend)
        try:
            with anyio.fail_after(self._timeout):
                return await _in_daemon_thread(fn)
        except TimeoutError:
            raise SecretError(
                name,
                f"secret '{name}': the keyring ({where}) did not answer within {self._timeout:g} s: is it locked? "
                "unlock it (open your desktop's keyring, or `gnome-keyring-daemon --unlock`), "
                "or choose another backend with PYTHON_KEYRING_BACKEND",
            ) from None
        except KeyringLoadError as exc:
            raise SecretError(name, f"secret '{name}': {exc}; {_NO_BACKEND_FIX}") from None
        except keyring.errors.NoKeyringError:
            raise SecretError(name, f"secret '{name}': no usable keyring backend; {_NO_BACKEND_FIX}") from None
        except keyring.errors.KeyringLocked as exc:
            raise SecretError(name, f"secret '{name}': the keyring ({where}) is locked ({exc}); unlock it") from None
        except keyring.errors.KeyringError as exc:
            raise SecretError(name, f"secret '{name}': the keyring ({where}) failed: {exc}") from None
        except Exception as exc:  # backends are plugins: D-Bus errors, a bad PYTHON_KEYRING_BACKEND, ...
            raise SecretError(
                name, f"secret '{name}': the keyring ({where}) failed: {type(exc).__name__}: {exc}; {_NO_BACKEND_FIX}"
            ) from None
