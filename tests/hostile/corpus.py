"""The hostile corpus: damaged, lying, oversized and malicious inputs, generated at test time.

Each `Case` is one request. File cases (`batch=True`) also travel together in jobs, where each
file must fail (or convert) on its own; request cases exercise the HTTP layer itself.
`expect` lists the outcomes a case may have ("ok" for a clean conversion, else error codes);
None accepts any clean outcome. Nothing may ever be a 5xx, INTERNAL_ERROR or a crash.
"""

from __future__ import annotations

import io
import random
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

import py7zr

from tests.hostile import samples

TOO_LARGE = frozenset({"IMAGE_TOO_LARGE"})
CORRUPT = frozenset({"CORRUPT_FILE"})
BOMB = frozenset({"ARCHIVE_TOO_LARGE"})


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    files: tuple[tuple[str, bytes], ...] = ()
    fields: dict[str, str] = field(default_factory=dict)
    expect: frozenset[str] | None = None
    batch: bool = False  # a file case: also sent inside a job with others
    paths: tuple[str, ...] = ("/api/convert", "/api/jobs")
    # A hand-made request instead of a multipart form built from files and fields:
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    auth: bool = True
    # Names (under the server's data dir, /tmp, ...) an extraction must never create.
    forbidden: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.category}/{self.name}"


def _file(category: str, name: str, filename: str, data: bytes, fmt: str,
          expect: frozenset[str] | None = None, **fields: str) -> Case:
    return Case(category, name, ((filename, data),), {"format": fmt, **fields}, expect,
                batch=True)


# --- truncated and corrupt files of every input format ---------------------------------

# What each kind is converted to: a cheap target of its own family.
_TARGETS = {
    "jpg": "png", "png": "jpg", "gif": "png", "webp": "png", "tiff": "png", "bmp": "png",
    "avif": "png", "heic": "png", "svg": "png", "pdf": "png", "zip": "zip", "tar": "zip",
    "tgz": "zip", "gz": "xz", "bz2": "gz", "xz": "gz", "7z": "zip", "rar": "zip",
    "mp4": "mp3", "mov": "mp3", "webm": "mp3", "mp3": "wav", "wav": "mp3", "ogg": "wav",
    "flac": "mp3", "m4a": "wav",
}  # fmt: skip


def truncated(valid: dict[str, bytes]) -> list[Case]:
    rng = random.Random(7)
    cases = []
    for kind, data in valid.items():
        target = _TARGETS[kind]
        name = f"sample.{kind}"
        garbled = bytearray(data)
        for i in range(len(data) // 3, 2 * len(data) // 3):
            garbled[i] = rng.randrange(256)
        cases += [
            _file("truncated", f"{kind}-half", name, data[: len(data) // 2], target),
            _file("truncated", f"{kind}-head", name, data[:48], target),
            _file("truncated", f"{kind}-garbled", name, bytes(garbled), target),
        ]
    return cases


# --- pixel floods: headers claiming huge images ------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, idat: bytes = b"", extra: bytes = b"",
                 colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    idat = idat or zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]
    raise ValueError("no SOF marker")


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(samples.gif_animation(1, 1, 1))
    data[6:10] = struct.pack("<HH", width, height)
    at = data.find(b"\x2c", 13)  # the first image descriptor
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _tiff_claiming(width: int, height: int) -> bytes:
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, 1)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHII", tag, kind, 1, value)
    ifd += b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 9) + b"\x00" + ifd


def _bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\0" * 16


def _webp_claiming(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (1, 1)).save(buf, format="WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    at = data.find(b"VP8L") + 8 + 1  # chunk header, then the 0x2f signature
    bits = int.from_bytes(data[at : at + 4], "little")
    bits = (bits & ~0x0FFFFFFF) | (width - 1) | ((height - 1) << 14)
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def _patch_ispe(data: bytes, width: int, height: int) -> bytes:
    at = data.find(b"ispe")
    if at < 0:
        raise ValueError("no ispe box")
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def pixel_floods(valid: dict[str, bytes]) -> list[Case]:
    c = "pixel-flood"
    big = 100_000
    return [
        _file(c, "png-100k", "flood.png", png_claiming(big, big), "jpg", TOO_LARGE),
        _file(c, "png-100k-to-svg", "flood.png", png_claiming(big, big), "svg", TOO_LARGE),
        _file(c, "png-100k-to-pdf", "flood.png", png_claiming(big, big), "pdf", TOO_LARGE),
        _file(c, "jpeg-65k", "flood.jpg", _patch_jpeg_size(valid["jpg"], 65_000, 65_000),
              "png", TOO_LARGE),
        _file(c, "gif-65k", "flood.gif", _gif_claiming(65_535, 65_535), "png", TOO_LARGE),
        _file(c, "gif-65k-to-mp4", "flood.gif", _gif_claiming(65_535, 65_535), "mp4",
              TOO_LARGE),
        _file(c, "webp-16k", "flood.webp", _webp_claiming(16_384, 16_384), "png",
              TOO_LARGE),
        _file(c, "tiff-100k", "flood.tiff", _tiff_claiming(big, big), "png", TOO_LARGE),
        _file(c, "bmp-100k", "flood.bmp", _bmp_claiming(big, big), "png", TOO_LARGE),
        _file(c, "bmp-100k-to-svg", "flood.bmp", _bmp_claiming(big, big), "svg", TOO_LARGE),
        _file(c, "avif-ispe", "flood.avif", _patch_ispe(valid["avif"], 60_000, 60_000), "png",
              TOO_LARGE),
        _file(c, "heic-ispe", "flood.heic", _patch_ispe(valid["heic"], 60_000, 60_000), "png",
              TOO_LARGE),
        # An animation whose frames together hold more pixels than the limit.
        _file(c, "gif-frames", "frames.gif", samples.gif_animation(40, 1000, 1000), "webp",
              TOO_LARGE),
        _file(c, "gif-frames-to-pdf", "frames.gif", samples.gif_animation(40, 1000, 1000),
              "pdf", TOO_LARGE | frozenset({"TOO_MANY_PAGES"})),
        _file(c, "svg-100k", "flood.svg",
              b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000">'
              b'<rect width="10" height="10"/></svg>', "png", frozenset({"ok"})),
        _file(c, "svg-zero", "zero.svg",
              b'<svg xmlns="http://www.w3.org/2000/svg" width="0" height="0"/>', "png",
              CORRUPT),
        _file(c, "svg-tiny-viewbox", "tiny.svg",
              b'<svg xmlns="http://www.w3.org/2000/svg" width="1e-9" height="1e9" '
              b'viewBox="0 0 1e-30 1e30"/>', "png", None),
        _file(c, "pdf-huge-page", "huge.pdf", _pdf_with_media_box(14_400, 14_400, 75), "png",
              frozenset({"ok"})),
        _file(c, "video-frames", "big.mp4", samples.ffmpeg(
            ["-map", "0:v", "-frames:v", "1", "-c:v", "libx264", "-preset", "ultrafast",
             "-f", "mp4"], 0.1, "6000x5000"), "webm", TOO_LARGE),
    ]


def _pdf_with_media_box(width: int, height: int, user_unit: int = 1, count: int = 1) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /UserUnit %d /Contents 4 0 R >>"
        % (width, height, user_unit),
        b"<< /Length 8 >>\nstream\n0 0 m S\n\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


# --- limits on duration and pages --------------------------------------------------------


def _wav_claiming(seconds: int) -> bytes:
    rate = 8000
    size = min(seconds * rate, 0xFFFFFF00)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    return (b"RIFF" + struct.pack("<I", size + 36) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + fmt + b"data" + struct.pack("<I", size) + b"\x80" * 8000)


def durations_and_pages() -> list[Case]:
    c = "duration-pages"
    long_mp3 = samples.ffmpeg(["-map", "1:a", "-ac", "1", "-ar", "8000", "-c:a", "libmp3lame",
                               "-b:a", "8k", "-f", "mp3"], 45.0)
    return [
        # ffprobe trusts the file's size over the header's claim: converted, or refused.
        _file(c, "wav-claims-days", "long.wav", _wav_claiming(10**6), "mp3",
              frozenset({"MEDIA_TOO_LONG", "ok"})),
        _file(c, "mp3-45s", "long.mp3", long_mp3, "wav", frozenset({"MEDIA_TOO_LONG"})),
        _file(c, "mp3-45s-in-zip", "long.zip", samples.zip_of({"long.mp3": long_mp3}), "wav",
              frozenset({"CONVERSION_FAILED"})),
        _file(c, "pdf-30-pages", "many.pdf", samples.pdf(30), "png",
              frozenset({"TOO_MANY_PAGES"})),
        _file(c, "pdf-count-lies", "lies.pdf", _pdf_with_media_box(200, 200, count=10**9),
              "png", frozenset({"ok", "CORRUPT_FILE", "TOO_MANY_PAGES"})),
        _file(c, "pdf-page-past-end", "one.pdf", samples.pdf(1), "png",
              frozenset({"INVALID_FIELD"}), page="7"),
    ]


# --- decompression and archive bombs -----------------------------------------------------

_MIB = 1024 * 1024


def _deflate_zeros(size: int, level: int = 9, wbits: int = 15) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, wbits)
    block = b"\0" * _MIB
    out = [packer.compress(block) for _ in range(size // _MIB)]
    return b"".join(out) + packer.flush()


def _zip_zeros(size: int, name: str = "zeros.bin") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf, \
            zf.open(name, "w", force_zip64=True) as entry:
        block = b"\0" * _MIB
        for _ in range(size // _MIB):
            entry.write(block)
    return buf.getvalue()


def _zip_overlapping(copies: int) -> bytes:
    """Many central-directory entries pointing at one deflated local file."""
    one = _zip_zeros(8 * _MIB, "z")
    cd_at = one.find(b"PK\x01\x02")
    eocd_at = one.find(b"PK\x05\x06")
    record = one[cd_at:eocd_at]
    name_len = struct.unpack("<H", record[28:30])[0]
    head, tail = record[:46], record[46 + name_len :]
    directory = b"".join(
        head[:28] + struct.pack("<H", len(f"z{i}")) + head[30:] + f"z{i}".encode() + tail
        for i in range(copies))
    eocd = one[eocd_at:]
    eocd = (eocd[:8] + struct.pack("<HHII", copies, copies, len(directory), cd_at) + eocd[20:])
    return one[:cd_at] + directory + eocd


def _tar_many(count: int, mode: str = "w") -> bytes:
    return samples.tar_of({f"e{i}": b"" for i in range(count)}, mode)


def _tgz_zeros(size: int) -> bytes:
    head = tarfile.TarInfo("zeros.bin")
    head.size = size
    header = head.tobuf(tarfile.USTAR_FORMAT)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(header)]
    block = b"\0" * _MIB
    out += [packer.compress(block) for _ in range(size // _MIB)]
    out.append(packer.compress(b"\0" * 1024))
    return b"".join(out) + packer.flush()


def _tgz_header_bomb(kind: bytes, size: int) -> bytes:
    """A gzipped tar whose first member is a pax or GNU long-name header of `size` bytes."""
    head = tarfile.TarInfo("././@PaxHeader" if kind == tarfile.XHDTYPE else "././@LongLink")
    head.type = kind
    head.size = size
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(head.tobuf(tarfile.GNU_FORMAT))]
    block = b"a" * _MIB
    out += [packer.compress(block) for _ in range(size // _MIB)]
    return b"".join(out) + packer.flush()


def _seven_z_zeros(size: int) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(b"\0" * size, "zeros.bin")
    return buf.getvalue()


def _png_text_bomb(size: int) -> bytes:
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + _deflate_zeros(size))
    return png_claiming(8, 8, zlib.compress(b"\x00" + b"\x00" * 24) * 1, ztxt)


def bombs() -> list[Case]:
    c = "bomb"
    zeros_zip = _zip_zeros(64 * _MIB)
    nested = samples.zip_of({f"copy{i}.zip": zeros_zip for i in range(8)})
    nested = samples.zip_of({f"level{i}.zip": nested for i in range(4)})
    grey = b"".join(b"\x00" + b"\x00" * 12_000 for _ in range(1))
    png_bomb = png_claiming(12_000, 12_000, zlib.compress(grey * 12_000, 9), colour=0)
    gz_zeros = _deflate_zeros(96 * _MIB, wbits=31)
    return [
        _file(c, "zip-ratio", "bomb.zip", zeros_zip, "zip", BOMB),
        _file(c, "zip-ratio-to-png", "bomb.zip", zeros_zip, "png", BOMB),
        _file(c, "zip-entries", "many.zip", samples.zip_of({f"e{i}": b"" for i in range(3000)}),
              "zip", BOMB),
        _file(c, "zip-nested", "nested.zip", nested, "zip", frozenset({"ok"})),
        _file(c, "zip-nested-to-png", "nested.zip", nested, "png",
              frozenset({"UNSUPPORTED_CONVERSION"})),
        _file(c, "zip-overlap", "overlap.zip", _zip_overlapping(400), "7z",
              BOMB | CORRUPT),
        _file(c, "tar-entries", "many.tar", _tar_many(3000), "zip", BOMB),
        _file(c, "tgz-ratio", "bomb.tgz", _tgz_zeros(96 * _MIB), "zip", BOMB),
        _file(c, "tgz-pax-header", "pax.tgz", _tgz_header_bomb(tarfile.XHDTYPE, 160 * _MIB),
              "zip", BOMB | CORRUPT),
        _file(c, "tgz-longname-header", "long.tgz",
              _tgz_header_bomb(tarfile.GNUTYPE_LONGNAME, 160 * _MIB), "zip", BOMB | CORRUPT),
        _file(c, "gz-ratio", "bomb.gz", gz_zeros, "xz", BOMB),
        _file(c, "gz-ratio-to-zip", "bomb.bin.gz", gz_zeros, "zip", BOMB),
        _file(c, "bz2-ratio", "bomb.bz2", __import__("bz2").compress(b"\0" * 96 * _MIB), "gz",
              BOMB),
        _file(c, "xz-ratio", "bomb.xz", __import__("lzma").compress(b"\0" * 96 * _MIB,
                                                                   preset=0), "gz", BOMB),
        _file(c, "7z-ratio", "bomb.7z", _seven_z_zeros(96 * _MIB), "zip", BOMB),
        _file(c, "7z-entries", "many.7z", samples.seven_z_of({f"e{i}": b"" for i in range(3000)}),
              "zip", BOMB),
        _file(c, "png-idat-bomb", "bomb.png", png_bomb, "jpg", TOO_LARGE),
        _file(c, "png-ztxt-bomb", "text.png", _png_text_bomb(64 * _MIB), "jpg",
              frozenset({"ok"}) | CORRUPT),
        _file(c, "svg-billion-laughs", "laughs.svg", _billion_laughs(), "png", CORRUPT),
        _file(c, "svg-billion-laughs-minify", "laughs.svg", _billion_laughs(), "svg", CORRUPT),
        _file(c, "svg-use-bomb", "use.svg", _use_bomb(), "png", None),
        _file(c, "svg-deep-nesting", "deep.svg",
              b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * 20_000 + b"</g>" * 20_000
              + b"</svg>", "png", None),
    ]


def _billion_laughs() -> bytes:
    lines = ['<!ENTITY lol0 "lol">']
    lines += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE svg [{"".join(lines)}]>\n'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>').encode()


def _use_bomb() -> bytes:
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
             ' width="64" height="64"><defs><rect id="l0" width="1" height="1"/>']
    for level in range(1, 10):
        uses = "".join(f'<use xlink:href="#l{level - 1}" x="{i}"/>' for i in range(10))
        parts.append(f'<g id="l{level}">{uses}</g>')
    parts.append('</defs><use xlink:href="#l9"/></svg>')
    return "".join(parts).encode()


# --- path traversal and links in archives ------------------------------------------------


def _zip_raw(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A zip with names written as given; the int is the Unix mode for external_attr."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # ZipInfo() would clean "..", slashes and drive letters
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _tar_raw(members: list[tuple[str, bytes, bytes, str]]) -> bytes:
    """(name, type, data, linkname) members, written exactly as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.devmajor, info.devminor = 1, 3
            tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def _seven_z_raw(name: str, data: bytes) -> bytes:
    """A 7z whose one entry is called `name` exactly (py7zr refuses to write such names): a
    placeholder name is swapped in the plain (not encoded) header and the CRCs redone."""
    placeholder = "p" * len(name)
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.encoded_header_mode = False
        archive.writestr(data, placeholder)
    raw = bytearray(buf.getvalue())
    offset, size = struct.unpack("<QQ", raw[12:28])
    start = 32 + offset
    header = bytes(raw[start : start + size])
    header = header.replace(placeholder.encode("utf-16-le"), name.encode("utf-16-le"))
    raw[start : start + size] = header
    raw[28:32] = struct.pack("<I", zlib.crc32(header))
    raw[8:12] = struct.pack("<I", zlib.crc32(bytes(raw[12:32])))
    return bytes(raw)


def traversal(marker: str, png: bytes) -> list[Case]:
    """Archives whose entries try to land outside the extraction directory."""
    c = "traversal"
    up = "../" * 12
    reg = stat.S_IFREG | 0o644
    link = stat.S_IFLNK | 0o777
    forbidden = (marker,)
    archives: list[tuple[str, str, bytes]] = [
        ("zip-dotdot", "t.zip", _zip_raw([(f"{up}tmp/{marker}", png, reg), ("a.png", png, reg)])),
        ("zip-absolute", "t.zip", _zip_raw([(f"/tmp/{marker}", png, reg), ("a.png", png, reg)])),
        ("zip-backslash", "t.zip", _zip_raw([(f"..\\..\\{marker}", png, reg)])),
        ("zip-inner-dotdot", "t.zip", _zip_raw([(f"a/../../{marker}", png, reg)])),
        ("zip-drive", "t.zip", _zip_raw([(f"C:/{marker}", png, reg)])),
        ("zip-symlink", "t.zip", _zip_raw([("passwd", b"/etc/passwd", link),
                                           ("passwd/x.png", png, reg), ("a.png", png, reg)])),
        ("zip-nul-name", "t.zip", _zip_raw([(f"a\x00/../{marker}", png, reg)])),
        ("tar-dotdot", "t.tar", _tar_raw([(f"{up}tmp/{marker}", tarfile.REGTYPE, png, ""),
                                          ("a.png", tarfile.REGTYPE, png, "")])),
        ("tar-absolute", "t.tar", _tar_raw([(f"/tmp/{marker}", tarfile.REGTYPE, png, ""),
                                            ("a.png", tarfile.REGTYPE, png, "")])),
        ("tar-symlink-dir", "t.tar", _tar_raw([
            ("escape", tarfile.SYMTYPE, b"", "/tmp"),
            (f"escape/{marker}", tarfile.REGTYPE, png, ""),
            ("a.png", tarfile.REGTYPE, png, "")])),
        ("tar-symlink-file", "t.tar", _tar_raw([("passwd", tarfile.SYMTYPE, b"", "/etc/passwd"),
                                                ("a.png", tarfile.REGTYPE, png, "")])),
        ("tar-hardlink", "t.tar", _tar_raw([("shadow", tarfile.LNKTYPE, b"", "/etc/shadow"),
                                            ("a.png", tarfile.REGTYPE, png, "")])),
        ("tar-devices", "t.tar", _tar_raw([("null", tarfile.CHRTYPE, b"", ""),
                                           ("disk", tarfile.BLKTYPE, b"", ""),
                                           ("fifo", tarfile.FIFOTYPE, b"", ""),
                                           ("a.png", tarfile.REGTYPE, png, "")])),
        ("tgz-dotdot", "t.tgz", __import__("gzip").compress(
            _tar_raw([(f"{up}tmp/{marker}", tarfile.REGTYPE, png, "")]))),
        ("7z-dotdot", "t.7z", _seven_z_raw(f"{up}tmp/{marker}", png)),
        ("7z-absolute", "t.7z", _seven_z_raw(f"/tmp/{marker}", png)),
        ("rar-symlink", "t.rar",
         (samples.DATA / "rar5-evil-symlink-traversal.rar").read_bytes()),
    ]
    cases = []
    for name, filename, data in archives:
        for fmt in ("zip", "png", "tgz"):
            cases.append(Case(c, f"{name}-to-{fmt}", ((filename, data),), {"format": fmt},
                              frozenset({"ok", "CORRUPT_FILE", "UNSUPPORTED_CONVERSION"}),
                              batch=True, forbidden=forbidden))
    return cases


# --- content sniffing: renamed files, polyglots, empty files ---------------------------


def sniffing(valid: dict[str, bytes]) -> list[Case]:
    c = "sniffing"
    ok = frozenset({"ok"})
    return [
        _file(c, "png-named-jpg", "photo.jpg", valid["png"], "webp", ok),
        _file(c, "jpeg-named-pdf", "doc.pdf", valid["jpg"], "png", ok),
        _file(c, "mp3-named-png", "image.png", valid["mp3"], "wav", ok),
        _file(c, "zip-named-mp4", "movie.mp4", valid["zip"], "tar", ok),
        _file(c, "svg-named-png", "image.png", valid["svg"], "png", ok),
        _file(c, "empty", "empty.png", b"", "png", CORRUPT),
        Case(c, "empty-compress", (("empty.png", b""),), {}, CORRUPT,
             paths=("/api/compress",)),
        _file(c, "text", "notes.txt", b"just some text\n" * 10, "png",
              frozenset({"UNSUPPORTED_MEDIA"})),
        _file(c, "html-named-svg", "page.svg", b"<html><body>hi</body></html>", "png",
              frozenset({"UNSUPPORTED_MEDIA"})),
        _file(c, "xml-not-svg", "page.svg",
              b'<?xml version="1.0"?><html><svg xmlns="http://www.w3.org/2000/svg"/></html>',
              "png", CORRUPT),
        _file(c, "elf", "a.png", b"\x7fELF\x02\x01\x01" + b"\0" * 200, "png",
              frozenset({"UNSUPPORTED_MEDIA"})),
        # A JPEG with a zip appended (a "JAR-GIF" style polyglot): read as what it starts as.
        _file(c, "jpeg-zip-polyglot", "poly.zip", valid["jpg"] + valid["zip"], "png", ok),
        _file(c, "pdf-zip-polyglot", "poly.zip", valid["pdf"] + valid["zip"], "zip", ok),
        _file(c, "png-html-polyglot", "poly.html", valid["png"] + b"<script>alert(1)</script>",
              "jpg", ok),
        _file(c, "gif-magic-only", "magic.gif", b"GIF89a", "png", CORRUPT),
        _file(c, "png-magic-only", "magic.png", b"\x89PNG\r\n\x1a\n", "png", CORRUPT),
        _file(c, "pdf-magic-only", "magic.pdf", b"%PDF-1.7\n", "png", CORRUPT),
        _file(c, "zip-magic-only", "magic.zip", b"PK\x03\x04", "zip", CORRUPT),
        _file(c, "mp4-ftyp-only", "magic.mp4", b"\0\0\0\x18ftypisom\0\0\0\0isomiso2", "mp3",
              CORRUPT),
        _file(c, "id3-only", "magic.mp3", b"ID3\x04\0\0\0\0\0\0", "wav", CORRUPT),
    ]


# --- SVG and media that reach for files and URLs ---------------------------------------


def outside_references(port: int) -> list[Case]:
    """SVGs (and one media file) that try to read local files or a loopback URL."""
    c = "outside-refs"
    url = f"http://127.0.0.1:{port}"
    svg = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
    documents = {
        "xxe-file": f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM '
                    f'"file:///etc/passwd">]><svg {svg}><text>&x;</text></svg>',
        "xxe-http": f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "{url}/xxe">]>'
                    f'<svg {svg}><text>&x;</text></svg>',
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE svg SYSTEM "{url}/dtd">'
                        f'<svg {svg} width="10" height="10"/>',
        "parameter-entity": f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY % p SYSTEM '
                            f'"{url}/pe"> %p;]><svg {svg}/>',
        "image-file": f'<svg {svg} width="10" height="10"><image href="file:///etc/passwd" '
                      'width="10" height="10"/></svg>',
        "image-http": f'<svg {svg} width="10" height="10"><image xlink:href="{url}/img.png" '
                      'width="10" height="10"/></svg>',
        "use-http": f'<svg {svg} width="10" height="10"><use href="{url}/u.svg#a"/></svg>',
        "xinclude": f'<svg {svg} xmlns:xi="http://www.w3.org/2001/XInclude" width="10" '
                    f'height="10"><xi:include href="file:///etc/passwd" parse="text"/>'
                    f'<xi:include href="{url}/xi" parse="text"/></svg>',
        "css-import": f'<svg {svg} width="10" height="10"><style>@import url("{url}/a.css");'
                      f'rect {{fill: url({url}/f)}}</style><rect width="10" height="10"/></svg>',
        "style-attr": f'<svg {svg} width="10" height="10"><rect style="fill:url({url}/s)" '
                      'width="10" height="10"/></svg>',
        "fe-image": f'<svg {svg} width="10" height="10"><filter id="f"><feImage '
                    f'href="{url}/fe.png"/></filter><rect filter="url(#f)" width="10" '
                    'height="10"/></svg>',
        "stylesheet-pi": f'<?xml-stylesheet href="{url}/pi.css"?><svg {svg} width="10" '
                         'height="10"/>',
    }
    cases = []
    for name, text in documents.items():
        for fmt in ("png", "pdf", "svg"):
            cases.append(_file(c, f"{name}-to-{fmt}", f"{name}.svg", text.encode(), fmt,
                               frozenset({"ok", "CORRUPT_FILE"})))
    playlist = (f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{url}/seg.ts\n"
                "#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n").encode()
    cases.append(_file(c, "hls-in-id3", "list.mp3", b"ID3\x04\0\0\0\0\0\0" + playlist, "wav",
                       CORRUPT))
    cases.append(_file(c, "svg-refs-in-zip", "refs.zip",
                       samples.zip_of({f"{n}.svg": t.encode() for n, t in documents.items()}),
                       "png", frozenset({"ok", "CONVERSION_FAILED"})))
    return cases


# --- malformed requests ------------------------------------------------------------------


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary"
               ) -> tuple[bytes, str]:
    out = bytearray()
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def requests(valid: dict[str, bytes]) -> list[Case]:
    c = "request"
    png = valid["png"]
    good, good_type = multipart([("format", None, b"jpg"), ("files", "a.png", png)])
    two = (("a.png", png), ("b.png", png))

    def raw(name: str, body: bytes, content_type: str | None, expect: str | None = None,
            **kw: Any) -> Case:
        return Case(c, name, body=body, content_type=content_type,
                    expect=frozenset({expect}) if expect else None, **kw)

    def form(name: str, files: tuple[tuple[str, bytes], ...], expect: str | None,
             **fields: str) -> Case:
        return Case(c, name, files, fields, frozenset({expect}) if expect else None)

    return [
        raw("no-body", b"", None, "INVALID_REQUEST"),
        raw("json-body", b'{"files": []}', "application/json", "INVALID_REQUEST"),
        # Form-urlencoded carries a sourceUrl, never files: without one it is refused.
        raw("urlencoded", b"format=png", "application/x-www-form-urlencoded",
            "INVALID_FIELD"),
        raw("text-plain", png, "text/plain", "INVALID_REQUEST"),
        raw("no-boundary", good, "multipart/form-data", "INVALID_REQUEST"),
        raw("wrong-boundary", good, "multipart/form-data; boundary=other"),
        raw("empty-boundary", good, "multipart/form-data; boundary="),
        raw("huge-boundary", good, "multipart/form-data; boundary=" + "x" * 5000),
        raw("truncated-body", good[: len(good) // 2], good_type),
        raw("no-closing-delimiter", good[: good.rfind(b"--b0undary--")], good_type),
        raw("garbage-after-end", good + os_random(4096), good_type),
        raw("part-without-headers", b"--b0undary\r\n\r\nabc\r\n--b0undary--\r\n", good_type),
        raw("header-without-colon", b"--b0undary\r\nnonsense\r\n\r\nabc\r\n--b0undary--\r\n",
            good_type),
        raw("huge-part-header", b"--b0undary\r\nContent-Disposition: form-data; name=\"f\"\r\n"
            b"X-Pad: " + b"a" * 300_000 + b"\r\n\r\nv\r\n--b0undary--\r\n", good_type),
        raw("file-in-unknown-field", multipart([("format", None, b"jpg"),
                                                 ("photo", "a.png", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("many-fields", multipart([(f"f{i}", None, b"x") for i in range(400)]
                                      + [("files", "a.png", png)])[0], good_type,
            "INVALID_REQUEST"),
        raw("huge-field-value", multipart([("format", None, b"p" * 200_000),
                                            ("files", "a.png", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("field-not-utf8", multipart([("format", None, b"\xff\xfe\xfa"),
                                          ("files", "a.png", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("long-filename", multipart([("format", None, b"jpg"),
                                         ("files", "a" * 1000 + ".png", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("filename-over-header-limit", multipart([("format", None, b"jpg"),
                                                     ("files", "a" * 5000 + ".png", png)])[0],
            good_type, "INVALID_REQUEST"),
        raw("traversal-filename", multipart([("format", None, b"jpg"),
                                              ("files", "../../../etc/passwd", png)])[0],
            good_type, "ok"),
        raw("nul-filename", multipart([("format", None, b"jpg"),
                                        ("files", "a\x00b.png", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("bidi-filename", multipart([("format", None, b"jpg"),
                                         ("files", "photo\u202egnp.exe", png)])[0], good_type,
            "INVALID_FIELD"),
        raw("no-auth", good, good_type, "UNAUTHORIZED", auth=False),
        raw("bad-auth", good, good_type, "UNAUTHORIZED", auth=False,
            headers={"Authorization": "Bearer cvly_" + "A" * 4000}),
        raw("binary-api-key", good, good_type, "UNAUTHORIZED", auth=False,
            headers={"x-api-key": "\u00e9\u00ff" * 50}),  # sent as latin-1 bytes
        raw("idempotency-key-huge", good, good_type, None,
            headers={"Idempotency-Key": "k" * 5000}),
        form("no-files", (), "INVALID_FIELD", format="png"),
        form("no-format", (("a.png", png),), "INVALID_FIELD"),
        form("array-too-short", two, "ARRAY_LENGTH_MISMATCH", formats='["png"]'),
        form("array-too-long", two, "ARRAY_LENGTH_MISMATCH", formats='["png","jpg","gif"]'),
        form("array-not-json", two, "INVALID_FIELD", formats="[png, jpg"),
        form("array-is-object", two, "INVALID_FIELD", formats='{"0": "png"}'),
        form("array-of-objects", two, "INVALID_FIELD", formats='[{"a":1},{"b":2}]'),
        form("array-of-nulls", two, "INVALID_FIELD", formats="[null, null]"),
        form("array-nested-deep", two, "INVALID_FIELD", format="png",
             compressions="[" * 10_000 + "]" * 10_000),
        form("array-nan", two, "INVALID_FIELD", format="png", compressions="[NaN, 50]"),
        form("array-infinity", two, "INVALID_FIELD", format="png", resize="width",
             resizeWidths="[Infinity, 10]"),
        form("array-huge-int", two, "INVALID_FIELD", format="png",
             compressions="[1" + "0" * 5000 + ", 50]"),
        form("array-bools-as-ints", two, "INVALID_FIELD", format="png", compressions="[true, 5]"),
        form("array-strings", two, "INVALID_FIELD", format="png", compressions='["a", "b"]'),
        form("compression-float", (("a.png", png),), "INVALID_FIELD", format="png",
             compression="50.5"),
        form("compression-1e309", (("a.png", png),), "INVALID_FIELD", format="png",
             compression="1e309"),
        form("compression-negative", (("a.png", png),), "INVALID_FIELD", format="png",
             compression="-1"),
        form("resize-unknown", (("a.png", png),), "INVALID_FIELD", format="png",
             resize="<script>"),
        form("width-zero", (("a.png", png),), "INVALID_FIELD", format="png", resize="width",
             resizeWidth="0"),
        form("width-huge", (("a.png", png),), "INVALID_FIELD", format="png", resize="width",
             resizeWidth="99999999999"),
        form("page-zero", (("a.pdf", valid["pdf"]),), "INVALID_FIELD", format="png", page="0"),
        form("format-unknown", (("a.png", png),), "INVALID_FIELD", format="exe"),
        form("format-padded", (("a.png", png),), "ok", format="  .PNG "),
        form("bool-garbage", (("a.png", png),), "INVALID_FIELD", format="png",
             autoOrient="maybe"),
        form("source-url", (), "INVALID_FIELD", sourceUrl="http://127.0.0.1/x"),
        Case(c, "job-type-unknown", (("a.png", png),), {"format": "png", "jobType": "rm"},
             frozenset({"INVALID_FIELD"}), paths=("/api/jobs",)),
        Case(c, "archive-format-unknown", (("a.png", png),),
             {"format": "png", "createArchive": "true", "archiveFormat": "rar"},
             frozenset({"INVALID_FIELD"}), paths=("/api/jobs",)),
        Case(c, "compress-target-missing", (("a.png", png),), {"mode": "target-size"},
             frozenset({"INVALID_FIELD"}), paths=("/api/compress",)),
        Case(c, "compress-target-huge", (("a.png", png),),
             {"mode": "target-size", "targetBytes": "9" * 30}, frozenset({"INVALID_FIELD"}),
             paths=("/api/compress",)),
        Case(c, "list-bad-limit", method="GET", paths=("/api/jobs?limit=9999999999999999999",),
             expect=frozenset({"INVALID_FIELD"})),
        Case(c, "list-bad-offset", method="GET", paths=("/api/jobs?offset=-5&status=%00",),
             expect=frozenset({"INVALID_FIELD"})),
        Case(c, "job-id-garbage", method="GET", paths=("/api/jobs/" + "%2e%2e%2f" * 200,
                                                        "/api/jobs/%00"),
             expect=frozenset({"NOT_FOUND"})),
        Case(c, "download-token-garbage", method="GET", auth=False,
             paths=("/api/download/" + "A" * 3000, "/api/download/..%2f..%2fetc%2fpasswd",
                    "/api/download/%ff%fe"),
             expect=frozenset({"FORBIDDEN", "NOT_FOUND"})),
    ]


def limits(valid: dict[str, bytes], max_file_bytes: int, max_files: int,
           max_request_bytes: int) -> list[Case]:
    """Requests over the size and count limits (the server's own small settings)."""
    c = "size-limits"
    png = valid["png"]
    big = png + b"\0" * (max_file_bytes + 1 - len(png))
    return [
        Case(c, "file-over-limit", (("big.png", big),), {"format": "jpg"},
             frozenset({"FILE_TOO_LARGE"})),
        Case(c, "too-many-files", tuple((f"{i}.png", png) for i in range(max_files + 1)),
             {"format": "jpg"}, frozenset({"TOO_MANY_FILES"})),
        Case(c, "request-over-limit",
             tuple((f"{i}.bin", b"\0" * (max_file_bytes - 1))
                   for i in range(max_request_bytes // max_file_bytes + 1)),
             {"format": "zip"}, frozenset({"PAYLOAD_TOO_LARGE", "TOO_MANY_FILES"})),
    ]


def os_random(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def build(port: int, marker: str, *, max_file_bytes: int, max_files: int,
          max_request_bytes: int) -> list[Case]:
    valid = samples.valid_samples()
    return [
        *truncated(valid),
        *pixel_floods(valid),
        *durations_and_pages(),
        *bombs(),
        *traversal(marker, valid["png"]),
        *sniffing(valid),
        *outside_references(port),
        *requests(valid),
        *limits(valid, max_file_bytes, max_files, max_request_bytes),
    ]
