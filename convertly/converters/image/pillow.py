"""What libvips cannot read, read with Pillow (pillow-heif for HEIF) and handed over as pixels.

libvips is the default decoder (load.py): it streams and shrinks JPEGs while decoding them.
`pillow_reads` names what it cannot read in pyvips-binary 8.18, decided from the file's
structure before anything is decoded:
- HEIF (HEVC) and BMP: no decoder in pyvips-binary;
- animated PNG: libvips reads only the default image of an APNG;
- AVIF image sequences (brand avis): libvips has no loader for them;
- monochrome AVIF: libvips's libheif leaves limited-range luma unexpanded (blacks at 16,
  whites at 235), where libavif expands it;
- tiled TIFFs with separate colour planes (PlanarConfiguration 2): tiff2vips refuses them.
Any other file libvips cannot decode is tried with Pillow before it is called corrupt
(converter.py). Animations cross as libvips does them: frames stacked vertically, with
`page-height`, `delay` (ms per frame) and `loop`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pillow_heif
import pyvips
from PIL import Image, ImageSequence

from convertly.converters.image.colour import cmyk_to_srgb, is_cmyk
from convertly.sniff import Kind

# The Pillow plugin for each kind it decodes (HEIF goes through pillow-heif).
_FORMATS = {Kind.PNG: "PNG", Kind.AVIF: "AVIF", Kind.TIFF: "TIFF", Kind.BMP: "BMP",
            Kind.GIF: "GIF", Kind.WEBP: "WEBP", Kind.JPEG: "JPEG"}
_METADATA = (("icc-profile-data", "icc_profile"), ("exif-data", "exif"), ("xmp-data", "xmp"))
_EXIF_ORIENTATION = 0x0112
_PLANAR_CONFIGURATION, _TILE_WIDTH = 284, 322
_SEPARATE_PLANES = 2
_SIXTEEN_BIT = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class PillowHeader:
    width: int
    height: int
    frames: int  # animation frames, pages, or top-level HEIF images
    orientation: int


def pillow_reads(src: Path, kind: Kind) -> bool:
    """Whether `src` goes to Pillow because libvips cannot read it as it is (module docstring)."""
    if kind in (Kind.HEIF, Kind.BMP):
        return True
    if kind is Kind.PNG:
        return _png_is_animated(src)
    if kind is Kind.AVIF:
        return _avif_is_sequence(src) or _avif_is_monochrome(src)
    if kind is Kind.TIFF:
        return _tiff_has_tiled_planes(src)
    return False


def pillow_header(src: Path, kind: Kind) -> PillowHeader:
    """Size, frames and orientation as Pillow reads them, without decoding pixels.

    Raises what Pillow raises (load.DECODE_ERRORS, Image.DecompressionBombError).
    """
    if kind is Kind.HEIF:
        # libheif applies the HEIF rotation itself (the spec requires it).
        heif = pillow_heif.open_heif(str(src))
        width, height = heif.size
        return PillowHeader(width, height, frames=len(heif), orientation=1)
    with Image.open(src, formats=(_FORMATS[kind],)) as opened:
        orientation = int(opened.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        return PillowHeader(
            opened.width, opened.height, frames=getattr(opened, "n_frames", 1),
            orientation=orientation if 1 <= orientation <= 8 else 1,
        )  # fmt: skip


def pillow_load(
    src: Path, kind: Kind, animated: bool, size: tuple[int, int] | None
) -> pyvips.Image:
    """The first frame, or every frame when `animated`, scaled to `size` when one is given.

    Raises what Pillow raises (load.DECODE_ERRORS, Image.DecompressionBombError).
    """
    if kind is Kind.HEIF:
        return _scaled(_to_vips(pillow_heif.open_heif(str(src)).to_pillow()), size)
    with Image.open(src, formats=(_FORMATS[kind],)) as opened:
        if not animated:
            opened.load()
            return _scaled(_to_vips(opened.copy()), size)
        loop = int(opened.info.get("loop", 0) or 0)
        frames: list[pyvips.Image] = []
        delays: list[int] = []
        for frame in ImageSequence.Iterator(opened):
            frame.load()  # some plugins (AVIF) set the frame's duration when it is decoded
            delays.append(round(float(frame.info.get("duration", 0) or 0)))
            frames.append(_scaled(_to_vips(frame.convert("RGBA")), size).copy_memory())
        metadata = opened.info
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", frames[0].height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", delays)
    strip.set_type(pyvips.GValue.gint_type, "loop", loop)
    _copy_metadata(metadata, strip)
    return strip


def _scaled(image: pyvips.Image, size: tuple[int, int] | None) -> pyvips.Image:
    if size is None:
        return image
    if is_cmyk(image):
        image = cmyk_to_srgb(image)
    return image.thumbnail_image(size[0], height=size[1], size="force", no_rotate=True)


def _to_vips(picture: Image.Image) -> pyvips.Image:
    """Pillow pixels as a libvips image with the ICC profile, EXIF and XMP.

    CMYK stays CMYK, so that shape.py converts it through a profile like a libvips-read one.
    """
    if picture.mode == "1":
        picture = picture.convert("L")
    elif picture.mode in _SIXTEEN_BIT:
        image = pyvips.Image.new_from_memory(
            picture.tobytes("raw", "I;16"), picture.width, picture.height, 1, "ushort"
        ).copy(interpretation="grey16")
        return _copy_metadata(picture.info, image)
    elif picture.mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        picture = picture.convert("RGBA" if picture.has_transparency_data else "RGB")
    bands = len(picture.getbands())
    interpretation = {1: "b-w", 2: "b-w", 3: "srgb", 4: "srgb"}[bands]
    if picture.mode == "CMYK":
        interpretation = "cmyk"
    image = pyvips.Image.new_from_memory(
        picture.tobytes(), picture.width, picture.height, bands, "uchar"
    ).copy(interpretation=interpretation)
    return _copy_metadata(picture.info, image)


def _copy_metadata(info: Mapping[Any, Any], image: pyvips.Image) -> pyvips.Image:
    for field, key in _METADATA:
        value = info.get(key)
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes | bytearray) and value:
            image.set_type(pyvips.GValue.blob_type, field, bytes(value))
    return image


def _png_is_animated(src: Path) -> bool:
    """An acTL chunk before the image data makes a PNG an APNG."""
    with src.open("rb") as fh:
        fh.seek(8)
        while len(head := fh.read(8)) == 8:
            length, chunk = int.from_bytes(head[:4], "big"), head[4:]
            if chunk == b"acTL":
                return True
            if chunk in (b"IDAT", b"IEND"):
                return False
            fh.seek(length + 4, 1)  # the data and its CRC
    return False


def _avif_is_sequence(src: Path) -> bool:
    with src.open("rb") as fh:
        head = fh.read(64)
    size = int.from_bytes(head[:4], "big")
    brands = {head[i : i + 4] for i in range(8, min(size, len(head)), 4)}
    return b"avis" in brands


def _avif_is_monochrome(src: Path) -> bool:
    try:
        return pillow_heif.open_heif(str(src)).mode in ("L", "I;16", "I;16L")
    except (ValueError, RuntimeError, OSError):
        return False  # libvips reads it, or says what is wrong with it


def _tiff_has_tiled_planes(src: Path) -> bool:
    try:
        with Image.open(src, formats=("TIFF",)) as opened:
            tags = opened.tag_v2  # type: ignore[attr-defined]
            return bool(tags.get(_PLANAR_CONFIGURATION) == _SEPARATE_PLANES
                        and _TILE_WIDTH in tags)
    except (ValueError, OSError, SyntaxError, Image.DecompressionBombError):
        return False  # libvips reads it, or says what is wrong with it
