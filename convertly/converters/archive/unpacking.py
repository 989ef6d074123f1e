"""Reading archives: zip, tar, 7z, rar, and gz, bz2 or xz (a tarball's entries or the one file).

`extract` hands every entry to an Extraction (extraction.py) as it is read, so the limits stop
a bomb mid-entry and nothing is written outside the extraction directory. Damaged data is a
CorruptFileError, a password an EncryptedFileError. RAR input is read by rarfile through
`unar`.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, cast

import py7zr
import py7zr.exceptions
import py7zr.io
import rarfile

from convertly.converters.archive.extraction import Extraction, clean_name
from convertly.converters.base import Limits
from convertly.errors import (
    ConversionError,
    CorruptFileError,
    EncryptedFileError,
    UnsupportedMediaError,
)
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes

_ENCRYPTED_ZIP = 0x1
_STREAM_SUFFIXES = {
    Kind.GZIP: ((".tgz", ".tar"), (".gz", "")),
    Kind.BZIP2: ((".tbz2", ".tar"), (".tbz", ".tar"), (".bz2", "")),
    Kind.XZ: ((".txz", ".tar"), (".xz", "")),
}
# Errors a decompressor raises on damaged input (OSError: gzip.BadGzipFile, bz2's data errors).
_READ_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, zipfile.BadZipFile, tarfile.TarError)
_TAR_TAIL_BYTES = 64 * 1024  # more than tarfile reads ahead (one 10 KiB record)
# tarfile reads a pax or GNU long-name header whole into memory: real ones hold a few names.
MAX_TAR_HEADER_BYTES = 1024 * 1024


def guarded(read: Callable[[int], bytes], label: str) -> Callable[[int], bytes]:
    """`read`, with a decompressor's complaints about damaged data as CorruptFileError."""

    def checked(size: int) -> bytes:
        try:
            return read(size)
        except _READ_ERRORS as exc:
            raise _corrupt(label) from exc

    return checked


class _TarReader:
    """The file object tarfile reads: read errors become CorruptFileError, and the latest
    bytes stay at hand to check the block where tarfile stopped."""

    def __init__(self, raw: IO[bytes], label: str) -> None:
        self._read = guarded(raw.read, label)
        self._tail = b""
        self._position = 0

    def read(self, size: int) -> bytes:
        data = self._read(size)
        self._tail = (self._tail + data)[-_TAR_TAIL_BYTES:]
        self._position += len(data)
        return data

    def block(self, offset: int) -> bytes:
        start = offset - (self._position - len(self._tail))
        return self._tail[max(start, 0) : start + tarfile.BLOCKSIZE]


def extract(src: Path, kind: Kind, filename: str, root: Path, limits: Limits) -> Extraction:
    """`src`, an archive of `kind`, read entry by entry into an Extraction under `root`.

    `filename`, the upload's name, names the file a gz, bz2 or xz compresses (unless a tar).
    """
    extraction = Extraction(root, limits, src.stat().st_size)
    if kind is Kind.ZIP:
        _read_zip(src, extraction)
    elif kind is Kind.TAR:
        with src.open("rb") as fh:
            _read_tar(fh, "TAR", extraction)
    elif kind is Kind.SEVEN_Z:
        _read_7z(src, extraction)
    elif kind is Kind.RAR:
        _read_rar(src, extraction)
    else:
        _read_stream(src, kind, inner_name(filename, kind), extraction)
    return extraction


def _read_zip(src: Path, extraction: Extraction) -> None:
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _corrupt("ZIP") from exc
    with zf:
        infos = zf.infolist()
        extraction.expect(len(infos))
        if any(info.flag_bits & _ENCRYPTED_ZIP for info in infos):
            raise _encrypted("ZIP")
        for info in infos:
            clean_name(info.filename)  # refuse a traversal before writing anything
        for info in infos:
            file_type = stat.S_IFMT(info.external_attr >> 16)
            if info.is_dir():
                extraction.directory(info.filename)
            elif file_type not in (0, stat.S_IFREG):
                extraction.link(info.filename)
            else:
                try:
                    entry = zf.open(info)
                except NotImplementedError as exc:
                    raise UnsupportedMediaError(
                        f"The ZIP entry {info.filename!r} uses a compression method we cannot "
                        "read (deflate64, PPMd, ...); re-create the archive with deflate."
                    ) from exc
                except _READ_ERRORS as exc:
                    raise _corrupt("ZIP") from exc
                with entry:
                    extraction.file(info.filename, guarded(entry.read, "ZIP"), _zip_time(info))


def _zip_time(info: zipfile.ZipInfo) -> float | None:
    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar member whose pax or GNU long-name header is refused when it is large: tarfile
    reads such a header whole into memory, so a gzipped one of zeros is a memory bomb."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _LONG_HEADERS and self.size > MAX_TAR_HEADER_BYTES:
            raise CorruptFileError(
                f"The TAR archive has a {self.size:,}-byte extended header; headers over "
                f"{MAX_TAR_HEADER_BYTES:,} bytes are refused (they only hold names and "
                "attributes)."
            )
        member: tarfile.TarInfo = super()._proc_member(tf)  # type: ignore[misc]
        return member


_LONG_HEADERS = frozenset({
    tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
})  # fmt: skip


def _read_tar(raw: IO[bytes], label: str, extraction: Extraction) -> None:
    reader = _TarReader(raw, label)
    try:
        with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|",
                          tarinfo=_BoundedTarInfo) as tf:
            for member in tf:
                if member.isdir():
                    extraction.directory(member.name)
                elif member.isreg():
                    data = tf.extractfile(member)
                    assert data is not None  # regular members always have data
                    with data:
                        extraction.file(member.name, guarded(data.read, label), member.mtime)
                else:
                    extraction.link(member.name)
            # tarfile ends quietly at a garbled header; a complete tar ends with zero blocks.
            if any(reader.block(tf.offset)):
                raise _corrupt(label)
    except tarfile.TarError as exc:
        raise _corrupt(label) from exc


def _read_stream(src: Path, kind: Kind, inner: str, extraction: Extraction) -> None:
    """A gz, bz2 or xz file: a tarball's entries, or the one file it compresses."""
    label = kind.label
    with open_stream(src, kind) as stream:
        head = guarded(stream.read, label)(HEAD_BYTES)
    with open_stream(src, kind) as stream:
        if sniff_bytes(head) is Kind.TAR:
            _read_tar(stream, f"TAR inside the {label}", extraction)
        else:
            extraction.file(inner, guarded(stream.read, label))


def open_stream(src: Path, kind: Kind) -> IO[bytes]:
    if kind is Kind.GZIP:
        return cast(IO[bytes], gzip.open(src, "rb"))
    if kind is Kind.BZIP2:
        return bz2.open(src, "rb")
    return lzma.open(src, "rb")


class _SevenZipFactory(py7zr.io.WriterFactory):
    """Hands py7zr a counted sink per entry instead of letting it write files itself."""

    def __init__(self, extraction: Extraction, times: dict[str, float | None]) -> None:
        self._extraction = extraction
        self._times = times

    def create(self, filename: str) -> _SevenZipSink:
        return _SevenZipSink(self._extraction, filename, self._times.get(filename))


class _SevenZipSink(py7zr.io.Py7zIO):
    def __init__(self, extraction: Extraction, name: str, mtime: float | None) -> None:
        self._context = extraction.sink(name, mtime)
        self._sink = self._context.__enter__()
        self._size = 0

    def write(self, s: bytes | bytearray) -> int:
        self._size += len(s)
        return self._sink.write(bytes(s))

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self._context.__exit__(None, None, None)


def _read_7z(src: Path, extraction: Extraction) -> None:
    try:
        # A file object, not a path: py7zr then decompresses folders one after another
        # instead of in threads, so the byte limit stops it at once.
        with src.open("rb") as fh, py7zr.SevenZipFile(fh) as archive:
            if archive.needs_password():
                raise _encrypted("7z")
            files = list(archive.files)
            extraction.expect(len(files))
            targets = []
            times: dict[str, float | None] = {}
            for entry in files:
                name, _ = clean_name(entry.filename)
                if entry.is_directory:
                    extraction.directory(entry.filename)
                elif entry.is_symlink or entry.is_junction or entry.is_socket:
                    extraction.link(entry.filename)
                else:
                    targets.append(entry.filename)
                    written = entry.lastwritetime
                    times[name] = written.totimestamp() if written is not None else None
            if targets:
                archive.extract(targets=targets, factory=_SevenZipFactory(extraction, times))
    except py7zr.exceptions.PasswordRequired as exc:
        raise _encrypted("7z") from exc
    except py7zr.exceptions.UnsupportedCompressionMethodError as exc:
        raise UnsupportedMediaError(
            "The 7z archive uses a compression method we cannot read; re-create it with LZMA2."
        ) from exc
    except (py7zr.exceptions.ArchiveError, *_READ_ERRORS, KeyError, IndexError) as exc:
        raise _corrupt("7z") from exc


def _read_rar(src: Path, extraction: Extraction) -> None:
    # unar is the free tool that reads RAR through rarfile (NOTES.md); rarfile runs it itself,
    # one pipe per compressed entry, which is what lets the byte limit stop a bomb mid-entry.
    try:
        rarfile.tool_setup(unrar=False, unar=True, bsdtar=False, sevenzip=False, sevenzip2=False)
        with rarfile.RarFile(src) as rf:
            if rf.needs_password():
                raise _encrypted("RAR")
            infos = rf.infolist()
            extraction.expect(len(infos))
            if any(info.needs_password() for info in infos):
                raise _encrypted("RAR")
            for info in infos:
                clean_name(info.filename)
            for info in infos:
                if info.is_dir():
                    extraction.directory(info.filename)
                elif info.is_symlink() or getattr(info, "file_redir", None):
                    extraction.link(info.filename)
                else:
                    mtime = info.mtime.timestamp() if info.mtime else None
                    with rf.open(info) as entry:
                        extraction.file(info.filename, guarded(entry.read, "RAR"), mtime)
    except (rarfile.PasswordRequired, rarfile.RarWrongPassword) as exc:
        raise _encrypted("RAR") from exc
    except rarfile.NeedFirstVolume as exc:
        raise UnsupportedMediaError(
            "This is one part of a multi-volume RAR archive; send a single-volume archive."
        ) from exc
    except rarfile.RarCannotExec as exc:
        raise ConversionError(
            "This server cannot read RAR archives: `unar` is not installed (run `make setup`)."
        ) from exc
    except (rarfile.Error, *_READ_ERRORS) as exc:
        raise CorruptFileError(
            "The RAR archive could not be extracted: it is damaged, or uses a RAR feature our "
            "extractor (unar) does not support. Re-create it as zip or 7z."
        ) from exc


def inner_name(filename: str, kind: Kind) -> str:
    """The name of the file a gz, bz2 or xz upload compresses: its name minus the suffix."""
    name = base_name(filename)
    for suffix, replacement in _STREAM_SUFFIXES.get(kind, ()):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)] + replacement
    return name


def base_name(filename: str) -> str:
    """The last part of an upload's name, either slash a separator ("file" when empty)."""
    return PurePosixPath(filename.replace("\\", "/")).name or "file"


# -- errors ----------------------------------------------------------------------------------


def _encrypted(label: str) -> EncryptedFileError:
    return EncryptedFileError(
        f"The {label} archive is password-protected (encrypted) and passwords are not "
        "supported; send it again without a password."
    )


def _corrupt(label: str) -> CorruptFileError:
    return CorruptFileError(f"The {label} archive is damaged or truncated and cannot be read.")
