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


# Formats we recognise but do not convert: (leading bytes at an offset, what to call them).
# Naming them turns "we cannot tell what this is" into "we know what this is, and do not
# read it".
_KNOWN_UNSUPPORTED: tuple[tuple[int, bytes, str], ...] = (
    (0, bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "Windows Media (ASF: WMA or WMV)"),
    (0, b"8BPS", "Photoshop (PSD)"),
    (0, b"gimp xcf", "GIMP image (XCF)"),
    (0, b"AT&TFORM", "DjVu document"),
    (0, b".RMF", "RealMedia (RM/RA)"),
    (0, b".ra\xfd", "RealAudio (RA)"),
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000 (JP2)"),
    (0, b"\xffO\xffQ", "JPEG 2000 codestream (J2K)"),
    (0, b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"FLV\x01", "Flash video (FLV)"),
    (0, b"MThd", "MIDI"),
    (0, b"#!AMR", "AMR audio"),
    (0, b"MAC ", "Monkey's Audio (APE)"),
    (0, b"wvpk", "WavPack audio"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream (MPG/VOB)"),
    (0, b"%!PS", "PostScript (PS/EPS)"),
    (0, b"\xc5\xd0\xd3\xc6", "PostScript (EPS)"),
    (0, b"{\\rtf", "RTF document"),
    (0, bytes.fromhex("d0cf11e0a1b11ae1"), "Microsoft Office 97-2003 document (DOC/XLS/PPT)"),
    (0, b"\x28\xb5\x2f\xfd", "Zstandard-compressed (ZST)"),
    (0, b"MSCF", "Cabinet archive (CAB)"),
    (0, b"SQLite format 3\x00", "SQLite database"),
    (0, b"\x7fELF", "program (ELF executable)"),
    (8, b"AIFF", "AIFF audio"),
    (8, b"AIFC", "AIFF audio"),
    (8, b"AVI ", "AVI video"),
    (0, b"\x00\x00\x01\x00", "Windows icon (ICO)"),
    (0, b"\x00\x00\x02\x00", "Windows cursor (CUR)"),
    (0, b"icns", "Apple icon (ICNS)"),
    (0, b"DDS ", "DirectDraw Surface (DDS)"),
    (0, b"qoif", "QOI image"),
    (0, b"\x01\xda", "SGI image"),
    (0, b"\x59\xa6\x6a\x95", "Sun raster image"),
    (0, b"\x76\x2f\x31\x01", "OpenEXR image"),
    (0, b"#?RADIANCE", "Radiance HDR image"),
    (0, b"#?RGBE", "Radiance HDR image"),
    (0, b"SDPX", "DPX image"),
    (0, b"XPDS", "DPX image"),
    (0, b"SIMPLE  =", "FITS image"),
    (0, b"BLP1", "Blizzard texture (BLP)"),
    (0, b"BLP2", "Blizzard texture (BLP)"),
    (0, b"/* XPM */", "X PixMap (XPM)"),
    (0, b"caff", "Core Audio (CAF)"),
    (0, b"FORM", "IFF (ILBM, 8SVX or another Amiga format)"),
)
_FORM_BRANDS = (b"AIFF", b"AIFC")


def known_format(head: bytes) -> str | None:
    """The name of a format these leading bytes announce that we recognise but do not
    convert ("Photoshop (PSD)"), or "text" for text; None when we cannot tell."""
    for offset, magic, name in _KNOWN_UNSUPPORTED:
        if head[offset:offset + len(magic)] != magic:
            continue
        if offset == 8 and head[:4] not in (b"FORM", b"RIFF"):
            continue
        if magic in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and not _plausible_ico(head):
            continue
        if magic == b"\x01\xda" and not (head[2:3] in b"\x00\x01" and head[3:4] in b"\x01\x02"):
            continue
        return name
    if _netpbm(head):
        return "Netpbm image (PBM/PGM/PPM)"
    if len(head) > 4 and head[0] == 0x0A and head[1] <= 5 and head[2] == 1 and head[3] in (
            1, 2, 4, 8):
        return "PCX image"
    if head[:1] == b"\x47" and head[188:189] == b"\x47" and head[376:377] == b"\x47":
        return "MPEG transport stream (TS)"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a character cut at the end of `head`
                return None
        return "text"
    return None


def _netpbm(head: bytes) -> bool:
    # "P1" to "P7", then whitespace: the magic of the plain and raw Netpbm formats.
    return (len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567"
            and head[2:3] in (b" ", b"\t", b"\r", b"\n"))


def _plausible_ico(head: bytes) -> bool:
    # Six bytes of header, then 16 per image: at least one image, a reserved zero byte.
    images = int.from_bytes(head[4:6], "little")
    return 0 < images < 256 and len(head) >= 22 and head[9] == 0


def sniff_file(path: Path) -> SourceInfo:
    """Identify a source file; empty or unrecognised files raise a clear error."""
    size = path.stat().st_size
    if size == 0:
        raise CorruptFileError("The file is empty.")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    kind = sniff_bytes(head)
    if kind is None:
        name = known_format(head)
        if name is not None:
            what = "a text file" if name == "text" else f"a file in the {name} format"
            raise UnsupportedMediaError(
                f"This is {what}, which this server does not convert; send {_ACCEPTED}.",
                detail={"format": name},
            )
        raise UnsupportedMediaError(
            f"We cannot tell what kind of file this is from its content; send {_ACCEPTED}."
        )
    return SourceInfo(kind=kind.value, family=kind.family, mime_type=kind.mime_type, size=size)


_ACCEPTED = ("an image (jpg, png, webp, avif, tiff, gif, heif, bmp, svg), a pdf, audio or "
             "video (mp4, webm, mov, mp3, wav, ogg, m4a, flac) or an archive (zip, tar, 7z, "
             "rar, gz, bz2, xz)")
