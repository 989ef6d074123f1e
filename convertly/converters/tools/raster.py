"""What the image tools (watermark, remove-background, pdf-preview) share: reading a source
image into 8-bit sRGB (alpha kept) with its pixels checked, and writing one output image in
the format and quality the caller chose.

Reading goes through the image converter's loaders (`converters/image/load.py`): the pixel
limit is checked from the header before decoding, EXIF orientation is applied, and what
libvips cannot read (HEIF, BMP, ...) is decoded by Pillow. Writing goes through its encoders
(`converters/image/save.py`), metadata stripped but the ICC profile kept.
"""

from __future__ import annotations

from pathlib import Path

import pyvips

from convertly.converters.base import Limits
from convertly.converters.image import read_header
from convertly.converters.image.declared import check_declared
from convertly.converters.image.load import load
from convertly.converters.image.save import LOSSY_TARGETS, save
from convertly.converters.image.shape import frame_height
from convertly.converters.pixels import check_pixels
from convertly.converters.resize import plan_resize
from convertly.errors import ConversionError, CorruptFileError
from convertly.models import OutputFormat, ResizePreset, extension_for
from convertly.sniff import Kind
from convertly.transforms.media import quality_point

DEFAULT_QUALITY = 82  # jpg, webp and avif when the caller names none
ANIMATED_KINDS = frozenset({Kind.GIF, Kind.WEBP, Kind.PNG, Kind.AVIF})  # read with every frame
ANIMATED_TARGETS = frozenset({OutputFormat.GIF, OutputFormat.WEBP, OutputFormat.PNG})
# Source kinds an output keeps by default (the rest become png or jpg).
_OWN_FORMATS = {
    Kind.JPEG: OutputFormat.JPG,
    Kind.PNG: OutputFormat.PNG,
    Kind.WEBP: OutputFormat.WEBP,
    Kind.AVIF: OutputFormat.AVIF,
    Kind.GIF: OutputFormat.GIF,
    Kind.TIFF: OutputFormat.TIFF,
}


def read_image(src: Path, kind: Kind, limits: Limits, *, animated: bool = False
               ) -> pyvips.Image:  # fmt: skip
    """The first frame of `src` (every frame of an animation, stacked as libvips does, when
    `animated`), oriented, as 8-bit sRGB (3 bands, or 4 with alpha), in memory. Raises
    ImageTooLargeError over the pixel limit, CorruptFileError if unreadable."""
    check_declared(src, kind, limits)
    header = read_header(src, kind)
    animated = animated and header.pages > 1 and kind in ANIMATED_KINDS
    check_pixels(limits, [(header.width, header.height)] * (header.pages if animated else 1))
    plan = plan_resize(header.width, header.height, ResizePreset.ORIGINAL)
    try:
        image = load(src, kind, header, plan, auto_orient=True, animated=animated)
        return srgb(image).copy_memory()
    except pyvips.Error as exc:
        raise CorruptFileError() from exc


def srgb(image: pyvips.Image) -> pyvips.Image:
    """`image` as 8-bit sRGB, 3 bands or 4 with alpha."""
    alpha = image.hasalpha()
    if image.interpretation not in ("srgb",) or image.format != "uchar":
        image = image.colourspace("srgb")
    image = image.cast("uchar")
    bands = 4 if alpha else 3
    if image.bands > bands:
        image = image[:bands]
    return image


def output_format(chosen: str | None, kind: Kind, alpha: bool) -> OutputFormat:
    """The format the caller chose, else the source's own, else png (with alpha) or jpg."""
    if chosen:
        return OutputFormat(chosen)
    own = _OWN_FORMATS.get(kind)
    if own is not None and (own is not OutputFormat.JPG or not alpha):
        return own
    return OutputFormat.PNG if alpha else OutputFormat.JPG


def encoder_quality(value: int | str | None, target: OutputFormat) -> int | None:
    """The encoder quality for a parsed `quality` (a number or a name); None (lossless)
    for formats without one."""
    if target not in LOSSY_TARGETS:
        return None
    return DEFAULT_QUALITY if value is None else quality_point(value)


def write_image(
    image: pyvips.Image, target: OutputFormat, workdir: Path, stem: str, quality: int | str | None
) -> Path:
    """Encode `image` as `target` to `workdir/stem.ext` (metadata stripped, ICC kept); an
    animation written to a format that holds none keeps its first frame."""
    if target not in ANIMATED_TARGETS and frame_height(image) < image.height:
        image = image.crop(0, 0, image.width, frame_height(image))
    if target is OutputFormat.JPG and image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    out = workdir / f"{stem}.{extension_for(target.value)}"
    try:
        save(image, target, out, quality=encoder_quality(quality, target), strip=True)
    except pyvips.Error as exc:
        raise ConversionError(f"The {target.value} output could not be written.") from exc
    return out
