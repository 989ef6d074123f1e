"""The size an image's header declares, read from its bytes before any decoder sees them.

A decoder asked to open a file whose header claims billions of pixels refuses it with its
own error (libvips "image too large", libheif's security limits, Pillow's bomb check), which
would read as a damaged file. Reading the declared size first lets CONVERTLY_MAX_PIXELS
answer instead: `declared_size` parses the header of every raster format we read, without
decoding, and says nothing (None) when the header is not one it can read, leaving the
decoder to judge the file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from convertly.converters.base import Limits
from convertly.converters.pixels import check_pixels
from convertly.sniff import Kind

HEAD_BYTES = 64 * 1024  # holds a PNG, WebP, BMP or HEIF header; JPEG and TIFF seek
GIF_HEAD_BYTES = 1024 * 1024  # a GIF's frames are walked as far as this
_JPEG_SOF = frozenset({*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC),
                       *range(0xCD, 0xD0)})
_MAX_JPEG_SEGMENTS = 4096
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257


def check_declared(src: Path, kind: Kind, limits: Limits) -> None:
    """Raise ImageTooLargeError when the header of `src` declares more pixels than
    CONVERTLY_MAX_PIXELS allows: called before the first decoder opens it."""
    size = declared_size(src, kind)
    if size is not None:
        check_pixels(limits, [size])


def declared_size(src: Path, kind: Kind) -> tuple[int, int] | None:
    """(width, height) as the header of `src` (a file of `kind`) states them, or None."""
    with src.open("rb") as fh:
        head = fh.read(GIF_HEAD_BYTES if kind is Kind.GIF else HEAD_BYTES)
        try:
            if kind is Kind.JPEG:
                return _jpeg(fh)
            if kind is Kind.TIFF:
                return _tiff(fh, head)
            reader = _FROM_HEAD.get(kind)
            return reader(head) if reader else None
        except (struct.error, ValueError, OSError):
            return None


def _gif(head: bytes) -> tuple[int, int] | None:
    """The logical screen, grown to hold every frame found in `head`: a decoder draws each
    frame at its offset, so a frame at (0, 65280) of a 32x32 screen makes the image
    65,535 rows tall whatever the screen says."""
    if len(head) < 13:
        return None
    width, height = struct.unpack("<HH", head[6:10])
    at = 13
    if head[10] & 0x80:  # a global colour table
        at += 3 << ((head[10] & 0x07) + 1)
    while at < len(head):
        block = head[at]
        if block == 0x2C:  # an image descriptor
            if at + 10 > len(head):
                break
            left, top, frame_width, frame_height = struct.unpack("<HHHH", head[at + 1:at + 9])
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            flags = head[at + 9]
            at += 10
            if flags & 0x80:  # a local colour table
                at += 3 << ((flags & 0x07) + 1)
            at = _skip_sub_blocks(head, at + 1)  # after the LZW code size
        elif block == 0x21:  # an extension: its label, then sub-blocks
            at = _skip_sub_blocks(head, at + 2)
        else:  # the trailer, or bytes we do not read
            break
    return width, height


def _skip_sub_blocks(data: bytes, at: int) -> int:
    while at < len(data) and data[at]:
        at += data[at] + 1
    return at + 1


def _png(head: bytes) -> tuple[int, int] | None:
    if head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    if len(head) < 26:
        return None
    if int.from_bytes(head[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def _heif(head: bytes) -> tuple[int, int] | None:
    # Every `ispe` (image spatial extents) property: the primary image, its grid tiles, the
    # thumbnails. The largest is the most a decoder will be asked to hold at once.
    largest: tuple[int, int] | None = None
    start = 0
    while (at := head.find(b"ispe", start)) != -1 and at + 16 <= len(head):
        width, height = struct.unpack(">II", head[at + 8:at + 16])
        if largest is None or width * height > largest[0] * largest[1]:
            largest = (width, height)
        start = at + 4
    return largest


_FROM_HEAD = {Kind.GIF: _gif, Kind.PNG: _png, Kind.WEBP: _webp, Kind.BMP: _bmp,
              Kind.AVIF: _heif, Kind.HEIF: _heif}


def _jpeg(stream: BinaryIO) -> tuple[int, int] | None:
    """The frame header (SOFn) found by walking the segments from the start of the file."""
    stream.seek(2)
    for _ in range(_MAX_JPEG_SEGMENTS):
        marker = stream.read(2)
        while marker[:1] == b"\xff" and marker[1:2] == b"\xff":  # fill bytes
            marker = marker[1:] + stream.read(1)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:  # no length field
            continue
        if code in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = int.from_bytes(stream.read(2), "big")
        if length < 2:
            return None
        if code in _JPEG_SOF:
            body = stream.read(5)
            height, width = struct.unpack(">HH", body[1:5])
            return width, height
        stream.seek(length - 2, 1)
    return None


def _tiff(stream: BinaryIO, head: bytes) -> tuple[int, int] | None:
    """Width and height of the first image (IFD), classic TIFF or BigTIFF."""
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43
    if big:
        (offset,) = struct.unpack(order + "Q", head[8:16])
        count_format, entry_format, entry_size, count_size = "Q", "HHQ8s", 20, 8
    else:
        (offset,) = struct.unpack(order + "I", head[4:8])
        count_format, entry_format, entry_size, count_size = "H", "HHI4s", 12, 2
    stream.seek(offset)
    (entries,) = struct.unpack(order + count_format, stream.read(count_size))
    found: dict[int, int] = {}
    table = stream.read(entry_size * min(entries, 4096))
    previous = -1
    for at in range(0, len(table) - entry_size + 1, entry_size):
        tag, field_type, _count, value = struct.unpack(order + entry_format,
                                                       table[at:at + entry_size])
        # A directory out of tag order or with unknown field types is damaged, not a flood:
        # the decoder judges it.
        if tag <= previous or not 1 <= field_type <= 18:
            return None
        previous = tag
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):
            if field_type == 3:  # SHORT, left-justified in the value field
                found[tag] = struct.unpack(order + "H", value[:2])[0]
            elif field_type == 4:  # LONG
                found[tag] = struct.unpack(order + "I", value[:4])[0]
            elif field_type == 16:  # LONG8 (BigTIFF)
                found[tag] = struct.unpack(order + "Q", value[:8])[0]
    if _TIFF_WIDTH in found and _TIFF_HEIGHT in found:
        return found[_TIFF_WIDTH], found[_TIFF_HEIGHT]
    return None
