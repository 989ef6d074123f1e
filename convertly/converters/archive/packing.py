"""Writing archives: zip, tar, tgz and 7z containers, and one file compressed as gz, bz2 or xz.

Already-compressed data (sniffed from its content, never from its name) is stored rather than
squeezed again: LZMA spends seconds per megabyte of JPEG to save nothing. The rest is
compressed at a fast level, or at a slower, smaller one for compress jobs (`best`).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import py7zr

from convertly.converters.archive.extraction import CHUNK, DRIVE
from convertly.models import OutputFormat
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes

PACK_FORMATS = ("zip", "tar", "tgz", "7z")

# Content these kinds carry is compressed already: deflate or LZMA would burn CPU for ~1 %.
PACKED_KINDS = frozenset({
    Kind.JPEG, Kind.PNG, Kind.GIF, Kind.WEBP, Kind.AVIF, Kind.HEIF,
    Kind.MP4, Kind.MOV, Kind.WEBM, Kind.MP3, Kind.OGG, Kind.M4A, Kind.FLAC,
    Kind.ZIP, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.SEVEN_Z, Kind.RAR,
})  # fmt: skip
# Other large files (deflated TIFF, PDF, a tar of JPEGs) are judged by a zlib-1 sample.
SAMPLE_FROM_BYTES = 1024 * 1024
SAMPLE_BYTES = 64 * 1024
PACKED_RATIO = 0.97

# Levels, measured on 2 cores with a 43 MB mix (8 photo JPEGs, PNG, MP3, WAV, BMP, text), 57 %
# of it compressible: zip stored + deflate 6 ~93 MB/s, tgz stored + level-6 members ~95 MB/s
# (one level-6 stream: 50 MB/s), 7z copy + LZMA2 preset 0 ~40-50 MB/s and 6 % smaller (preset
# 1: same size at 20 MB/s; presets 3 and up: 4 MB/s). Only JPEG/PNG/MP3: 600-1200 MB/s. LZMA
# runs at ~2 MB/s over JPEG data even at preset 0; py7zr's default is preset 7 over everything.
ZIP_LEVEL, ZIP_BEST_LEVEL = 6, 9
GZIP_LEVEL, GZIP_BEST_LEVEL, GZIP_PACKED_LEVEL = 6, 9, 1
BZIP2_LEVEL, BZIP2_PACKED_LEVEL = 9, 1  # bzip2 has no store mode: level 1 is its fastest
XZ_PRESET, XZ_BEST_PRESET = 1, 6 | lzma.PRESET_EXTREME
SEVEN_Z_PRESET, SEVEN_Z_BEST_PRESET = 0, 6
_COPY = [{"id": py7zr.FILTER_COPY}]


@dataclass(frozen=True)
class _Member:
    name: str
    path: Path
    packed: bool  # stored, not compressed again


def pack(entries: Sequence[tuple[str, Path]], out: Path, fmt: str, *, best: bool = False) -> None:
    """Write `entries` (archive name, file or directory on disk) to `out` as zip, tar, tgz or 7z.

    Names are relative POSIX paths ("photos/a.jpg"); a directory becomes a directory entry.
    Already-compressed files are stored (zip ZIP_STORED, 7z copy, stored tgz members); the
    rest use a fast level, or a slower, smaller one with `best` (compress jobs). Raises
    ValueError for an unknown `fmt` or a name that is absolute or contains "..".
    """
    members = []
    for name, path in entries:
        parts = name.split("/")
        if name.startswith("/") or ".." in parts or DRIVE.match(name):
            raise ValueError(f"archive names must be relative and stay inside: {name!r}")
        members.append(_Member(name, path, not path.is_dir() and is_packed(path)))
    for member in members:
        _readable(member.path)
    match fmt:
        case "zip":
            _pack_zip(members, out, best)
        case "tar":
            with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
                for member in members:
                    tf.add(member.path, arcname=member.name, recursive=False, filter=_anonymous)
        case "tgz":
            _pack_tgz(members, out, best)
        case "7z":
            _pack_7z(members, out, best)
        case _:
            raise ValueError(f"pack writes {', '.join(PACK_FORMATS)}, not {fmt!r}")


def _readable(path: Path) -> None:
    """Give a working copy the modes a saved file would have: readable by all (directories
    searchable), execute bits kept. A temporary file is created private (0600), and the
    archive's entries take their modes from the copies on disk."""
    mode = stat.S_IMODE(path.stat().st_mode)
    wanted = mode | (0o755 if path.is_dir() else 0o644)
    if mode & 0o100:
        wanted |= 0o111
    if wanted != mode:
        path.chmod(wanted)


def is_packed(path: Path) -> bool:
    """Whether the file's content is compressed already (a JPEG, a video, a zip, ...)."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        if sniff_bytes(head) in PACKED_KINDS:
            return True
        size = os.fstat(fh.fileno()).st_size
        if size < SAMPLE_FROM_BYTES:
            return False
        sample = bytearray()
        for quarter in (1, 2, 3):
            fh.seek(size * quarter // 4)
            sample += fh.read(SAMPLE_BYTES)
    return len(zlib.compress(sample, 1)) > PACKED_RATIO * len(sample)


def _pack_zip(members: list[_Member], out: Path, best: bool) -> None:
    level = ZIP_BEST_LEVEL if best else ZIP_LEVEL
    # strict_timestamps=False: tar and 7z entries may predate 1980, which zip cannot store.
    with zipfile.ZipFile(out, "w", allowZip64=True, strict_timestamps=False) as zf:
        for member in members:
            method = zipfile.ZIP_STORED if member.packed else zipfile.ZIP_DEFLATED
            zf.write(member.path, member.name, compress_type=method, compresslevel=level)


def _pack_tgz(members: list[_Member], out: Path, best: bool) -> None:
    level = GZIP_BEST_LEVEL if best else GZIP_LEVEL
    with out.open("wb") as raw:
        stream = _GzipMembers(raw, level)
        with tarfile.open(
            fileobj=cast(IO[bytes], stream), mode="w", format=tarfile.PAX_FORMAT
        ) as tf:
            for member in members:
                stream.set_level(0 if member.packed else level)
                tf.add(member.path, arcname=member.name, recursive=False, filter=_anonymous)
        stream.close()


def _pack_7z(members: list[_Member], out: Path, best: bool) -> None:
    # py7zr compresses a session's files with one filter chain, and an append adds a new
    # folder with its own: LZMA2 for the compressible entries, then copy for the rest.
    lzma2 = [{"id": py7zr.FILTER_LZMA2, "preset": SEVEN_Z_BEST_PRESET if best else SEVEN_Z_PRESET}]
    squeezed = [m for m in members if not m.packed]
    stored = [m for m in members if m.packed]
    sessions = [(lzma2, squeezed), (_COPY, stored)] if squeezed else [(_COPY, stored)]
    for mode, (filters, group) in zip(("w", "a"), sessions, strict=False):
        if mode == "a" and not group:
            break
        with py7zr.SevenZipFile(out, mode, filters=filters) as archive:
            for member in group:
                archive.write(member.path, member.name)


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The server's user and group are nobody's business; whole-second times keep it ustar."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    return info


class _GzipMembers:
    """A gzip file written as consecutive members, each at its own level (0 stores).

    Concatenated members are one gzip stream (RFC 1952 2.2); gzip, Python and libarchive
    read them as such, so a .tar.gz can store its JPEGs and compress its text.
    """

    def __init__(self, raw: BinaryIO, level: int) -> None:
        self._raw = raw
        self._level = level
        self._deflate: Any = None
        self._position = 0

    def set_level(self, level: int) -> None:
        if level != self._level:
            self._end_member()
            self._level = level

    def write(self, data: bytes) -> int:
        if self._deflate is None:
            self._deflate = zlib.compressobj(self._level, zlib.DEFLATED, 31)  # 31: gzip framing
        self._raw.write(self._deflate.compress(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._end_member()

    def _end_member(self) -> None:
        if self._deflate is not None:
            self._raw.write(self._deflate.flush())
            self._deflate = None


def compress_file(
    src: Path, out: Path, target: OutputFormat, *, packed: bool, best: bool, name: str
) -> None:
    """`src` as a single gz, bz2 or xz file (already-compressed data at the fastest setting)."""
    with src.open("rb") as fh:
        if target is OutputFormat.GZ:
            level = GZIP_PACKED_LEVEL if packed else GZIP_BEST_LEVEL if best else GZIP_LEVEL
            mtime = int(src.stat().st_mtime)
            with out.open("wb") as raw, gzip.GzipFile(
                filename=name, mode="wb", fileobj=raw, compresslevel=level, mtime=mtime
            ) as gz:  # the gzip header keeps the name: `gunzip -N` restores it
                shutil.copyfileobj(fh, gz, CHUNK)
        elif target is OutputFormat.BZ2:
            level = BZIP2_PACKED_LEVEL if packed else BZIP2_LEVEL
            with bz2.open(out, "wb", compresslevel=level) as bz:
                shutil.copyfileobj(fh, bz, CHUNK)
        elif packed:
            _write_stored_xz(fh, out)
        else:
            with lzma.open(out, "wb", preset=XZ_BEST_PRESET if best else XZ_PRESET) as xz:
                shutil.copyfileobj(fh, xz, CHUNK)


def _write_stored_xz(fh: BinaryIO, out: Path) -> None:
    """An .xz file whose LZMA2 data is uncompressed chunks, at copying speed.

    liblzma has no store mode: even preset 0 runs its encoder over every byte (~2 MB/s on
    JPEG data). The container is simple enough to write: stream header, one block of
    uncompressed LZMA2 chunks with a CRC32 check, index and footer (xz file format 1.1.0).
    """

    def crc(data: bytes) -> bytes:
        return zlib.crc32(data).to_bytes(4, "little")

    flags = b"\x00\x01"  # check type 1: CRC32
    # Block header: size/4-1, flags (one filter, no sizes), LZMA2 (0x21), 1 property byte
    # (dictionary 1 MiB), padding to 4 bytes, CRC32.
    block_header = bytes([0x02, 0x00, 0x21, 0x01, 16, 0, 0, 0])
    block_header += crc(block_header)
    check = 0
    size = 0
    data_size = 1  # the LZMA2 end marker
    with out.open("wb") as xz:
        xz.write(b"\xfd7zXZ\x00" + flags + crc(flags) + block_header)
        while chunk := fh.read(0x10000):  # an uncompressed LZMA2 chunk holds at most 64 KiB
            control = 0x01 if size == 0 else 0x02  # 1 also resets the dictionary
            xz.write(bytes([control]) + (len(chunk) - 1).to_bytes(2, "big") + chunk)
            check = zlib.crc32(chunk, check)
            size += len(chunk)
            data_size += 3 + len(chunk)
        xz.write(b"\x00" + b"\x00" * (-data_size % 4) + check.to_bytes(4, "little"))
        unpadded = len(block_header) + data_size + 4
        index = b"\x00" + _varint(1) + _varint(unpadded) + _varint(size)
        index += b"\x00" * (-len(index) % 4)
        index += crc(index)
        footer = (len(index) // 4 - 1).to_bytes(4, "little") + flags
        xz.write(index + crc(footer) + footer + b"YZ")


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
