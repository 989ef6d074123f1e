"""Image compress: a quality that fits a target size, and never a file larger than the original.

Quality mode re-encodes at the requested quality, or losslessly where that was asked for or
the format has no quality to trade; JPEGs go through mozjpeg's strongest settings (save.py).
A JPEG saved at or below the requested quality (estimated from its quantisation table) is
handed back as it is, with a note: re-encoding it could only lose detail for a few per cent.
Target-size mode binary-searches the highest quality
whose file fits. The source is handed back instead when the re-encode came out larger, or
missed a target the source meets; when metadata must go, only a JPEG's can be cut out of the
source, and other formats keep the re-encode. Lossless JPEG compress keeps the entropy-coded
data byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyvips

from convertly.converters.image.jpeg_markers import strip_jpeg_metadata
from convertly.converters.image.jpeg_quality import jpeg_quality
from convertly.converters.image.load import Header, vips_source
from convertly.converters.image.save import LOSSY_TARGETS, is_animation, save
from convertly.errors import ConversionError, CorruptFileError
from convertly.models import CompressMode, ConvertedFile, FileSpec, OutputFormat, mime_for
from convertly.sniff import Kind

# Compress can trade quality for size in these (png through palette quantisation).
_TUNABLE_TARGETS = LOSSY_TARGETS | {OutputFormat.PNG}


@dataclass(frozen=True)
class Outcome:
    """What an encode gave: the quality applied, a note, and whether the source came back."""

    quality: int | None
    note: str | None = None
    kept_source: bool = False  # compress handed back the source bytes


def compress_image(
    image: pyvips.Image,
    target: OutputFormat,
    src: Path,
    kind: Kind,
    spec: FileSpec,
    header: Header,
    out: Path,
) -> Outcome:
    """Re-encode smaller, or hand back the source when that is smaller still."""
    # An APNG is written losslessly: palette quantisation is for stills.
    tunable = target in _TUNABLE_TARGETS and not spec.lossless and not (
        target is OutputFormat.PNG and is_animation(image)
    )
    if spec.mode is CompressMode.TARGET_SIZE:
        assert spec.target_bytes is not None  # checked by _check_compress
        try:
            quality = _fit_size(image, target, out, spec.target_bytes, tunable, spec.strip_metadata)
        except ConversionError:
            original = _source_bytes(src, kind, spec, header)
            if original is None or len(original) > spec.target_bytes:
                raise
            out.write_bytes(original)
            return Outcome(None, "The original already fits the target size; it was kept.", True)
    else:
        quality = spec.compression if tunable else None
        if kept := _already_at_quality(src, kind, spec, header, quality, out):
            return kept
        save(image, target, out, quality=quality, strip=spec.strip_metadata, smallest=True)
    if out.stat().st_size <= src.stat().st_size:
        return Outcome(quality)
    original = _source_bytes(src, kind, spec, header)
    if original is None:
        # Only a re-encode removes the metadata, and removing it was asked for.
        return Outcome(
            quality, "The file is larger than the original: removing metadata needed a re-encode."
        )
    out.write_bytes(original)
    return Outcome(None, "Re-encoding made the file larger, so the original was kept.", True)


def _already_at_quality(
    src: Path, kind: Kind, spec: FileSpec, header: Header, quality: int | None, out: Path
) -> Outcome | None:
    """The source kept when it is a JPEG saved at `quality` or below; None to re-encode."""
    if kind is not Kind.JPEG or quality is None:
        return None
    saved_at = jpeg_quality(src)
    if saved_at is None or saved_at > quality:
        return None
    original = _source_bytes(src, kind, spec, header)
    assert original is not None  # a JPEG's metadata can always be cut out
    out.write_bytes(original)
    removed = " (its metadata removed)" if spec.strip_metadata else ""
    return Outcome(
        None,
        f"The JPEG was saved at about quality {saved_at}, at or below the {quality} asked for: "
        f"re-encoding it would lose detail and save little, so the original was kept{removed}. "
        "Ask for a lower quality, or a target size, to make it smaller.",
        True,
    )


def _fit_size(
    image: pyvips.Image,
    target: OutputFormat,
    out: Path,
    target_bytes: int,
    tunable: bool,
    strip: bool,
) -> int | None:
    """Binary-search the highest quality whose file fits in `target_bytes` (<= 7 encodes)."""
    image = image.copy_memory()  # decode once; every attempt encodes the same pixels
    if not tunable:
        save(image, target, out, quality=None, strip=strip, smallest=True)
        size = out.stat().st_size
        if size > target_bytes:
            out.unlink()
            raise _unreachable(size, None, target_bytes)
        return None
    attempt = out.with_name(f"attempt{out.suffix}")
    low, high = 1, 100
    best: int | None = None
    smallest: int | None = None
    while low <= high:
        quality = (low + high) // 2
        save(image, target, attempt, quality=quality, strip=strip)
        size = attempt.stat().st_size
        if size <= target_bytes:
            attempt.replace(out)
            best, low = quality, quality + 1
        else:
            smallest = size if smallest is None else min(smallest, size)
            high = quality - 1
    attempt.unlink(missing_ok=True)
    if best is None:
        assert smallest is not None
        raise _unreachable(smallest, 1, target_bytes)
    return best


def _unreachable(smallest: int, quality: int | None, target_bytes: int) -> ConversionError:
    at = "at quality 1" if quality is not None else "losslessly"
    return ConversionError(
        f"The smallest file we could make {at} is {smallest:,} bytes, over the target of "
        f"{target_bytes:,} bytes; raise targetBytes or make the image smaller first.",
        detail={"smallestBytes": smallest, "quality": quality, "targetBytes": target_bytes},
    )


def _source_bytes(src: Path, kind: Kind, spec: FileSpec, header: Header) -> bytes | None:
    """The source as compress may return it: None when metadata must go and cannot be cut."""
    data = src.read_bytes()
    if not spec.strip_metadata:
        return data
    if kind is Kind.JPEG:
        # Without baking it into the pixels, the orientation tag is what keeps a photo upright.
        return strip_jpeg_metadata(data, header.orientation if spec.auto_orient else 1)
    return None


def jpeg_lossless(src: Path, spec: FileSpec, header: Header, out: Path) -> ConvertedFile:
    """Lossless JPEG compress: the entropy-coded data is kept byte for byte."""
    try:
        # Shrink-on-load reads every scan cheaply, which is enough to catch truncation.
        pyvips.Image.new_from_source(
            vips_source(src), "", shrink=8, access="sequential", fail_on="truncated"
        ).avg()
    except pyvips.Error as exc:
        raise CorruptFileError() from exc
    data = _source_bytes(src, Kind.JPEG, spec, header)
    assert data is not None
    out.write_bytes(data)
    width, height = header.oriented(spec.auto_orient)
    return ConvertedFile(
        path=str(out),
        format=OutputFormat.JPG.value,
        mime_type=mime_for(OutputFormat.JPG.value),
        width=width,
        height=height,
        notes=("Lossless JPEG compression keeps the pixels; only metadata can be removed.",),
    )
