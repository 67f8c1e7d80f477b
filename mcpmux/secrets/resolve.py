"""A server's env (or headers) with its secret references resolved from the store: given to it alone."""

from __future__ import annotations

from collections.abc import Mapping

from mcpmux.errors import SecretError
from mcpmux.profile.model import EnvValue, SecretRef, SecretTemplate
from mcpmux.secrets.store import ExplainsMissing, SecretStore


async def resolve_env(spec_env: Mapping[str, EnvValue], store: SecretStore) -> tuple[dict[str, str], dict[str, str]]:
    """Replace each `SecretRef` (alone or inside a `SecretTemplate`) with its value.

    Returns (resolved env, {secret name: value} of the secrets used); the second feeds the `Redactor`.
    """
    used: dict[str, str] = {}

    async def value_of(ref: SecretRef) -> str:
        if ref.name not in used:
            found = await store.get(ref.name)
            if found is None:
                raise SecretError(ref.name, missing_message(store, ref.name))
            used[ref.name] = found
        return used[ref.name]

    env: dict[str, str] = {}
    for key, value in spec_env.items():
        if isinstance(value, SecretRef):
            env[key] = await value_of(value)
        elif isinstance(value, SecretTemplate):
            env[key] = "".join([p if isinstance(p, str) else await value_of(p) for p in value.parts])
        else:
            env[key] = value
    return env, used


def missing_message(store: SecretStore, name: str) -> str:
    """What to tell a person when `store` has no secret `name`: where it looked and the command that fixes it."""
    if isinstance(store, ExplainsMissing):
        return store.missing_message(name)
    return f"secret '{name}' is not in the secret store; store it with: mcpmux secret set {name}"
