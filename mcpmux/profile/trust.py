"""Trust: a profile that reads any file from outside the user's own profiles folder runs only once trusted.

Modelled on direnv's `allow`. A profile's `command`, `args`, `cwd` and `env` are code
execution (and its secret references read the user's keyring), so a profile pulled
from a repository must not run until the user has looked at it. `trust_profile`
records the sha256 of every file the profile was read from (its own and each file it
extends, directly or not), keyed by the profile's resolved path, in `trust.json` in the
config folder (written whole with a temp file + `os.replace`, owner-only); any later
change to any of those files, even one byte, needs trust again.

The hashes are those `load_profile` carries (`Profile.sources`): of the very bytes parsed,
never of a second read, which a swapped file could make differ from what runs.

A profile whose files all sit in `state_paths().profiles_dir` is the user's own and always
trusted: that folder sits beside the trust records themselves, so whoever can write it
could write those. One of the user's own profiles that extends a file from elsewhere (a
repository's base, say) is trusted like a repository profile, together with that file.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from mcpmux.errors import MCPMuxError, TrustError
from mcpmux.paths import check_private, ensure_private_dir, state_paths, write_private
from mcpmux.printable import printable
from mcpmux.profile.inherit import profile_sources
from mcpmux.profile.load import load_profile
from mcpmux.profile.lookup import profile_hash
from mcpmux.profile.model import EnvValue, Profile, SecretRef, SecretTemplate
from mcpmux.wire import as_object

TRUST_FILE = "trust.json"
Status = Literal["user", "trusted", "changed", "untrusted"]


@dataclass(frozen=True, slots=True)
class TrustRecord:
    """One trusted profile: its file, the sha256 of its content and of each file it extends, and when (UTC)."""

    path: Path
    sha256: str
    trusted_at: str
    extends: tuple[tuple[Path, str], ...] = ()

    @property
    def files(self) -> dict[Path, str]:
        return {self.path: self.sha256, **dict(self.extends)}

    def still_matches(self) -> bool | None:
        """Whether every recorded file now has its recorded content on disk; None if the profile file is gone."""
        if not self.path.is_file():
            return None
        return all(_hash_or_none(path) == sha for path, sha in self.files.items())


def trust_file() -> Path:
    return state_paths().config_dir / TRUST_FILE


def _key(path: Path) -> Path:
    return path.expanduser().resolve()


def _hash_or_none(path: Path) -> str | None:
    try:
        return profile_hash(path)
    except OSError:
        return None


def is_user_profile(path: Path) -> bool:
    """True for a file inside the user's own profiles folder (after resolving symlinks)."""
    return _key(path).is_relative_to(_key(state_paths().profiles_dir))


def parsed_hashes(profile: Profile) -> dict[Path, str]:
    """Every file `profile` was read from (its own first) → the sha256 of the bytes that were parsed."""
    return {_key(source.path): source.sha256 for source in reversed(profile.sources)}


def foreign_files(profile: Profile) -> list[Path]:
    """The files of `profile` from outside the user's own profiles folder: if any, it runs only once trusted."""
    return [path for path in profile_sources(profile) if not is_user_profile(path)]


def load_records() -> dict[Path, TrustRecord]:
    """Every trust record; `MCPMuxError` if the file is unsafe (writable by others) or unreadable."""
    path = trust_file()
    check_private(path.parent)
    try:
        check_private(path)
        raw: Any = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MCPMuxError(f"{path} cannot be read ({exc}); delete it and trust your profiles again") from exc
    records: dict[Path, TrustRecord] = {}
    entries = as_object((as_object(raw) or {}).get("trusted"))
    if entries is None:
        raise MCPMuxError(f"{path} is not a trust file mcpmux wrote; delete it and trust your profiles again")
    for key, value in entries.items():
        entry = as_object(value) or {}
        sha, when = entry.get("sha256"), entry.get("trusted_at")
        parents = as_object(entry.get("extends")) or {}
        extends = tuple((Path(p), h) for p, h in parents.items() if isinstance(h, str))
        if isinstance(sha, str) and isinstance(when, str):
            records[Path(key)] = TrustRecord(Path(key), sha, when, extends)
    return records


def _save(records: dict[Path, TrustRecord]) -> None:
    target = trust_file()
    ensure_private_dir(target.parent)
    check_private(target.parent)
    trusted = {
        str(r.path): {"sha256": r.sha256, "trusted_at": r.trusted_at, "extends": {str(p): h for p, h in r.extends}}
        for r in records.values()
    }
    data = orjson.dumps({"version": 1, "trusted": trusted}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    write_private(target, data + b"\n", durable=True)  # whole or not at all, 0600


def trust_profile(target: Path | Profile) -> TrustRecord:
    """Trust the exact content `target` was loaded from (a path is loaded first); returns the record.

    Pass the `Profile` that was shown to the user, so that what is trusted is what they saw.
    """
    profile = target if isinstance(target, Profile) else load_profile(_key(target))
    hashes = parsed_hashes(profile)
    if not hashes:
        raise MCPMuxError(f"cannot trust {profile.path}: it was not loaded from its file; load it with load_profile")
    (key, sha), *parents = hashes.items()
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    record = TrustRecord(_key(profile.path), sha, now, tuple(parents))
    if record.path != key:
        raise MCPMuxError(f"cannot trust {profile.path}: it was loaded from {key}; trust that path")
    records = load_records()
    records[record.path] = record
    _save(records)
    return record


def untrust_profile(path: Path) -> bool:
    """Forget the trust of `path`; False if it was not trusted."""
    records = load_records()
    if records.pop(_key(path), None) is None:
        return False
    _save(records)
    return True


def trust_status(profile: Profile) -> Status:
    """`user` (every file in the user's own folder), `trusted`, `changed` (since it was trusted) or `untrusted`."""
    if not foreign_files(profile):
        return "user"
    record = load_records().get(_key(profile.path))
    if record is None or not profile.sources:
        return "untrusted"
    return "trusted" if parsed_hashes(profile) == record.files else "changed"


def trust_command(path: Path) -> str:
    return f"mcpmux profile trust {shlex.quote(str(_key(path)))}"


def _changes(record: TrustRecord, now: dict[Path, str]) -> list[str]:
    """Each file whose content differs from the record; also a file read now but not then, or then but not now."""
    changes: list[str] = []
    for path in {**record.files, **now}:
        if path not in record.files:
            changes.append(f"{printable(str(path))} (not trusted with it before)")
        elif path not in now:
            changes.append(f"{printable(str(path))} (no longer extended)")
        elif record.files[path] != now[path]:
            changes.append(printable(str(path)))
    return changes


def require_trusted(profile: Profile) -> None:
    """Return if `profile` may run; else `TrustError` showing what it would run and the command that trusts it."""
    status = trust_status(profile)
    if status in ("user", "trusted"):
        return
    path = _key(profile.path)
    shown = printable(str(path))
    if status == "changed":
        record = load_records()[path]
        changed = _changes(record, parsed_hashes(profile))
        what = "it" if changed == [shown] else ", ".join(changed)
        head = f"profile {shown} has changed since you trusted it ({record.trusted_at}: {what}), so it will not run"
    elif is_user_profile(path):
        foreign = ", ".join(printable(str(p)) for p in foreign_files(profile))
        head = (
            f"profile {shown} extends {foreign}, from outside your profiles folder, "
            "and is not trusted with that content yet, so it will not run"
        )
    else:
        head = f"profile {shown} is not trusted yet, so it will not run"
    message = (
        f"{head}. A profile runs commands as you and reads your secrets; this one would run:\n"
        f"{describe(profile)}\n"
        f"Review it (mcpmux profile show {printable(shlex.quote(str(path)))}), then trust this exact content with: "
        f"{printable(trust_command(path))}"
    )
    raise TrustError(path, message)


def _env_text(key: str, value: EnvValue) -> str:
    """`KEY=value` as a shell would read it, with secret references written as in the profile (never values)."""
    if isinstance(value, SecretRef):
        text = f"{{secret:{value.name}}}"
    elif isinstance(value, SecretTemplate):
        text = "".join(
            p.replace("{", "{{").replace("}", "}}") if isinstance(p, str) else f"{{secret:{p.name}}}"
            for p in value.parts
        )
    else:
        text = value
    return f"{key}={shlex.quote(text)}"


def describe(profile: Profile) -> str:
    """What running `profile` does, one server a line: command and args (or URL), cwd, env, secrets read.

    Control and invisible characters are escaped (`mcpmux.printable`): this is what a person reads before trusting.
    """
    lines: list[str] = []
    for server in profile.servers:
        if server.url is not None:
            runs = f"connects to {server.url}"
            settings = [_env_text(k, v) for k, v in server.headers.items()]
            extra = f"; headers: {', '.join(settings)}" if settings else ""
            if server.oauth is not None:
                client = f" as client {server.oauth.client_id}" if server.oauth.client_id else ""
                extra += f"; signs in with OAuth{client} when asked"
        else:
            runs = f"runs {shlex.join([server.command or '', *server.args])}"
            extra = f"; in {server.cwd}" if server.cwd else ""
            # `path` decides which program a bare command is: a folder put first can stand in for `npx`.
            extra += f"; looked up first in {os.pathsep.join(server.search_path)}" if server.search_path else ""
            settings = [_env_text(k, v) for k, v in server.env.items()]
            extra += f"; env: {' '.join(settings)}" if settings else ""
        secrets = f"; reads secrets: {', '.join(server.secret_names)}" if server.secret_names else ""
        disabled = " (disabled)" if not server.enabled else ""
        # One line per server, escaped: a newline, CR or ESC in an arg must not forge or hide a line.
        lines.append(printable(f"  server '{server.name}'{disabled}: {runs}{extra}{secrets}"))
    return "\n".join(lines) or "  (no servers)"
