"""The inspect tool: what a file is, without converting it (no output file, facts only).

Images are read by their header (libvips, or Pillow / pillow-heif for what libvips cannot
read): dimensions, frames, orientation, alpha, and whether EXIF, ICC and XMP data are there.
PDFs by PDFium: pages, the first page's size, the document's info entries. Audio and video
by ffprobe: container, duration, bitrate, and each stream's codec, size, rate and channels.
Nothing is decoded, so no size limit applies; a file that cannot be read is CORRUPT_FILE.

Every answer has `format` (the sniffed kind), `mimeType`, `size` (bytes), `width`/`height`
(null for audio), `duration` (seconds, null for stills), `pages`, `hasExif`, `hasIcc`,
`streams` (empty for images and PDFs) and `metadata` (tag and info names with their values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pillow_heif
import pypdfium2 as pdfium
import pyvips
from PIL import Image

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image.load import DECODE_ERRORS, vips_source
from convertly.converters.image.pillow import pillow_reads
from convertly.converters.media.encryption import check_not_encrypted
from convertly.converters.media.ffmpeg import PROBE_TIMEOUT, SOURCE_GUARD, input_url
from convertly.converters.process import run, which
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.converters.vector.pdf import read_pdf
from convertly.errors import CorruptFileError
from convertly.models import SourceInfo
from convertly.sniff import Kind

MAX_TAG_CHARS = 200  # a tag value longer than this is cut (cover art, lyrics)
_EXIF_ORIENTATION = 0x0112


def inspect(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
            limits: Limits, progress: ProgressFn) -> ToolOutput:  # fmt: skip
    kind = Kind(source.kind)
    facts: dict[str, Any] = {
        "format": kind.value, "mimeType": source.mime_type, "size": source.size,
        "width": None, "height": None, "duration": None, "pages": 1, "hasExif": False,
        "hasIcc": False, "streams": [], "metadata": {},
    }  # fmt: skip
    if kind.family in ("video", "audio"):
        facts.update(_media(src, kind))
    elif kind is Kind.PDF:
        facts.update(_pdf(src))
    elif pillow_reads(src, kind):
        facts.update(_pillow_image(src, kind))
    else:
        facts.update(_vips_image(src))
    return ToolOutput([], facts)


# -- images ----------------------------------------------------------------------------------


def _vips_image(src: Path) -> dict[str, Any]:
    try:
        image = pyvips.Image.new_from_source(vips_source(src), "", access="sequential")
        fields = set(image.get_fields())
        pages = int(image.get("n-pages")) if "n-pages" in fields else 1
        facts: dict[str, Any] = {
            "width": image.width,
            "height": image.height,  # of one page: only the first is opened
            "pages": pages,
            "channels": image.bands,
            "hasAlpha": bool(image.hasalpha()),
            "orientation": int(image.get("orientation")) if "orientation" in fields else 1,
            "hasExif": "exif-data" in fields,
            "hasIcc": "icc-profile-data" in fields,
            "hasXmp": "xmp-data" in fields,
        }
        if pages > 1 and "delay" in fields:
            facts["duration"] = round(sum(image.get("delay")) / 1000, 3)
    except pyvips.Error as exc:
        raise CorruptFileError() from exc
    return facts


def _pillow_image(src: Path, kind: Kind) -> dict[str, Any]:
    try:
        if kind is Kind.HEIF:
            heif = pillow_heif.open_heif(str(src))
            info = heif.info
            return {"width": heif.size[0], "height": heif.size[1], "pages": len(heif),
                    "hasAlpha": bool(heif.has_alpha), "orientation": 1,
                    "hasExif": bool(info.get("exif")), "hasIcc": bool(info.get("icc_profile")),
                    "hasXmp": bool(info.get("xmp"))}  # fmt: skip
        with Image.open(src) as image:
            frames = getattr(image, "n_frames", 1)
            orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            facts: dict[str, Any] = {
                "width": image.width, "height": image.height, "pages": frames,
                "hasAlpha": "A" in image.getbands() or "transparency" in image.info,
                "orientation": orientation if 1 <= orientation <= 8 else 1,
                "hasExif": bool(image.info.get("exif")),
                "hasIcc": bool(image.info.get("icc_profile")),
                "hasXmp": bool(image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")),
            }  # fmt: skip
            if frames > 1:
                total = 0
                for index in range(frames):
                    image.seek(index)
                    total += int(image.info.get("duration", 0) or 0)
                facts["duration"] = round(total / 1000, 3)
            return facts
    except (*DECODE_ERRORS, Image.DecompressionBombError) as exc:
        raise CorruptFileError() from exc


# -- PDF -------------------------------------------------------------------------------------


def _pdf(src: Path) -> dict[str, Any]:
    document = read_pdf(src)
    try:
        pages = len(document)
        facts: dict[str, Any] = {"pages": pages, "pdfVersion": _pdf_version(document)}
        if pages:
            width, height = document[0].get_size()  # points (1/72 in)
            facts.update(width=round(width), height=round(height), unit="pt")
        metadata = {k: _cut(v) for k, v in document.get_metadata_dict(skip_empty=True).items()}
        facts["metadata"] = metadata
        return facts
    except pdfium.PdfiumError as exc:
        raise CorruptFileError("The PDF is damaged and cannot be read.") from exc
    finally:
        document.close()


def _pdf_version(document: pdfium.PdfDocument) -> str | None:
    version = document.get_version()
    return f"{version // 10}.{version % 10}" if version else None


# -- audio and video -------------------------------------------------------------------------


def _media(src: Path, kind: Kind) -> dict[str, Any]:
    check_not_encrypted(src, kind)
    done = run([which("ffprobe"), "-v", "error", "-print_format", "json", "-show_format",
                "-show_streams", *SOURCE_GUARD, input_url(src)],
               timeout=PROBE_TIMEOUT, check=False)  # fmt: skip
    if done.returncode != 0:
        raise CorruptFileError("The file cannot be read as audio or video; it may be truncated "
                               "or damaged.")  # fmt: skip
    try:
        data = json.loads(done.stdout)
        fmt = data.get("format", {})
        streams = [_stream(s) for s in data.get("streams", [])]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CorruptFileError("ffprobe could not describe the file.") from exc
    video = next((s for s in streams if s["type"] == "video" and not s["attachedPicture"]), None)
    facts: dict[str, Any] = {
        "container": fmt.get("format_name"),
        "duration": _number(fmt.get("duration")),
        "bitrate": _integer(fmt.get("bit_rate")),
        "streams": streams,
        "metadata": {k.lower(): _cut(str(v)) for k, v in (fmt.get("tags") or {}).items()},
        "hasVideo": video is not None,
        "hasAudio": any(s["type"] == "audio" for s in streams),
    }
    if video is not None:
        facts.update(width=video["width"], height=video["height"])
    return facts


def _stream(raw: dict[str, Any]) -> dict[str, Any]:
    kind = str(raw.get("codec_type", ""))
    stream: dict[str, Any] = {
        "index": int(raw["index"]),
        "type": kind,
        "codec": raw.get("codec_name"),
        "profile": raw.get("profile"),
        "duration": _number(raw.get("duration")),
        "bitrate": _integer(raw.get("bit_rate")),
        "language": (raw.get("tags") or {}).get("language"),
        "attachedPicture": bool((raw.get("disposition") or {}).get("attached_pic")),
    }
    if kind == "video":
        stream.update(width=_integer(raw.get("width")), height=_integer(raw.get("height")),
                      fps=_rate(raw.get("avg_frame_rate")) or _rate(raw.get("r_frame_rate")),
                      pixelFormat=raw.get("pix_fmt"), rotation=_rotation(raw))  # fmt: skip
    elif kind == "audio":
        stream.update(channels=_integer(raw.get("channels")),
                      sampleRate=_integer(raw.get("sample_rate")),
                      channelLayout=raw.get("channel_layout"))  # fmt: skip
    return stream


def _rotation(raw: dict[str, Any]) -> int:
    for side in raw.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]) / 90) * 90) % 360
    return int((raw.get("tags") or {}).get("rotate", 0) or 0) % 360


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _integer(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rate(value: Any) -> float | None:
    num, _, den = str(value or "").partition("/")
    try:
        rate = float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return None
    return round(rate, 3) if rate > 0 else None


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TAG_CHARS else value[:MAX_TAG_CHARS] + "…"


INSPECT = Tool(
    "inspect", "What a file is (format, dimensions, duration, streams, codecs, pages, EXIF and "
    "ICC presence), without converting it.",
    frozenset(Kind) - {Kind.ZIP, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.SEVEN_Z, Kind.RAR,
                       Kind.TAR},
    (), inspect,
)  # fmt: skip
