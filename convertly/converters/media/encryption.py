"""Encrypted (DRM-protected) media: recognised from the container, before ffmpeg decodes it.

ffmpeg demuxes a Common Encryption (CENC) MP4 or M4A as if it were plain and then decodes
the ciphertext into noise and a stream of errors; the container says what it is. An ISO
BMFF file is encrypted when its movie box holds a protection scheme (`sinf`) or an
encrypted sample entry (`encv`, `enca`), as CENC, FairPlay and PIFF files do.
"""

from __future__ import annotations

import struct
from pathlib import Path

from convertly.errors import EncryptedFileError
from convertly.sniff import Kind

ISO_KINDS = frozenset({Kind.MP4, Kind.MOV, Kind.M4A})
_MARKERS = (b"sinf", b"encv", b"enca", b"pssh")
MAX_MOOV_BYTES = 64 * 1024 * 1024  # a movie box this large is read no further
_MAX_BOXES = 10_000


def check_not_encrypted(src: Path, kind: Kind) -> None:
    """Raise EncryptedFileError when `src` (a file of `kind`) is encrypted media."""
    if kind in ISO_KINDS and _iso_encrypted(src):
        raise EncryptedFileError(
            "The media is encrypted (DRM-protected) and cannot be decoded; send a copy "
            "without the protection."
        )


def _iso_encrypted(src: Path) -> bool:
    """Whether a top-level `moov` box of `src` names a protection scheme."""
    size_of_file = src.stat().st_size
    with src.open("rb") as fh:
        at = 0
        for _ in range(_MAX_BOXES):
            header = fh.read(8)
            if len(header) < 8:
                return False
            size, box = struct.unpack(">I4s", header)
            body = 8
            if size == 1:
                extended = fh.read(8)
                if len(extended) < 8:
                    return False
                size, body = struct.unpack(">Q", extended)[0], 16
            elif size == 0:
                size = size_of_file - at
            if size < body:
                return False
            if box == b"moov":
                movie = fh.read(min(size - body, MAX_MOOV_BYTES))
                return any(marker in movie for marker in _MARKERS)
            if box == b"pssh":  # protection system data outside the movie box
                return True
            at += size
            fh.seek(at)
    return False
