"""Whether an env or header name looks like it holds a credential (`profile load` refuses a literal value there;
`import` moves one into the keyring).

A name is cut into words at `_`, `-`, `.` and camelCase humps (`apiKey` → API, KEY). It looks like a
credential when a word ends in TOKEN, SECRET, PASSWORD, PASSWD, CREDENTIAL(S) or AUTHORIZATION, is PAT,
or is KEY (alone, or as the end of a word such as APIKEY) after a word that makes a key a credential
(API, ACCESS, SECRET, PRIVATE, …): `OPENAI_API_KEY`, `apiKey`, `AWS_SECRET_ACCESS_KEY`, but not `MONKEY`,
`SORT_KEY` or `CACHE_KEY`. A name whose last word says it points at a credential rather than holding one
(`…_PATH`, `…_FILE`, `…_ID`, …) never is. A profile lists the names it knows better in the server's
`not_credentials`.
"""

from __future__ import annotations

import re

_ENDINGS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "AUTHORIZATION")
# Words after which KEY means a credential: `API_KEY`, `ACCESS_KEY`, `PRIVATE_KEY`, `apiKey`, `APIKEY`.
_KEY_QUALIFIERS = (
    *("API", "ACCESS", "SECRET", "PRIVATE", "AUTH", "CLIENT", "SIGNING", "SIGNATURE", "ENCRYPTION", "CRYPT"),
    *("MASTER", "LICENSE", "LICENCE", "SERVICE", "SESSION", "SSH", "GPG", "PGP", "HMAC", "JWT", "WEBHOOK"),
    *("APP", "ADMIN", "SUBSCRIPTION", "DEPLOY", "ACCOUNT", "DEVELOPER", "PERSONAL", "SHARED"),
)
# A name ending like this points at a credential (a file, an id) rather than holding one.
_POINTERS = ("PATH", "FILE", "DIR", "NAME", "ID", "URL", "HOST", "USER")
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(name: str) -> list[str]:
    """`OPENAI_API_KEY` → OPENAI, API, KEY; `apiKey` → API, KEY; `APIKey` → API, KEY."""
    return [w.upper() for part in re.split(r"[_.\-]+", name) for w in _HUMP.split(part) if w]


def _is_key(word: str, before: str | None) -> bool:
    if word == "KEY":
        return before in _KEY_QUALIFIERS
    return word.endswith("KEY") and word.removesuffix("KEY") in _KEY_QUALIFIERS  # APIKEY, ACCESSKEY


def is_credential_name(name: str) -> bool:
    parts = words(name)
    if not parts or parts[-1] in _POINTERS:
        return False
    return any(
        w == "PAT" or w.endswith(_ENDINGS) or _is_key(w, parts[i - 1] if i else None) for i, w in enumerate(parts)
    )
