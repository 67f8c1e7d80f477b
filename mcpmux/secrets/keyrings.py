"""Which keyring backend stores secrets here, and whether it is an OS keyring (for `secret set`, `import`, `doctor`)."""

from __future__ import annotations

from dataclasses import dataclass

import keyring
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend


def describe_backend(backend: KeyringBackend | None) -> str:
    """The backend's module and class (`keyring.backends.SecretService.Keyring`), as keyring lists them."""
    if backend is None:
        return "the default keyring"
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def backend_name() -> str:
    """The keyring backend this process would use, for diagnostics (never raises; may block briefly)."""
    try:
        return describe_backend(keyring.get_keyring())
    except Exception as exc:  # a bad PYTHON_KEYRING_BACKEND raises ImportError, RuntimeError, ...
        return f"unavailable ({type(exc).__name__}: {exc})"


# keyring's own backends for the desktop's keyring: values encrypted at rest, access guarded by the OS session.
_OS_KEYRINGS = (
    "keyring.backends.SecretService",
    "keyring.backends.libsecret",
    "keyring.backends.kwallet",
    "keyring.backends.macOS",
    "keyring.backends.Windows",
)
_UNAVAILABLE = ("keyring.backends.fail", "keyring.backends.null")


def _writing_backend(backend: KeyringBackend) -> KeyringBackend:
    """The backend a `set_password` lands in: a chainer writes to the first of its backends."""
    if isinstance(backend, ChainerBackend):
        chained: list[KeyringBackend] = list(backend.backends)
        if chained:
            return chained[0]
    return backend


@dataclass(frozen=True, slots=True)
class BackendWarning:
    """Why stored secrets are not in an OS keyring, and what to do about it."""

    problem: str
    fix: str
    plaintext: bool

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}"


def backend_warning(backend: KeyringBackend | None = None) -> BackendWarning | None:
    """Why secrets stored through `backend` (default: the one in use) are not in an OS keyring; None if they are.

    For the warning `secret set`, `import` and `doctor` give: a file backend such as keyrings.alt's
    PlaintextKeyring (what keyring falls back to on a headless Linux) keeps values readable on disk.
    """
    try:
        chosen = _writing_backend(backend or keyring.get_keyring())
    except Exception:  # no usable backend: storing fails with its own message
        return None
    module = type(chosen).__module__
    if module.startswith(_OS_KEYRINGS) or module.startswith(_UNAVAILABLE):
        return None
    name, where = describe_backend(chosen), getattr(chosen, "file_path", None)
    fix = (
        "for real credentials use the OS keyring (on Linux a Secret Service such as GNOME Keyring or KeePassXC), "
        "and unset PYTHON_KEYRING_BACKEND if it names this backend"
    )
    if "plaintext" in name.lower():
        problem = f"{name} is not an OS keyring: it keeps secrets UNENCRYPTED in {where or 'a file'}"
        return BackendWarning(problem, fix, plaintext=True)
    kept = f"it keeps secrets in {where}" if where else "it is not your desktop's keyring"
    problem = f"{name} is not an OS keyring ({kept}): mcpmux cannot vouch for how it protects them"
    return BackendWarning(problem, fix, plaintext=False)
