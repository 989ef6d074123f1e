"""Archives: zip tar gz bz2 xz 7z rar in; zip tar tgz 7z gz bz2 xz (and rar) out.

- Any single file packs into zip, tar, tgz or 7z (one entry named after the upload) or is
  compressed into gz, bz2 or xz.
- An archive re-packs into zip, tar, tgz or 7z with the same entries. A gz, bz2 or xz source
  holding a tar is a tarball whose entries are re-packed; holding anything else, that file is
  the one entry. Into its own format (a compress job) it re-packs at a better ratio and the
  original is kept when that is not smaller.
- An archive into gz, bz2 or xz: a gz, bz2 or xz source is decompressed and compressed again
  (.tar.gz -> .tar.xz); zip, tar, 7z and rar sources are compressed as one file (tar -> xz
  gives a .tar.xz), their entries untouched.
- An archive into a media format: every entry the registry can convert to it is converted and
  the results come back as a zip; the rest are skipped and named in the notes.
- RAR output needs the proprietary `rar` program (CONVERTLY_RAR_COMMAND); RAR input is read by
  rarfile through `unar`.

Already-compressed data (sniffed from its content, never from its name) is stored rather than
squeezed again: LZMA spends seconds per megabyte of JPEG to save nothing. Entries read from
an archive are written through an Extraction (extraction.py), which holds them to the limits.
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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

import py7zr
import py7zr.exceptions
import py7zr.io

from convertly.converters.base import Limits, ProgressFn, no_progress
from convertly.converters.extraction import (
    CHUNK,
    DRIVE,
    LISTED_NAMES,
    Extraction,
    count,
    names,
)
from convertly.converters.process import run
from convertly.converters.registry import Registry
from convertly.converters.unpacking import base_name, extract, guarded, inner_name, open_stream
from convertly.errors import (
    ConversionError,
    ConvertlyError,
    UnsupportedConversionError,
)
from convertly.models import (
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    SourceInfo,
    extension_for,
    mime_for,
)
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes

ARCHIVE_KINDS = (
    Kind.ZIP, Kind.TAR, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.SEVEN_Z, Kind.RAR,
)  # fmt: skip
CONTAINER_FORMATS = (OutputFormat.ZIP, OutputFormat.TAR, OutputFormat.TGZ, OutputFormat.SEVEN_Z)
STREAM_FORMATS = (OutputFormat.GZ, OutputFormat.BZ2, OutputFormat.XZ)
ARCHIVE_FORMATS = (*CONTAINER_FORMATS, *STREAM_FORMATS, OutputFormat.RAR)
MEDIA_FORMATS = tuple(f for f in OutputFormat if f not in ARCHIVE_FORMATS)
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

_STREAM_KINDS = {Kind.GZIP: OutputFormat.GZ, Kind.BZIP2: OutputFormat.BZ2, Kind.XZ: OutputFormat.XZ}
_RAR_SECONDS = 60
_RAR_BYTES_PER_SECOND = 1_000_000


# -- packing ---------------------------------------------------------------------------------


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


def _compress_file(
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


# -- the converter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    src: Path
    kind: Kind
    spec: FileSpec
    target: OutputFormat
    workdir: Path
    limits: Limits

    @property
    def out(self) -> Path:
        return self.workdir / f"output.{extension_for(self.target)}"

    @property
    def keeps_format(self) -> bool:
        """Into its own format: a compress job, re-packed at a better ratio."""
        return self.target.value == self.kind.own_format

    def extract(self) -> Extraction:
        return extract(self.src, self.kind, self.spec.filename, self.workdir / "entries",
                        self.limits)

    def result(self, path: Path, fmt: str, notes: Sequence[str]) -> ConvertedFile:
        return ConvertedFile(
            path=str(path), format=fmt, mime_type=mime_for(fmt), notes=tuple(notes)
        )


class ArchiveConverter:
    """Packs, re-packs, compresses and unpacks archives (see the module docstring).

    It converts an archive's entries into media formats through `registry`, the registry it
    is registered in.
    """

    name = "archive"

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def convert(
        self,
        src: Path,
        source: SourceInfo,
        spec: FileSpec,
        workdir: Path,
        limits: Limits,
        progress: ProgressFn = no_progress,
    ) -> ConvertedFile:
        kind = Kind(source.kind)
        task = _Task(src, kind, spec, _target_of(kind, spec), workdir, limits)
        if task.target is OutputFormat.RAR:
            return _to_rar(task)
        if kind not in ARCHIVE_KINDS:
            return _from_single_file(task)
        if task.target in MEDIA_FORMATS:
            return self._convert_entries(task, progress)
        if task.target in STREAM_FORMATS:
            return _to_stream(task)
        return _repack(task, progress)

    def _convert_entries(self, task: _Task, progress: ProgressFn) -> ConvertedFile:
        """Every entry the registry converts to the target, returned together as a zip."""
        extraction = task.extract()
        target = task.target
        files = extraction.files()
        outputs: list[tuple[str, Path]] = []
        held: Counter[str] = Counter()
        skipped: list[str] = []
        nested: list[str] = []
        failed: list[str] = []
        entry_notes: list[str] = []
        for number, entry in enumerate(files):
            with entry.path.open("rb") as fh:
                kind = sniff_bytes(fh.read(HEAD_BYTES))
            held[kind.label if kind else "unrecognised"] += 1
            if kind in ARCHIVE_KINDS:
                nested.append(entry.name)
                continue
            if kind is None:
                skipped.append(entry.name)
                continue
            try:
                converter = self._registry.find(kind, target)
            except UnsupportedConversionError:
                skipped.append(entry.name)
                continue
            workdir = task.workdir / "converted" / str(number)
            workdir.mkdir(parents=True)
            source = SourceInfo(kind=kind.value, family=kind.family, mime_type=kind.mime_type,
                                size=entry.path.stat().st_size)
            spec = replace(task.spec, filename=PurePosixPath(entry.name).name,
                           job_type=JobType.CONVERT)
            try:
                done = converter.convert(entry.path, source, spec, workdir, task.limits,
                                         _share(progress, number, len(files)))
            except ConvertlyError as exc:
                failed.append(f"{entry.name} ({exc.message})")
                continue
            outputs.append((_renamed(entry.name, done.format, outputs), Path(done.path)))
            entry_notes.extend(f"{entry.name}: {note}" for note in done.notes)
        if not outputs:
            raise _nothing_converted(task, held, failed)
        notes = [f"Converted {count(len(outputs), 'file')} of {len(files)} to {target.value}; "
                 "they come back together in a zip."]
        if skipped:
            notes.append(f"Skipped {count(len(skipped), 'file')} that cannot become "
                         f"{target.value}: {names(skipped)}.")
        if nested:
            notes.append(f"Archives inside the archive are not opened: {names(nested)}.")
        if failed:
            notes.append(f"Could not convert {names(failed)}.")
        notes += extraction.notes() + entry_notes[:LISTED_NAMES]
        out = task.workdir / "output.zip"
        pack(outputs, out, "zip")
        return task.result(out, OutputFormat.ZIP.value, notes)


def register(registry: Registry) -> None:
    """Any kind into every archive format; archives also into every media format."""
    converter = ArchiveConverter(registry)
    registry.register(converter, [k for k in Kind if k not in ARCHIVE_KINDS], ARCHIVE_FORMATS)
    registry.register(converter, ARCHIVE_KINDS, (*ARCHIVE_FORMATS, *MEDIA_FORMATS))


def _target_of(kind: Kind, spec: FileSpec) -> OutputFormat:
    if spec.format is not None:
        return spec.format
    if spec.job_type is JobType.COMPRESS and kind in ARCHIVE_KINDS:
        return OutputFormat(kind.own_format)
    raise UnsupportedConversionError(
        f"Choose an archive format ({', '.join(ARCHIVE_FORMATS)}) to pack this file into."
    )


def _from_single_file(task: _Task) -> ConvertedFile:
    name = base_name(task.spec.filename)
    packed = is_packed(task.src)
    if task.target in CONTAINER_FORMATS:
        pack([(name, task.src)], task.out, task.target.value)
        how = "stored without recompression"
    else:
        _compress_file(task.src, task.out, task.target, packed=packed, best=False, name=name)
        how = ("stored in the xz container without recompression"
               if task.target is OutputFormat.XZ else "compressed at the fastest level")
    notes = [f"The content is already compressed ({task.kind.label}), so it was {how}."]
    return task.result(task.out, task.target.value, notes if packed else [])


def _repack(task: _Task, progress: ProgressFn) -> ConvertedFile:
    extraction = task.extract()
    progress(0.5)
    pack(extraction.listing(), task.out, task.target.value, best=task.keeps_format)
    notes = extraction.notes()
    if task.keeps_format:
        notes = _keep_smaller(task, notes)
    return task.result(task.out, task.target.value, notes)


def _to_stream(task: _Task) -> ConvertedFile:
    """Into gz, bz2 or xz: a compressed stream changes compressor, other archives are wrapped."""
    name = base_name(task.spec.filename)
    if task.kind not in _STREAM_KINDS:
        packed = is_packed(task.src)
        _compress_file(task.src, task.out, task.target, packed=packed, best=False, name=name)
        inner = extension_for(task.kind.own_format)
        notes = [f"The {task.kind.label} archive was compressed as one file (a "
                 f".{inner}.{task.target.value}); its entries are unchanged."]
        return task.result(task.out, task.target.value, notes)
    extraction = Extraction(task.workdir / "entries", task.limits, task.src.stat().st_size)
    entry_name = inner_name(task.spec.filename, task.kind)
    with open_stream(task.src, task.kind) as stream:
        extraction.file(entry_name, guarded(stream.read, task.kind.label))
    data = extraction.files()[0].path
    packed = is_packed(data)
    if task.keeps_format and packed:
        shutil.copyfile(task.src, task.out)
        notes = ["The compressed data is itself already compressed, so the original was kept."]
        return task.result(task.out, task.target.value, notes)
    _compress_file(data, task.out, task.target, packed=packed, best=task.keeps_format,
                   name=entry_name)
    if task.keeps_format:
        return task.result(task.out, task.target.value, _keep_smaller(task, []))
    notes = [f"Decompressed from {task.kind.own_format} and compressed again as "
             f"{task.target.value}."]
    return task.result(task.out, task.target.value, notes)


def _to_rar(task: _Task) -> ConvertedFile:
    command = task.limits.rar_command
    if not command:
        raise UnsupportedConversionError(
            "Creating RAR archives needs the proprietary `rar` program, which this server does "
            "not have. Choose zip, 7z, tgz or tar instead, or ask the operator to install rar "
            "and point CONVERTLY_RAR_COMMAND to it."
        )
    notes: list[str] = []
    if task.kind in ARCHIVE_KINDS:
        extraction = task.extract()
        stage = extraction.root
        notes = extraction.notes()
    else:
        stage = task.workdir / "stage"
        stage.mkdir()
        try:
            os.link(task.src, stage / base_name(task.spec.filename))
        except OSError:
            shutil.copyfile(task.src, stage / base_name(task.spec.filename))
    size = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file())
    # Run inside the staging directory so entry names are relative; "*" is rar's own
    # wildcard (it matches dot files and, with -r, everything below).
    level = "-m5" if task.keeps_format else "-m3"
    run([command, "a", "-idq", "-r", "-y", level, "--", task.out.resolve(), "*"],
        timeout=_RAR_SECONDS + size / _RAR_BYTES_PER_SECOND, cwd=stage)
    if not task.out.is_file():
        raise ConversionError("rar finished without writing the archive.")
    if task.keeps_format:
        notes = _keep_smaller(task, notes)
    return task.result(task.out, OutputFormat.RAR.value, notes)


def _keep_smaller(task: _Task, notes: list[str]) -> list[str]:
    """A compress job never hands back a larger file: keep the original when it is smaller."""
    if task.out.stat().st_size < task.src.stat().st_size:
        return notes
    shutil.copyfile(task.src, task.out)
    note = "Re-packing did not make the archive smaller, so the original was kept."
    if task.kind is Kind.TAR:
        note += " TAR does not compress; convert to tgz, 7z or xz for a smaller file."
    return [note]


def _share(progress: ProgressFn, number: int, total: int) -> ProgressFn:
    return lambda fraction: progress((number + fraction) / total)


def _renamed(name: str, fmt: str, taken: list[tuple[str, Path]]) -> str:
    """The entry's path with the new format's extension, unique among `taken`."""
    path = PurePosixPath(name)
    stem = path.stem or "file"
    used = {existing for existing, _ in taken}
    candidate = str(path.with_name(f"{stem}.{extension_for(fmt)}"))
    copy = 2
    while candidate in used:
        candidate = str(path.with_name(f"{stem} ({copy}).{extension_for(fmt)}"))
        copy += 1
    return candidate


# -- errors and wording ----------------------------------------------------------------------


def _nothing_converted(task: _Task, held: Counter[str], failed: list[str]) -> ConvertlyError:
    target = task.target.value
    if failed:
        return ConversionError(f"No file in the archive could be converted to {target}: "
                               f"{names(failed)}.")
    if not held:
        return UnsupportedConversionError(
            f"The {task.kind.label} archive holds no files to convert to {target}."
        )
    holds = ", ".join(f"{number} {label}" for label, number in held.most_common())
    return UnsupportedConversionError(
        f"The {task.kind.label} archive holds {holds} ({count(held.total(), 'file')}); none "
        f"of them converts to {target}. Archives inside an archive are not opened."
    )
