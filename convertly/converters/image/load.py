"""Reading raster images: the header, and the pixels, oriented and scaled.

libvips reads lazily where it can: `thumbnail` streams the file and shrinks JPEGs while
decoding them. What libvips cannot read (HEIF, BMP, APNG, AVIF sequences, monochrome AVIF,
tiled TIFFs with separate planes: pillow.py) is decoded by Pillow / pillow-heif and crosses to
libvips as pixels in memory; so is any file whose header libvips cannot read and Pillow can.
Damaged input is a CorruptFileError; when a later step fails, `vips_decodes` reads the source
again to tell a bad file from a failed encoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pyvips
from PIL import Image

from convertly.converters.image.colour import cmyk_to_srgb, is_cmyk
from convertly.converters.image.pillow import pillow_header, pillow_load, pillow_reads
from convertly.converters.resize import ResizePlan
from convertly.errors import (
    ConversionError,
    ConvertlyError,
    CorruptFileError,
    ImageTooLargeError,
)
from convertly.models import OutputFormat
from convertly.sniff import Kind

# Kinds whose layouts libvips and Pillow read differently (TIFF: planes, tiles, bit depths,
# compressions; AVIF: libheif against libavif): a file of them that libvips cannot read is
# given to Pillow before it is called corrupt. Other kinds read the same in both, and a
# damaged GIF or PNG would only get a second, more lenient reading.
PILLOW_KINDS = frozenset({Kind.TIFF, Kind.AVIF})
_MAYBE_CMYK = frozenset({Kind.JPEG, Kind.TIFF})  # kinds libvips may read as CMYK
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # EXIF orientations that turn the image a quarter
# What decoders raise on damaged input; pillow-heif reports libheif's errors (a frame larger
# than its header says, libheif's own size limits) as RuntimeError.
DECODE_ERRORS = (pyvips.Error, OSError, ValueError, SyntaxError, RuntimeError)


@dataclass(frozen=True)
class Header:
    """Size, frames and orientation, as the file states them."""

    width: int
    height: int  # of one frame
    pages: int
    orientation: int
    pillow: bool = False  # decoded by Pillow / pillow-heif (pillow.py), not libvips

    def oriented(self, auto_orient: bool) -> tuple[int, int]:
        if auto_orient and self.orientation in _SWAPS_AXES:
            return self.height, self.width
        return self.width, self.height


def vips_source(src: Path) -> pyvips.Source:
    # A Source, not a file name: libvips would read "[...]" at the end of a name as options.
    return pyvips.Source.new_from_file(str(src))


def _fail_on(kind: Kind) -> str:
    # libtiff reports a truncated strip as an error, not as truncation.
    return "error" if kind is Kind.TIFF else "truncated"


def read_header(src: Path, kind: Kind) -> Header:
    """Size, frames and orientation, read without decoding the pixels, and the decoder."""
    try:
        if kind is Kind.BMP:
            return Header(*bmp_size(src), pages=1, orientation=1, pillow=True)
        if pillow_reads(src, kind):
            return read_pillow_header(src, kind)
        image = pyvips.Image.new_from_source(
            vips_source(src), "", access="sequential", fail_on=_fail_on(kind)
        )
    except Image.DecompressionBombError as exc:
        raise _too_large_for_pillow() from exc
    except DECODE_ERRORS as exc:
        # libvips has no loader for this layout: Pillow may read it.
        if kind in PILLOW_KINDS:
            try:
                return read_pillow_header(src, kind)
            except CorruptFileError:
                pass
        raise CorruptFileError() from exc
    return Header(
        image.width,
        image.height,
        pages=int_field(image, "n-pages", 1),
        orientation=int_field(image, "orientation", 1),
    )


def read_pillow_header(src: Path, kind: Kind) -> Header:
    """The header as Pillow reads it; the pixels will be decoded by Pillow too."""
    try:
        found = pillow_header(src, kind)
    except Image.DecompressionBombError as exc:
        raise _too_large_for_pillow() from exc
    except DECODE_ERRORS as exc:
        raise CorruptFileError() from exc
    return Header(found.width, found.height, found.frames, found.orientation, pillow=True)


def bmp_size(src: Path) -> tuple[int, int]:
    """A BMP's width and height from its header (Pillow's own check would refuse a huge one
    before CONVERTLY_MAX_PIXELS is even looked at)."""
    with src.open("rb") as fh:
        head = fh.read(26)
    if len(head) < 26:
        raise CorruptFileError()
    if int.from_bytes(head[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    if width <= 0 or height == 0:
        raise CorruptFileError()
    return width, abs(height)  # a negative height: rows stored top-down


def _too_large_for_pillow() -> ImageTooLargeError:
    return ImageTooLargeError(
        "The image has more pixels than the decoder accepts (Pillow's decompression-bomb "
        f"limit of {Image.MAX_IMAGE_PIXELS:,} pixels, below this server's "
        "CONVERTLY_MAX_PIXELS); send a smaller image."
    )


def load(
    src: Path, kind: Kind, header: Header, plan: ResizePlan, auto_orient: bool, animated: bool
) -> pyvips.Image:
    """The source, oriented and scaled to the plan's scaled size (lazy where libvips reads it)."""
    if header.pillow:
        return _pillow_pixels(src, kind, header, plan, auto_orient, animated)
    shrink = _jpeg_shrink(kind, header, plan, auto_orient)
    if shrink > 1:
        # libjpeg decodes at 1/2, 1/4 or 1/8 size while it reads (DCT scaling): far fewer
        # pixels to decode and to reduce. thumbnail_source does this only when the image
        # shrinks at least twice as much as that; here it is used whenever the decoded
        # image stays at least as large as the target, like Pillow's draft mode. A 2000 px
        # photo to 512 px: 30 % less CPU.
        rotate = auto_orient and header.orientation != 1
        image = pyvips.Image.new_from_source(
            vips_source(src), "", shrink=shrink, access="random" if rotate else "sequential",
            fail_on=_fail_on(kind),
        )
        if is_cmyk(image):
            image = cmyk_to_srgb(image)
        return image.thumbnail_image(
            plan.scaled_width, height=plan.scaled_height, size="force", no_rotate=not rotate
        )
    if plan.scales and kind in _MAYBE_CMYK and _vips_is_cmyk(src, kind):
        # thumbnail would convert CMYK itself (colour.py): convert it first, then scale.
        rotate = auto_orient and header.orientation != 1
        image = pyvips.Image.new_from_source(
            vips_source(src), "", access="random" if rotate else "sequential",
            fail_on=_fail_on(kind),
        )
        return cmyk_to_srgb(image).thumbnail_image(
            plan.scaled_width, height=plan.scaled_height, size="force", no_rotate=not rotate
        )
    if plan.scales:
        # Loader options go in the option string: thumbnail_source does not hand its own
        # fail_on to the loader (libvips 8.18). Every frame of an animation is scaled.
        loader_options = f"fail_on={_fail_on(kind)}" + (",n=-1" if animated else "")
        return pyvips.Image.thumbnail_source(
            vips_source(src),
            plan.scaled_width,
            height=plan.scaled_height,
            size="force",
            no_rotate=not auto_orient,
            option_string=loader_options,
        )
    rotate = auto_orient and header.orientation != 1
    image = pyvips.Image.new_from_source(
        vips_source(src),
        "",
        access="random" if rotate else "sequential",
        fail_on=_fail_on(kind),
        **({"n": -1} if animated else {}),
    )
    return image.autorot() if rotate else image


def _vips_is_cmyk(src: Path, kind: Kind) -> bool:
    return is_cmyk(pyvips.Image.new_from_source(
        vips_source(src), "", access="sequential", fail_on=_fail_on(kind)
    ))  # fmt: skip


def _jpeg_shrink(kind: Kind, header: Header, plan: ResizePlan, auto_orient: bool) -> int:
    """The largest JPEG shrink-on-load factor (1, 2, 4 or 8) that leaves the decoded image
    at least as large as the plan's scaled size."""
    if kind is not Kind.JPEG or not plan.scales:
        return 1
    width, height = header.oriented(auto_orient)
    factor = min(width / plan.scaled_width, height / plan.scaled_height)
    return next((s for s in (8, 4, 2) if s <= factor), 1)


def _pillow_pixels(
    src: Path, kind: Kind, header: Header, plan: ResizePlan, auto_orient: bool, animated: bool
) -> pyvips.Image:
    """Decode with Pillow / pillow-heif (pillow.py); a still is oriented like libvips would."""
    rotate = auto_orient and header.orientation != 1 and not animated
    size = (plan.scaled_width, plan.scaled_height) if plan.scales else None
    if size and rotate and header.orientation in _SWAPS_AXES:
        size = (size[1], size[0])  # scaled before it is turned
    try:
        image = pillow_load(src, kind, animated, size)
    except Image.DecompressionBombError as exc:
        raise _too_large_for_pillow() from exc
    except DECODE_ERRORS as exc:
        raise CorruptFileError() from exc
    if rotate:
        image.set_type(pyvips.GValue.gint_type, "orientation", header.orientation)
        image = image.autorot()
    return image


def int_field(image: pyvips.Image, field: str, default: int) -> int:
    return int(image.get(field)) if image.get_typeof(field) else default


def vips_decodes(src: Path, kind: Kind) -> bool:
    """Whether libvips decodes every pixel of `src` (it decodes lazily: a failed save may be
    a bad source or a failed encoder)."""
    try:
        pyvips.Image.new_from_source(
            vips_source(src), "", access="sequential", fail_on=_fail_on(kind)
        ).avg()
    except pyvips.Error:
        return False
    return True


def failure(src: Path, kind: Kind, header: Header, target: OutputFormat) -> ConvertlyError:
    """The error for a failed conversion: a bad source, or an encoder that failed."""
    if not header.pillow and not vips_decodes(src, kind):
        return CorruptFileError()
    return ConversionError(
        f"The image decoded but could not be written as {target.value}; try another output format."
    )
