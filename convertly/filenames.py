"""The one rule for the names files and folders are given, and how names go into bundles.

A name a client sends (an upload's multipart filename on any route, a rename, a folder, a
direct upload) is checked by `check` and refused when it breaks the rule: 1 to MAX_NAME
characters after trimming spaces, not `.` or `..`, and none of these characters:
- slashes (`/` and `\\`): a name is one path segment;
- control characters (Unicode category Cc: NUL, newlines, escape, C1 controls) and lone
  surrogates: a NUL truncates the name in tar headers and C strings, the rest corrupt logs,
  headers and terminals;
- the bidirectional controls (U+061C, U+200E/F, U+202A-E, U+2066-9) and the line and
  paragraph separators: `invoice\\u202egpj.exe` displays as `invoiceexe.jpg`.

Names the service did not get from the client as typed (a sourceUrl's Content-Disposition,
entries inside an archive, records stored before the rule) are `neutral`ised instead: each
such character becomes `_`. `bundle_names` makes the entry names of an archive of outputs.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from convertly.errors import InvalidFieldError

MAX_NAME = 255
# An entry name part longer than this many UTF-8 bytes cannot be extracted on most file
# systems (NAME_MAX).
MAX_NAME_BYTES = 255
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                          "\u2066\u2067\u2068\u2069")
_SEPARATORS = frozenset("/\\\u2028\u2029")
RULE = ("must not contain slashes, control characters or bidirectional text controls, "
        "nor be . or ..")


def forbidden(char: str) -> bool:
    """Whether `char` may not appear in a name."""
    return (char in _SEPARATORS or char in BIDI_CONTROLS
            or unicodedata.category(char) in ("Cc", "Cs"))


def check(value: object, field: str, *, file_index: int | None = None) -> str:
    """`value` trimmed, when it is a name the rule accepts; else InvalidFieldError (400)
    naming `field` (and the file, for an upload)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidFieldError(field, "must be a non-empty string.", file_index=file_index)
    name = value.strip()
    if len(name) > MAX_NAME:
        raise InvalidFieldError(field, f"is longer than {MAX_NAME} characters.",
                                file_index=file_index)
    if name in (".", "..") or any(forbidden(c) for c in name):
        raise InvalidFieldError(field, f"{name!r} {RULE}.", file_index=file_index)
    return name


def neutral(name: str, fallback: str = "file") -> str:
    """`name` with every character the rule forbids replaced by `_`; never `.` or `..`."""
    clean = "".join("_" if forbidden(c) else c for c in name).strip()
    if clean in ("", ".", ".."):
        return fallback
    return clean


def bundle_names(names: Iterable[str]) -> list[str]:
    """Entry names for an archive of files named `names`, in order: each neutralised,
    shortened (the extension kept) to what a file system can extract, and unique without
    regard to case, a repeat becoming `name (2).ext`, `name (3).ext`, ... (never a name
    another entry has already)."""
    taken: set[str] = set()
    out = []
    for original in names:
        name = _fitted(neutral(original))
        copy = 1
        while name.casefold() in taken:
            copy += 1
            name = _fitted(neutral(original), f" ({copy})")
        taken.add(name.casefold())
        out.append(name)
    return out


def _fitted(name: str, mark: str = "") -> str:
    """`name` with `mark` before its extension, its stem cut so the whole fits
    MAX_NAME_BYTES."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode()) > MAX_NAME_BYTES // 2:
        stem, dot, ext = name, "", ""
    tail = f"{mark}{dot}{ext}"
    room = MAX_NAME_BYTES - len(tail.encode())
    stem_bytes = stem.encode()
    if len(stem_bytes) > room:
        stem = stem_bytes[:room].decode("utf-8", "ignore")
    return f"{stem}{tail}"
