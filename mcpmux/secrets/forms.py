"""How a secret may be spelled in a text: a regular expression for every escaping a JSON or URL writer may apply.

A secret is matched one character at a time, each character spelled in any of these ways,
independently of the others (a writer may escape any subset of characters):

- itself;
- a JSON short escape: `\\/`, `\\"`, `\\\\`, `\\b`, `\\f`, `\\n`, `\\r`, `\\t`;
- a JSON `\\uXXXX` escape, each hex digit in either case; a surrogate pair beyond the BMP;
- unless it is an ASCII letter or digit, percent-encoding: `%XX` per UTF-8 byte, either case;
  `+` for a space.

That is one level: what a text holds. Raw JSON adds a level (the text sits in a JSON string),
and a text may be JSON in turn; `mcpmux.secrets.jsontext` decodes those exactly, and this
regex runs on what they spell.

Running that alternation over a 10 MB result costs tens of milliseconds, so each form also has
a `fragment` and anchors: any spelling of the form either holds its fragment verbatim (its
longest run of characters that only a hex escape changes, and that common writers leave
alone) or holds a `\\uXXXX` or `%XX` escape of one of the fragment's characters. Few texts hold
the latter, so `find` of the fragment and a scan for the anchors rule out nearly every result
at `find` speed; the regex runs only in windows around what they find.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass

Position = frozenset[str]
"""The characters that may stand at one place of a form (`{"+", "-"}` where the base64 alphabets differ)."""

_SHORT = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}

_STRUCTURE = frozenset("0123456789+-.eE \t\n\r{}[],:truefalsn")
"""What raw JSON holds outside strings; escapes (all start with `\\`, `%`) never occur there, `+` does (`1e+5`)."""

_ESCAPE_CHARACTERS = "\\u%0123456789abcdefABCDEF"
"""What `\\uXXXX` and `%XX` escapes are written with."""

LONGEST_SPELLING = 12
"""Characters in the longest spelling of one character: a surrogate pair, or four `%XX`."""


def _units(c: str) -> list[int]:
    """UTF-16 code units: what a `\\uXXXX` escape spells (a surrogate pair beyond the BMP)."""
    code = ord(c)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def _utf8(c: str) -> bytes:
    return c.encode("utf-8", "surrogatepass")  # a lone surrogate still gets a spelling, not a crash


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _fixed(c: str) -> bool:
    """Whether only a hex escape (`\\uXXXX`, `%XX`) can change `c`, and no common writer writes one for it.

    JSON writers escape non-ASCII (`ensure_ascii`, PHP), `<>&` (Go, Gson, .NET), `'=` (Gson) and `+` (.NET),
    URL writers `%` (a URL inside a URL): these, like characters with other spellings, break fragments instead.
    """
    return "!" <= c <= "~" and c not in "\"\\/<>&'=+%`"


def _hex(n: int, width: int) -> str:
    """`n` in hex, each digit as a class of both cases."""
    return "".join(d if d.isdigit() else f"[{d}{d.upper()}]" for d in f"{n:0{width}x}")


@functools.cache
def _position_regex(position: Position) -> str:
    spellings: list[tuple[int, str]] = []  # (length, regex)
    for c in sorted(position):
        spellings.append((1, re.escape(c)))
        if c in _SHORT:
            spellings.append((2, re.escape("\\" + _SHORT[c])))
        units = _units(c)
        spellings.append((6 * len(units), "".join(r"\\u" + _hex(unit, 4) for unit in units)))
        if not _alnum(c):
            spellings.append((3 * len(_utf8(c)), "".join("%" + _hex(byte, 2) for byte in _utf8(c))))
        if c == " ":
            spellings.append((1, r"\+"))
    # Longest first: the alternation takes the first that fits, and `%25` must not stop at its `%`.
    return "(?:" + "|".join(regex for _, regex in sorted(spellings, key=lambda s: -s[0])) + ")"


@dataclass(frozen=True)
class Form:
    """One way a secret is written before any escaping: its characters, and optional trailing padding."""

    positions: tuple[Position, ...]
    padding: tuple[Position, ...] = ()

    @classmethod
    def of_value(cls, value: str) -> Form:
        return cls(tuple(frozenset(c) for c in value))

    @classmethod
    def of_base64(cls, value: str) -> Form:
        """Base64 of the value, both alphabets (even mixed) at once; the `=` padding optional."""
        raw = value.encode("utf-8", "surrogatepass")
        std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
        body = std.rstrip("=")
        return cls(
            tuple(frozenset({a, b}) for a, b in zip(body, url, strict=False)),
            tuple(frozenset("=") for _ in range(len(std) - len(body))),
        )

    def __len__(self) -> int:
        return len(self.positions) + len(self.padding)

    def regex(self) -> str:
        """A regex for every spelling of this form in a text."""
        body = "".join(_position_regex(p) for p in self.positions)
        return body + "(?:" + "".join(_position_regex(p) for p in self.padding) + ")?" if self.padding else body

    def fragment(self) -> str:
        """The longest run of fixed characters (see `_fixed`); empty when there is none."""
        best = run = ""
        for position in self.positions:
            (c, *others) = sorted(position)
            run = run + c if not others and _fixed(c) else ""
            best = max(best, run, key=len)
        return best

    def structural(self) -> bool:
        """Whether JSON outside strings (numbers, `true`, whitespace, punctuation) could spell this form."""
        return all(position & _STRUCTURE for position in self.positions)

    def characters(self) -> set[str]:
        return {c for p in (*self.positions, *self.padding) for c in p}


def anchor_regexes(forms: list[Form]) -> list[str]:
    """The hex escapes of fragment characters: a spelling that does not hold its fragment verbatim holds one.

    Where JSON holds that spelling (raw JSON, or JSON text inside a text), an escape's own characters may be
    escaped in turn (`\\u005cu0041`, `\\u0025...`), so those count too. Each regex starts with a literal
    character (a backslash, a `%`), so it scans fast; the regex's text starts with that character.
    """
    fixed = {c for form in forms for c in form.fragment()}
    octets = {f"{ord(c):02x}" for c in fixed if not _alnum(c)}
    fixed |= set(_ESCAPE_CHARACTERS)
    return ["\\\\u" + _trie({f"{ord(c):04x}" for c in fixed})] + (["%" + _trie(octets)] if octets else [])


def _trie(words: set[str]) -> str:
    """Equal-length lowercase hex words as one regex, digit by digit (each in either case)."""
    if words == {""}:
        return ""
    rests: dict[str, set[str]] = {}
    for word in words:
        rests.setdefault(word[0], set()).add(word[1:])
    alternatives = [_hex(int(d, 16), 1) + _trie(rest) for d, rest in sorted(rests.items())]
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
