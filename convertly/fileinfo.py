"""What a stored file's record says about it: its type, its size as displayed, its duration
and its page count.

The content decides the type when we recognise it (else the type the client claimed, then
the file name's). Width and height are what a viewer shows: a photo's EXIF orientation and
a video's rotation are applied, so a portrait photo stored sideways with orientation 6 is
recorded portrait, and the orientation filters and the dashboard see what people see.
Duration (audio and video, from ffprobe) and page count (PDF, from PDFium) need the whole
file; without a local path only what the first bytes tell is recorded. A file none of the
readers can describe is still stored: what cannot be read is left empty (None).
"""

from __future__ import annotations

import io
import logging
import mimetypes
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pillow_heif
import pypdfium2 as pdfium
from PIL import Image

from convertly.converters.media.ffmpeg import probe as probe_media
from convertly.errors import ConvertlyError
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes

log = logging.getLogger("convertly.fileinfo")

PROBE_BYTES = 256 * 1024  # enough for the header (and EXIF) of any image we record
PROBE_TIMEOUT = 15.0
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_NO_SIZE_KINDS = frozenset({Kind.SVG})
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})  # orientations that turn the image a quarter


@dataclass(frozen=True)
class FileInfo:
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds, audio and video
    page_count: int | None = None  # PDF


def normalise_mime(value: str | None) -> str | None:
    """`value` as a bare lower-case type/subtype, or None when it is not one."""
    if not value:
        return None
    bare = value.split(";", 1)[0].strip().lower()
    return bare if _MIME.match(bare) else None


def describe(head: bytes, filename: str, claimed: str | None,
             path: Path | None = None) -> FileInfo:
    """What to record for a file whose first bytes are `head` (at least PROBE_BYTES of it,
    when it has that many); `path`, the whole file on local disk, adds what only the whole
    file tells (duration, pages, a HEIF's size)."""
    kind = sniff_bytes(head[:HEAD_BYTES])
    if kind is None:
        claimed = normalise_mime(claimed)
        if claimed and claimed != "application/octet-stream":
            return FileInfo(claimed)
        guessed = normalise_mime(mimetypes.guess_type(filename)[0])
        return FileInfo(guessed or "application/octet-stream")
    info = FileInfo(kind.mime_type)
    if kind.family == "image" and kind not in _NO_SIZE_KINDS:
        width, height = displayed_size(head, kind, path)
        return FileInfo(kind.mime_type, width, height)
    if path is None:
        return info
    if kind.family in ("audio", "video"):
        return _media(path, info)
    if kind is Kind.PDF:
        return FileInfo(info.mime_type, page_count=_pages(path))
    return info


def extent(path: Path, mime_type: str) -> tuple[float | None, int | None]:
    """(duration, page count) of a converter's output at `path`: what its result does not
    carry already (it has the size)."""
    family = mime_type.split("/", 1)[0]
    if family in ("audio", "video"):
        return _media(path, FileInfo(mime_type)).duration, None
    if mime_type == "application/pdf":
        return None, _pages(path)
    return None, None


def describe_path(path: Path, filename: str, claimed: str | None = None) -> FileInfo:
    """`describe` for a whole file on local disk."""
    with path.open("rb") as fh:
        head = fh.read(PROBE_BYTES)
    return describe(head, filename, claimed, path)


def displayed_size(head: bytes, kind: Kind, path: Path | None = None
                   ) -> tuple[int | None, int | None]:
    """Width and height as shown, EXIF orientation applied, from the header (Pillow reads
    only the header); (None, None) when it is not within `head` or not readable."""
    if kind is Kind.HEIF:  # libheif applies the HEIF rotation itself
        if path is None:
            return None, None
        try:
            width, height = pillow_heif.open_heif(str(path)).size
        except (RuntimeError, ValueError, OSError):
            return None, None
        return width, height
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(head)) as image:
                width, height = image.size
                orientation = image.getexif().get(_EXIF_ORIENTATION)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            return None, None
    if orientation in _SWAPS_AXES:
        return height, width
    return width, height


def _media(path: Path, info: FileInfo) -> FileInfo:
    try:
        media = probe_media(path, timeout=PROBE_TIMEOUT)
    except ConvertlyError as exc:
        log.info("no duration recorded for %s: %s", path.name, exc.message)
        return info
    video = media.video
    width, height = video.display_size if video is not None else (None, None)
    return FileInfo(info.mime_type, width, height, duration=media.duration)


def _pages(path: Path) -> int | None:
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError:  # damaged, or encrypted: stored all the same
        return None
    try:
        return len(document)
    finally:
        document.close()
