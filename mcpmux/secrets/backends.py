"""Where secrets come from besides the OS keyring, and the store mcpmux uses by default.

`MCPMUX_SECRETS` picks the stores, in lookup order: `keyring` (the default), `env`, or a
chain such as `env,keyring`. The env store reads `MCPMUX_SECRET_<NAME>` from mcpmux's
own environment (NAME upper-cased, every other character than A-Z and 0-9 turned into
`_`), which is how CI hands secrets over without a keyring. These variables never reach
a downstream: a downstream inherits only `process.INHERITED_ENV`, plus its profile `env`.

The env store is opt-in on purpose: a keyring secret is not silently overridden by
whatever happens to be in the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from mcpmux.errors import MCPMuxError, ReadOnlyStore
from mcpmux.secrets.resolve import missing_message
from mcpmux.secrets.store import KeyringStore, SecretStore

SELECT_ENV = "MCPMUX_SECRETS"
ENV_PREFIX = "MCPMUX_SECRET_"
BACKENDS = ("keyring", "env")


def env_var_name(name: str) -> str:
    """The variable the env store reads for secret `name`: `gh-pat` → `MCPMUX_SECRET_GH_PAT`."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


class EnvStore:
    """A read-only `SecretStore` over environment variables (`MCPMUX_SECRET_<NAME>`), for CI.

    An empty variable counts as absent, so `MCPMUX_SECRET_X=` in a CI file does not pass an empty credential.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    async def get(self, name: str) -> str | None:
        return self._environ.get(env_var_name(name)) or None

    async def set(self, name: str, value: str) -> None:
        raise ReadOnlyStore(name, self._read_only(name))

    async def delete(self, name: str) -> bool:
        raise ReadOnlyStore(name, self._read_only(name))

    def missing_message(self, name: str) -> str:
        return f"secret '{name}' is not set: export {env_var_name(name)} in the environment that starts mcpmux"

    @staticmethod
    def _read_only(name: str) -> str:
        return f"secret '{name}' comes from the environment ({env_var_name(name)}); mcpmux cannot change it"


class ChainStore:
    """Looks a secret up in each store in turn; the first that has it wins. Writes go to the first writable one."""

    def __init__(self, stores: Sequence[SecretStore]) -> None:
        if not stores:
            raise ValueError("a ChainStore needs at least one store")
        self.stores = tuple(stores)

    async def get(self, name: str) -> str | None:
        for store in self.stores:
            if (value := await store.get(name)) is not None:
                return value
        return None

    async def set(self, name: str, value: str) -> None:
        for store in self.stores:
            try:
                await store.set(name, value)
            except ReadOnlyStore:
                continue
            return
        raise ReadOnlyStore(name, f"secret '{name}': none of the stores in {SELECT_ENV} can be written")

    async def delete(self, name: str) -> bool:
        for store in self.stores:
            try:
                return await store.delete(name)
            except ReadOnlyStore:
                continue
        raise ReadOnlyStore(name, f"secret '{name}': none of the stores in {SELECT_ENV} can be written")

    def missing_message(self, name: str) -> str:
        # Each store's own sentence, minus the repeated "secret 'x' is ...", joined with "or".
        prefix = f"secret '{name}' is "
        reasons = [missing_message(store, name).removeprefix(prefix) for store in self.stores]
        return prefix + "; or ".join(reasons)


def store_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The backends `MCPMUX_SECRETS` selects, in order; `MCPMuxError` naming the variable if it is wrong."""
    environ = os.environ if environ is None else environ
    raw = environ.get(SELECT_ENV, "").strip()
    names = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip())) or ("keyring",)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise MCPMuxError(
            f"{SELECT_ENV}={raw!r} names an unknown secret store {unknown[0]!r}; "
            f"use 'keyring', 'env' or a list such as 'env,keyring'"
        )
    return names


def default_store(environ: Mapping[str, str] | None = None) -> SecretStore:
    """The store `MCPMUX_SECRETS` selects (default: the OS keyring alone)."""
    environ = os.environ if environ is None else environ
    stores: list[SecretStore] = [EnvStore(environ) if n == "env" else KeyringStore() for n in store_names(environ)]
    return stores[0] if len(stores) == 1 else ChainStore(stores)
