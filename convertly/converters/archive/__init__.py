"""Archives: packing files, re-packing and compressing archives, converting what they hold.

converter.py   ArchiveConverter: plans each conversion (see its docstring for every case)
packing.py     writing zip, tar, tgz and 7z, and one file as gz, bz2 or xz
unpacking.py   reading every archive kind, entry by entry, into an Extraction
extraction.py  where entries land, counted against the entry and size limits

The service bundles a job's outputs with `packing.pack`; the storage API asks PACKED_KINDS
which files are compressed already.
"""

from convertly.converters.archive import packing
from convertly.converters.archive.converter import (
    ARCHIVE_FORMATS,
    ARCHIVE_KINDS,
    ArchiveConverter,
    register,
)
from convertly.converters.archive.packing import PACKED_KINDS

__all__ = ["ARCHIVE_FORMATS", "ARCHIVE_KINDS", "PACKED_KINDS", "ArchiveConverter", "packing",
           "register"]
