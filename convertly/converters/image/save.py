"""Encoding raster images: one libvips saver per target, and HEIF through pillow-heif.

`save` writes losslessly when it is given no quality, and spends more CPU for a smaller file
when asked to. Stripping metadata keeps the ICC profile. pyvips-binary cannot write HEIF,
so HEIF goes to pillow-heif (x265) as 8-bit pixels with the ICC profile, EXIF and XMP; nor
APNG, so an animation written as png goes to Pillow, frames, delays and loop count kept.
"""

from __future__ import annotations

from pathlib import Path

import pillow_heif
import pyvips
from PIL import Image

from convertly.converters.image.jpeg_quality import MOZJPEG_MAX, mozjpeg_quality
from convertly.converters.image.load import int_field
from convertly.models import OutputFormat

# Measured on 2 cores, 12 MP photos at quality 82: AVIF effort 0 encodes in 0.3-0.5 s
# (effort 1 is slower and no smaller, effort 2 takes 1.5 s); x265's "ultrafast" preset
# encodes HEIF in 0.9-1.3 s (its default preset takes several seconds).
AVIF_EFFORT = 0
HEIF_ENCODER_PARAMS = {"preset": "ultrafast"}
PNG_COMPRESSION = 6
PNG_ALL_FILTERS = 0xF8  # let libpng pick a row filter per row: ~17 % smaller photos
# mozjpeg (pyvips-binary's libjpeg) at its strongest settings but one: trellis quantisation,
# the ImageMagick table, progressive scans, deringing; at the setting that matches libjpeg's
# quality in SSIM (jpeg_quality.py). Measured at equal SSIM (bench/compression.py): 5-10 %
# smaller than plain libjpeg with optimised Huffman tables up to quality 90, for ~6x the
# encode CPU (a 12 MP photo: ~0.1 s -> ~0.7 s); above 90 it was larger, so there libjpeg's
# table stays and only the scans go progressive. `optimize_scans` would save ~1 % more for
# twice the CPU again.
JPEG_MOZJPEG = {"trellis_quant": True, "quant_table": 3, "overshoot_deringing": True}

LOSSY_TARGETS = frozenset(
    {OutputFormat.JPG, OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.HEIF}
)
_EXIF_ORIENTATION = 0x0112


def save(
    image: pyvips.Image,
    target: OutputFormat,
    path: Path,
    *,
    quality: int | None,
    strip: bool,
    smallest: bool = False,
) -> None:
    """Encode `image` to `path`. `quality` None means lossless; `smallest` spends more CPU.

    Stripping keeps the ICC profile (colours would shift without it) and drops the rest.
    """
    keep = pyvips.ForeignKeep.ICC if strip else pyvips.ForeignKeep.ALL
    out = str(path)
    if quality is not None:
        quality = max(1, min(100, quality))
    match target:
        case OutputFormat.PNG if _frames(image) > 1:
            _save_apng(image, out, strip=strip, smallest=smallest)
        case OutputFormat.JPG if smallest:
            # A 4:2:0 source keeps 4:2:0 at any quality: 4:4:4 would only add bytes.
            subsample = "on" if _chroma_halved(image) else "auto"
            if quality is not None and quality <= MOZJPEG_MAX:
                options: dict[str, object] = {"Q": mozjpeg_quality(quality), **JPEG_MOZJPEG}
            else:
                options = {"Q": quality}
            image.jpegsave(
                out, optimize_coding=True, interlace=True, subsample_mode=subsample, keep=keep,
                **options,
            )
        case OutputFormat.JPG:
            image.jpegsave(out, Q=quality, optimize_coding=True, keep=keep)
        case OutputFormat.PNG if quality is None:
            compression = 9 if smallest else PNG_COMPRESSION
            image.pngsave(out, compression=compression, filter=PNG_ALL_FILTERS, keep=keep)
        case OutputFormat.PNG:
            image.pngsave(out, palette=True, Q=quality, compression=9, keep=keep)
        case OutputFormat.WEBP if quality is None:
            image.webpsave(out, lossless=True, keep=keep)
        case OutputFormat.WEBP:
            image.webpsave(out, Q=quality, keep=keep)
        case OutputFormat.AVIF:
            options = {"lossless": True} if quality is None else {"Q": quality}
            image.heifsave(out, compression="av1", effort=AVIF_EFFORT, keep=keep, **options)
        case OutputFormat.TIFF:
            level = 9 if smallest else 6
            image.tiffsave(
                out, compression="deflate", predictor="horizontal", level=level, keep=keep
            )
        case OutputFormat.GIF:
            image.gifsave(out, keep=keep, effort=10 if smallest else 7)
        case OutputFormat.HEIF:
            _save_heif(image, out, quality=quality, strip=strip)
        case _:
            raise ValueError(f"no image encoder for {target}")


def _save_heif(image: pyvips.Image, out: str, *, quality: int | None, strip: bool) -> None:
    """HEIF through pillow-heif (x265): 8-bit RGB(A) pixels, ICC, EXIF and XMP."""
    if image.bands < 3:
        image = image.colourspace("srgb")
    mode = "RGBA" if image.bands == 4 else "RGB"
    heif = pillow_heif.from_bytes(mode, (image.width, image.height), image.write_to_memory())
    metadata: dict[str, bytes] = {}
    if icc := _blob(image, "icc-profile-data"):
        metadata["icc_profile"] = icc
    if not strip and (exif := _blob(image, "exif-data")):
        metadata["exif"] = _exif_with_orientation(exif, int_field(image, "orientation", 1))
    if not strip and (xmp := _blob(image, "xmp-data")):
        metadata["xmp"] = xmp
    heif.save(
        out,
        quality=-1 if quality is None else quality,
        enc_params=HEIF_ENCODER_PARAMS,
        chroma=444 if quality is None else 420,
        **metadata,
    )


def is_animation(image: pyvips.Image) -> bool:
    """Whether `image` holds more than one frame (stacked vertically, as libvips does)."""
    return _frames(image) > 1


def _frames(image: pyvips.Image) -> int:
    page_height = int_field(image, "page-height", image.height)
    if 0 < page_height < image.height and image.height % page_height == 0:
        return int(image.height // page_height)
    return 1


def _save_apng(image: pyvips.Image, out: str, *, strip: bool, smallest: bool) -> None:
    """An animation (frames stacked vertically, as libvips holds them) as an APNG, losslessly.

    Every frame is written whole; Pillow stores only the region that changed from the last.
    """
    if image.format != "uchar":
        image = image.colourspace("b-w" if image.bands < 3 else "srgb").cast("uchar")
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[image.bands]
    count, height = _frames(image), image.height // _frames(image)
    frames = [
        Image.frombytes(mode, (image.width, height),
                        image.crop(0, i * height, image.width, height).write_to_memory())
        for i in range(count)
    ]  # fmt: skip
    delays = [int(d) for d in image.get("delay")] if image.get_typeof("delay") else []
    if len(delays) != count:
        delays = [100] * count  # libvips's own default frame time
    options: dict[str, object] = {}
    if icc := _blob(image, "icc-profile-data"):
        options["icc_profile"] = icc
    if not strip and (exif := _blob(image, "exif-data")):
        options["exif"] = exif
    frames[0].save(
        out, format="PNG", save_all=True, append_images=frames[1:], duration=delays,
        loop=int_field(image, "loop", 0), compress_level=9 if smallest else PNG_COMPRESSION,
        **options,
    )  # fmt: skip


def _chroma_halved(image: pyvips.Image) -> bool:
    field = "jpeg-chroma-subsample"
    return bool(image.get_typeof(field)) and str(image.get(field)).startswith("4:2:0")


def _exif_with_orientation(exif_data: bytes, orientation: int) -> bytes:
    # libvips rewrites the tag itself when it saves; here the blob is still the source's.
    exif = Image.Exif()
    exif.load(exif_data)
    if orientation != 1 or _EXIF_ORIENTATION in exif:
        exif[_EXIF_ORIENTATION] = orientation
    return exif.tobytes()


def _blob(image: pyvips.Image, field: str) -> bytes | None:
    return bytes(image.get(field)) if image.get_typeof(field) else None
