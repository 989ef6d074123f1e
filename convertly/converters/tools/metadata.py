"""strip-metadata: the same picture or recording without EXIF, GPS, XMP, IPTC, comments,
tags or chapters.

Images go through the image converter's lossless compress with stripping on: a JPEG keeps
its entropy-coded data byte for byte (only metadata segments are cut out, `jpeg_markers`),
the other formats are re-encoded losslessly by libvips. The ICC profile stays (colours would
shift without it) and so does the orientation: a JPEG keeps a minimal EXIF segment holding
only its orientation tag, other formats have it applied to the pixels. Audio and video are
copied stream for stream by ffmpeg (`-map_metadata -1`, no re-encode): container and stream
tags, chapters and the muxer's version string go; the rotation a video is shown with stays,
as it is part of the stream, not a tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convertly.converters.base import Limits, ProgressFn
from convertly.converters.image.converter import ImageConverter
from convertly.converters.media.ffmpeg import (
    ProgressReader,
    input_url,
    output_args,
    probe,
    run_ffmpeg,
)
from convertly.converters.tools.base import Tool, ToolOutput
from convertly.models import FileSpec, JobType, OutputFormat, SourceInfo, extension_for
from convertly.sniff import Kind

IMAGE_SOURCES = frozenset({Kind.JPEG, Kind.PNG, Kind.GIF, Kind.WEBP, Kind.TIFF, Kind.AVIF,
                           Kind.HEIF})
MEDIA_SOURCES = frozenset({Kind.MP4, Kind.MOV, Kind.WEBM, Kind.MP3, Kind.WAV, Kind.OGG,
                           Kind.FLAC, Kind.M4A})
# Seconds of stream copy allowed per second of media, and at least this long: a copy reads
# and writes the file once, far faster than real time.
_COPY_TIMEOUT = 60.0


def strip_metadata(src: Path, source: SourceInfo, options: Mapping[str, Any], workdir: Path,
                   limits: Limits, progress: ProgressFn) -> ToolOutput:
    kind = Kind(source.kind)
    if kind in IMAGE_SOURCES:
        return ToolOutput(files=[_strip_image(src, source, kind, workdir, limits, progress)])
    return ToolOutput(files=[_strip_media(src, kind, workdir, limits, progress)])


def _strip_image(src: Path, source: SourceInfo, kind: Kind, workdir: Path, limits: Limits,
                 progress: ProgressFn) -> Path:
    spec = FileSpec(index=0, filename=src.name, job_type=JobType.COMPRESS,
                    format=OutputFormat(kind.own_format), lossless=True, strip_metadata=True)
    out = ImageConverter().convert(src, source, spec, workdir, limits, progress)
    return Path(out.path)


def _strip_media(src: Path, kind: Kind, workdir: Path, limits: Limits,
                 progress: ProgressFn) -> Path:
    fmt = kind.own_format
    out = workdir / f"stripped.{extension_for(fmt)}"
    info = probe(src)
    # Every audio, video and subtitle stream, copied; data streams (timecodes, ...) are
    # dropped, as some containers cannot hold them.
    args = ["-i", input_url(src), "-map", "0:v?", "-map", "0:a?", "-map", "0:s?", "-dn",
            "-c", "copy", *output_args(fmt, out, strip=True)]
    run_ffmpeg(args, timeout=max(_COPY_TIMEOUT, float(limits.max_media_seconds)),
               reader=ProgressReader(info.duration, progress), workdir=workdir)
    return out


STRIP_METADATA = Tool(
    name="strip-metadata",
    summary="Removes EXIF, GPS, XMP, IPTC, comments, tags and chapters from an image, audio "
            "or video file; the pixels and streams stay as they were (a JPEG's image data "
            "and every audio and video stream are copied, not re-encoded).",
    sources=IMAGE_SOURCES | MEDIA_SOURCES,
    params=(),
    run=strip_metadata,
)

TOOLS = (STRIP_METADATA,)
