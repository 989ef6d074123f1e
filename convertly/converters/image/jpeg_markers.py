"""JPEG marker surgery: drop metadata segments while copying the image data untouched."""

from __future__ import annotations

from PIL import Image

from convertly.errors import CorruptFileError

_EXIF_ORIENTATION = 0x0112

# JPEG segments kept by stripping: JFIF (APP0), Adobe (APP14: how to read CMYK/YCCK), ICC
# (APP2 "ICC_PROFILE"); every other APPn (EXIF, XMP, IPTC, MPF, maker data) and comments go.
_JPEG_KEPT_APPS = frozenset({0xE0, 0xEE})
_ICC_SIGNATURE = b"ICC_PROFILE\x00"


def strip_jpeg_metadata(data: bytes, orientation: int = 1) -> bytes:
    """`data` without metadata segments or trailing bytes; the image data is copied untouched.

    An `orientation` other than 1 is written back as a minimal EXIF segment.
    """
    if not data.startswith(b"\xff\xd8"):
        raise CorruptFileError()
    out = bytearray(b"\xff\xd8")
    exif = _exif_segment(orientation) if orientation != 1 else b""
    pos, size = 2, len(data)
    while pos + 1 < size:
        marker = data[pos + 1]
        if data[pos] != 0xFF:
            raise CorruptFileError()
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return bytes(out + b"\xff\xd9")
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[pos : pos + 2]
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > size or end < pos + 4:
            raise CorruptFileError()
        segment = data[pos:end]
        if exif and marker != 0xE0:
            out += exif
            exif = b""
        if _keeps_segment(marker, segment):
            out += segment
        pos = end
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            scan_end = _scan_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
    raise CorruptFileError()


def _keeps_segment(marker: int, segment: bytes) -> bool:
    if marker == 0xFE:
        return False
    if 0xE0 <= marker <= 0xEF:
        return marker in _JPEG_KEPT_APPS or (marker == 0xE2 and segment[4:16] == _ICC_SIGNATURE)
    return True


def _scan_end(data: bytes, pos: int) -> int:
    while (found := data.find(b"\xff", pos)) >= 0 and found + 1 < len(data):
        following = data[found + 1]
        if following != 0x00 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
            return found
        pos = found + 1 if following == 0xFF else found + 2
    raise CorruptFileError()


def _exif_segment(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[_EXIF_ORIENTATION] = orientation
    payload = exif.tobytes()
    return b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
