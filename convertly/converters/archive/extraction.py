"""Where an archive's entries land: one directory, counted against the limits.

Reading any archive counts the entries and the bytes actually written against the limits,
refuses names that climb out of the extraction directory, and skips links, devices and FIFOs.
The readers (unpacking.py) hand every entry to an `Extraction`; its notes name what was
skipped or changed, in the wording `count` and `names` give every archive note.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from convertly import filenames
from convertly.converters.base import Limits
from convertly.errors import ArchiveTooLargeError, CorruptFileError

CHUNK = 1024 * 1024
LISTED_NAMES = 10
DRIVE = re.compile(r"^[A-Za-z]:")
# Archives expanding to less than this are never refused for their expansion ratio.
RATIO_FLOOR_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    name: str
    path: Path


@dataclass
class Extraction:
    """One archive's entries written under `root`, within the limits on what is written."""

    root: Path
    limits: Limits
    source_size: int  # of the archive, for the expansion ratio
    entries: dict[str, _Entry] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    made_relative: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    _seen: int = 0
    _written: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def expect(self, count: int) -> None:
        """Fail before extracting when the listing alone is over the entry limit."""
        if count > self.limits.max_archive_entries:
            raise _too_many_entries(self.limits.max_archive_entries)

    def directory(self, raw: str) -> None:
        name = self._admit(raw)
        if name:
            path = self.root / name
            self._make_dirs(path)
            self.entries[name] = _Entry(name, path)

    def link(self, raw: str) -> None:
        """A symlink, hard link, device or FIFO: counted, not extracted."""
        self._admit(raw)
        self.links.append(raw)

    def file(self, raw: str, read: Callable[[int], bytes], mtime: float | None = None) -> None:
        with self.sink(raw, mtime) as sink:
            while chunk := read(CHUNK):
                sink.write(chunk)

    @contextlib.contextmanager
    def sink(self, raw: str, mtime: float | None = None) -> Iterator[_Sink]:
        name = self._admit(raw)
        if not name:
            raise CorruptFileError(f"The archive has a file entry without a name ({raw!r}).")
        path = self.root / name
        self._make_dirs(path.parent)
        if path.is_dir():
            raise _clash(raw)
        with path.open("wb") as fh:
            yield _Sink(self, fh)
        if mtime is not None:
            with contextlib.suppress(OverflowError, ValueError, OSError):
                os.utime(path, (mtime, mtime))
        self.entries.pop(name, None)  # a repeated name: the last one wins, in its place
        self.entries[name] = _Entry(name, path)

    def account(self, size: int) -> None:
        self._written += size
        if self._written > self.limits.max_extracted_bytes:
            raise _too_many_bytes(self.limits.max_extracted_bytes)
        ratio = self.limits.max_expansion_ratio
        if self._written > max(RATIO_FLOOR_BYTES, ratio * self.source_size):
            raise _too_expansive(ratio, self.source_size, self._written)

    def listing(self) -> list[tuple[str, Path]]:
        return [(e.name, e.path) for e in self.entries.values()]

    def files(self) -> list[_Entry]:
        return [e for e in self.entries.values() if not e.path.is_dir()]

    def notes(self) -> list[str]:
        notes = []
        if self.links:
            notes.append(
                f"Skipped {count(len(self.links), 'entry', 'entries')} that are links or special "
                f"files (symbolic and hard links, devices and FIFOs are not extracted): "
                f"{names(self.links)}."
            )
        if self.made_relative:
            notes.append(f"Absolute entry paths were made relative: {names(self.made_relative)}.")
        if self.renamed:
            notes.append("Control characters and bidirectional text controls in entry names "
                         f"were replaced by _: {names(self.renamed)}.")
        return notes

    def _admit(self, raw: str) -> str:
        self._seen += 1
        if self._seen > self.limits.max_archive_entries:
            raise _too_many_entries(self.limits.max_archive_entries)
        name, was_absolute = clean_name(raw)
        if was_absolute:
            self.made_relative.append(raw)
        if any(filenames.forbidden(c) for c in raw if c not in "/\\"):
            self.renamed.append(name)
        return name

    def _make_dirs(self, path: Path) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise _clash(str(path.relative_to(self.root))) from exc


class _Sink:
    """Where one entry's bytes go; every write is counted against the extraction limit."""

    def __init__(self, extraction: Extraction, fh: BinaryIO) -> None:
        self._extraction = extraction
        self._fh = fh

    def write(self, data: bytes) -> int:
        self._extraction.account(len(data))
        return self._fh.write(data)


def clean_name(raw: str) -> tuple[str, bool]:
    """The entry name as a safe relative path, and whether it was absolute.

    Leading slashes are dropped (as tar and unzip do); ".." and drive letters are refused:
    nothing written may land outside the extraction directory. Characters no file name
    may hold (`filenames.forbidden`) become `_`.
    """
    name = raw.replace("\\", "/")
    parts = name.split("/")
    if ".." in parts or DRIVE.match(name) or "\x00" in name:
        raise CorruptFileError(
            f"The archive entry {raw!r} points outside the archive; archives with such "
            "entries are refused for safety. Re-create it with relative entry names."
        )
    # Control characters and bidirectional text controls are made `_`, as in every name
    # the service did not take from the client as typed (see convertly.filenames).
    kept = [filenames.neutral(p) for p in parts if p not in ("", ".")]
    if any(len(p.encode("utf-8", "surrogateescape")) > 255 for p in kept):
        raise CorruptFileError(f"The archive entry {raw[:80]!r}... has a name part too long.")
    return "/".join(kept), name.startswith("/")


# -- errors and wording ----------------------------------------------------------------------


def _clash(name: str) -> CorruptFileError:
    return CorruptFileError(
        f"The archive entry {name!r} clashes with another entry of the same name "
        "(a file and a folder); the archive cannot be extracted."
    )


def _too_many_entries(limit: int) -> ArchiveTooLargeError:
    return ArchiveTooLargeError(
        f"The archive holds more than {limit:,} entries, over this server's limit "
        "(CONVERTLY_MAX_ARCHIVE_ENTRIES). Split it into smaller archives or ask the operator "
        "to raise the limit.",
        detail={"maxEntries": limit},
    )


def _too_many_bytes(limit: int) -> ArchiveTooLargeError:
    return ArchiveTooLargeError(
        f"The archive expands to more than {limit:,} bytes, over this server's limit "
        "(CONVERTLY_MAX_EXTRACTED_BYTES). Split it into smaller archives or ask the operator "
        "to raise the limit.",
        detail={"maxExtractedBytes": limit},
    )


def _too_expansive(ratio: int, size: int, written: int) -> ArchiveTooLargeError:
    return ArchiveTooLargeError(
        f"The archive ({size:,} bytes) expands to more than {written:,} bytes, over {ratio} "
        "times its size (CONVERTLY_MAX_EXPANSION_RATIO): it looks like an archive bomb. "
        "Ask the operator to raise the limit if the data really is that repetitive.",
        detail={"maxExpansionRatio": ratio, "archiveBytes": size},
    )


def count(number: int, noun: str, plural: str = "") -> str:
    """`number` and `noun`, in the plural (`plural`, else noun + "s") unless it is 1."""
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def names(names: Sequence[str]) -> str:
    """The first LISTED_NAMES of `names`, comma-separated, and how many more there are."""
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown
