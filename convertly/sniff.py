"""Magic bytes -> media kind. The file name is never trusted; only the content decides."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from convertly.errors import CorruptFileError, UnsupportedMediaError
from convertly.models import MIME_TYPES, SourceInfo

HEAD_BYTES = 4096


class Kind(StrEnum):
    """What a source file is. `family` picks the converter family."""

    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"
    TIFF = "tiff"
    BMP = "bmp"
    AVIF = "avif"
    HEIF = "heif"
    SVG = "svg"
    PDF = "pdf"
    ZIP = "zip"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    SEVEN_Z = "7z"
    RAR = "rar"
    TAR = "tar"
    MP4 = "mp4"
    MOV = "mov"
    WEBM = "webm"
    MP3 = "mp3"
    WAV = "wav"
    OGG = "ogg"
    FLAC = "flac"
    M4A = "m4a"

    @property
    def family(self) -> str:
        return _FAMILIES[self]

    @property
    def label(self) -> str:
        return self.value.upper()

    @property
    def own_format(self) -> str:
        """The output format that keeps this kind (what compress writes)."""
        return _OWN_FORMAT.get(self, self.value)

    @property
    def mime_type(self) -> str:
        return MIME_TYPES.get(self.own_format, "application/octet-stream")


_FAMILIES: dict[Kind, str] = {
    **{k: "image" for k in (Kind.JPEG, Kind.PNG, Kind.GIF, Kind.WEBP, Kind.TIFF, Kind.BMP)},
    **{k: "image" for k in (Kind.AVIF, Kind.HEIF)},
    Kind.SVG: "vector",
    Kind.PDF: "document",
    **{k: "archive" for k in (Kind.ZIP, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.SEVEN_Z)},
    **{k: "archive" for k in (Kind.RAR, Kind.TAR)},
    **{k: "video" for k in (Kind.MP4, Kind.MOV, Kind.WEBM)},
    **{k: "audio" for k in (Kind.MP3, Kind.WAV, Kind.OGG, Kind.FLAC, Kind.M4A)},
}

_OWN_FORMAT: dict[Kind, str] = {
    Kind.JPEG: "jpg",
    Kind.GZIP: "gz",
    Kind.BZIP2: "bz2",
    Kind.SEVEN_Z: "7z",
}

# What files of each kind are usually called and which MIME types browsers report for them.
# Never used to decide anything here (the content does): `GET /api/formats` lists them so a
# client can guess a file's kind before it sends it, to offer the right targets.
NAME_EXTENSIONS: dict[Kind, tuple[str, ...]] = {
    Kind.JPEG: ("jpg", "jpeg", "jpe", "jfif"), Kind.PNG: ("png", "apng"), Kind.GIF: ("gif",),
    Kind.WEBP: ("webp",), Kind.TIFF: ("tif", "tiff"), Kind.BMP: ("bmp", "dib"),
    Kind.AVIF: ("avif", "avifs"), Kind.HEIF: ("heic", "heif", "hif"), Kind.SVG: ("svg",),
    Kind.PDF: ("pdf",), Kind.ZIP: ("zip",), Kind.GZIP: ("gz", "tgz"), Kind.BZIP2: ("bz2", "tbz2"),
    Kind.XZ: ("xz", "txz"), Kind.SEVEN_Z: ("7z",), Kind.RAR: ("rar",), Kind.TAR: ("tar",),
    Kind.MP4: ("mp4", "m4v"), Kind.MOV: ("mov", "qt"), Kind.WEBM: ("webm", "mkv"),
    Kind.MP3: ("mp3",), Kind.WAV: ("wav",), Kind.OGG: ("ogg", "oga", "opus"),
    Kind.FLAC: ("flac",), Kind.M4A: ("m4a", "m4b", "aac"),
}
NAME_MIME_TYPES: dict[Kind, tuple[str, ...]] = {
    Kind.JPEG: ("image/jpeg", "image/pjpeg"), Kind.PNG: ("image/png", "image/apng"),
    Kind.BMP: ("image/bmp", "image/x-ms-bmp"), Kind.HEIF: ("image/heif", "image/heic"),
    Kind.ZIP: ("application/zip", "application/x-zip-compressed"),
    Kind.GZIP: ("application/gzip", "application/x-gzip"),
    Kind.RAR: ("application/vnd.rar", "application/x-rar-compressed"),
    Kind.SEVEN_Z: ("application/x-7z-compressed",), Kind.WAV: ("audio/wav", "audio/x-wav"),
    Kind.M4A: ("audio/mp4", "audio/x-m4a", "audio/aac"),
    Kind.FLAC: ("audio/flac", "audio/x-flac"), Kind.WEBM: ("video/webm", "video/x-matroska"),
}


_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_MOV_BRANDS = {b"qt  "}


def _ftyp_kind(head: bytes) -> Kind | None:
    size = int.from_bytes(head[0:4], "big")
    if size < 16 or size > len(head):
        size = min(len(head), 64)
    major = head[8:12]
    brands = {major} | {head[i : i + 4] for i in range(16, size, 4)}
    if major in _AVIF_BRANDS:
        return Kind.AVIF
    if major in _HEIF_BRANDS:
        return Kind.AVIF if brands & _AVIF_BRANDS and major in {b"mif1", b"msf1"} else Kind.HEIF
    if major in _MOV_BRANDS:
        return Kind.MOV
    if brands & _AVIF_BRANDS:
        return Kind.AVIF
    if major in (b"M4A ", b"M4B "):
        return Kind.M4A
    return Kind.MP4


def sniff_bytes(head: bytes) -> Kind | None:
    """The kind these leading bytes announce, or None when we do not recognise them."""
    if head.startswith(b"\xff\xd8\xff"):
        return Kind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind.PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Kind.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Kind.WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Kind.WAV
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Kind.TIFF
    if head[:2] == b"BM" and len(head) >= 26 and int.from_bytes(head[14:18], "little") in (
        12, 40, 52, 56, 64, 108, 124,
    ):
        return Kind.BMP
    if head[4:8] == b"ftyp":
        return _ftyp_kind(head)
    if head.startswith(b"%PDF-"):
        return Kind.PDF
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Kind.ZIP
    if head.startswith(b"\x1f\x8b"):
        return Kind.GZIP
    if head.startswith(b"BZh"):
        return Kind.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Kind.XZ
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Kind.SEVEN_Z
    if head.startswith(b"Rar!\x1a\x07"):
        return Kind.RAR
    if len(head) > 262 and head[257:262] == b"ustar":
        return Kind.TAR
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Kind.WEBM
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Kind.MP3
    if head.startswith(b"OggS"):
        return Kind.OGG
    if head.startswith(b"fLaC"):
        return Kind.FLAC
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<svg", b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in text:
        return Kind.SVG
    return None


def sniff_file(path: Path) -> SourceInfo:
    """Identify a source file; empty or unrecognised files raise a clear error."""
    size = path.stat().st_size
    if size == 0:
        raise CorruptFileError("The file is empty.")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    kind = sniff_bytes(head)
    if kind is None:
        raise UnsupportedMediaError(
            "We cannot tell what kind of file this is from its content; "
            "send an image (jpg, png, webp, avif, tiff, gif, heif, bmp, svg), a pdf, "
            "audio or video (mp4, webm, mov, mp3, wav, ogg, m4a, flac) or an archive "
            "(zip, tar, 7z, rar, gz, bz2, xz)."
        )
    return SourceInfo(kind=kind.value, family=kind.family, mime_type=kind.mime_type, size=size)
