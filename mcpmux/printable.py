"""Text shown to a person, with every character that could hide or rewrite what is shown written as an escape.

Profiles and downstream servers supply names, commands, descriptions, errors and results
that mcpmux prints. A terminal obeys some characters instead of showing them: ESC starts
CSI and OSC sequences (erase a line, move the cursor, OSC 8 hyperlinks), BEL, backspace
and a carriage return overwrite, bidi controls (U+202E) reorder, zero-width characters
vanish. `printable` writes each of them as its Python escape (`\\x1b`, `\\r`, `\\u202e`),
so what is shown is what is there. The CLI prints such text only through it (cli/_console.py).
"""

from __future__ import annotations

import re
import unicodedata

# Cc: C0/C1 controls and DEL; Cf: format (bidi, zero-width, tag characters); Zl/Zp: line and
# paragraph separators; Cs: lone surrogates (undecodable bytes); Co: private use (any glyph a font likes).
_HIDING = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})
# Letters that render as nothing at all (Hangul fillers), a known way to make invisible names.
_BLANK = re.compile("[\u115f\u1160\u3164\uffa0]")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    r"""`\x1b` for ASCII controls, else `\u202e` or `\U000e0041`: TOML basic strings read those back as the text."""
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with control, format and invisible characters escaped; `lines` keeps newlines and tabs as they are.

    Without `lines` a newline is escaped too, so one value (a command, a name) stays on one line
    and cannot forge the line after it. With `lines`, `\\r\\n` counts as a newline.
    """
    if text.isprintable() and not _BLANK.search(text):
        return text  # the common case: nothing to escape
    out: list[str] = []
    for index, char in enumerate(text):
        if lines and (char in "\n\t" or (char == "\r" and text[index + 1 : index + 2] == "\n")):
            out.append(char)
        elif unicodedata.category(char) in _HIDING or _BLANK.match(char):
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)
