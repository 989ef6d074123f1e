"""The quality a JPEG was saved at, estimated from its luminance quantisation table.

Encoders scale a base table by the quality (libjpeg's `jpeg_quality_scaling`): the IJG/Annex K
table (libjpeg, Pillow, most cameras' close cousins) and the ImageMagick table that compress
writes (mozjpeg's `quant_table=3`). The estimate is the quality whose scaled table, in either
family, lies nearest the file's; a file written by either encoder is matched exactly.

Qualities here are libjpeg's scale. mozjpeg with trellis and the ImageMagick table quantises
harder at the same number, so compress asks it for `mozjpeg_quality(q)`: the setting whose
SSIM matched libjpeg's at `q` on bench/compression.py's photos (mean over nine photos, the
lowest setting not below). A file it wrote reads back as the libjpeg quality it stood for.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

# Natural (row-major) order; a DQT segment stores its table in zigzag order.
_ANNEX_K_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
IMAGEMAGICK_LUMA = (
    16, 16, 16, 18, 25, 37, 56, 85,
    16, 17, 20, 27, 34, 40, 53, 75,
    16, 20, 24, 31, 43, 62, 91, 135,
    18, 27, 31, 40, 53, 74, 106, 156,
    25, 34, 43, 53, 69, 94, 131, 189,
    37, 40, 62, 74, 94, 124, 169, 238,
    56, 53, 91, 106, 131, 169, 226, 311,
    85, 75, 135, 156, 189, 238, 311, 418,
)  # fmt: skip
ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
)  # fmt: skip
_SOS, _DQT, _EOI = 0xDA, 0xDB, 0xD9


# (libjpeg quality, mozjpeg setting of the same SSIM), measured; linear in between.
_MOZJPEG_ANCHORS = (
    (1, 13), (30, 42), (40, 54), (50, 62), (60, 70), (70, 76), (80, 84), (90, 93), (95, 97),
    (100, 100),
)  # fmt: skip
MOZJPEG_MAX = 90  # above this, trellis and the ImageMagick table no longer made files smaller


def mozjpeg_quality(quality: int) -> int:
    """The mozjpeg setting that matches libjpeg's `quality` (1-100) in SSIM."""
    for (low, low_q), (high, high_q) in pairwise(_MOZJPEG_ANCHORS):
        if quality <= high:
            return round(low_q + (high_q - low_q) * (max(quality, low) - low) / (high - low))
    raise ValueError(f"quality {quality} is not in 1-100")


def libjpeg_quality(setting: int) -> int:
    """The libjpeg quality a mozjpeg `setting` stands for: the lowest that compress would
    write at `setting` or finer (so compressing its own output again keeps it)."""
    return next(q for q in range(1, 101) if mozjpeg_quality(q) >= setting)


def scaled_table(base: tuple[int, ...], quality: int) -> tuple[int, ...]:
    """`base` scaled to `quality` as libjpeg does (baseline: entries clamped to 1..255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return tuple(min(255, max(1, (entry * scale + 50) // 100)) for entry in base)


_CANDIDATES = tuple(
    [(quality, scaled_table(_ANNEX_K_LUMA, quality)) for quality in range(1, 101)]
    + [(libjpeg_quality(q), scaled_table(IMAGEMAGICK_LUMA, q)) for q in range(1, 101)]
)


def luma_table(src: Path) -> tuple[int, ...] | None:
    """Table 0 of a JPEG in natural order, read from the segments before the first scan;
    None when the file has none (or is not a JPEG)."""
    with src.open("rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            return None
        while (head := fh.read(4)) and len(head) == 4 and head[0] == 0xFF:
            marker, length = head[1], int.from_bytes(head[2:], "big")
            if marker in (_SOS, _EOI) or length < 2:
                return None
            if marker != _DQT:
                fh.seek(length - 2, 1)
                continue
            body = fh.read(length - 2)
            while len(body) >= 65:
                precision, table_id = body[0] >> 4, body[0] & 0x0F
                width = 2 if precision else 1
                entries = body[1 : 1 + 64 * width]
                if len(entries) < 64 * width:
                    return None
                if table_id == 0:
                    zigzag = [int.from_bytes(entries[i : i + width], "big") for i in
                              range(0, 64 * width, width)]
                    natural = [0] * 64
                    for position, value in zip(ZIGZAG, zigzag, strict=True):
                        natural[position] = value
                    return tuple(natural)
                body = body[1 + 64 * width :]
    return None


def estimate_quality(table: tuple[int, ...]) -> int:
    """The quality (1-100) whose standard table lies nearest `table`."""
    return min(
        _CANDIDATES, key=lambda c: (sum(abs(a - b) for a, b in zip(c[1], table, strict=True)),
                                    -c[0]),
    )[0]


def jpeg_quality(src: Path) -> int | None:
    """The quality `src` was saved at, estimated; None when it has no luminance table."""
    table = luma_table(src)
    return None if table is None else estimate_quality(table)
