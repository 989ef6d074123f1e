"""Archives: zip tar gz bz2 xz 7z rar in; zip tar tgz 7z gz bz2 xz (and rar) out.

- Any single file packs into zip, tar, tgz or 7z (one entry named after the upload) or is
  compressed into gz, bz2 or xz.
- An archive re-packs into zip, tar, tgz or 7z with the same entries. A gz, bz2 or xz source
  holding a tar is a tarball whose entries are re-packed; holding anything else, that file is
  the one entry. Into its own format (a compress job) it re-packs at a better ratio. The
  result is always rebuilt from the extracted entries, whatever the sizes: the archive as
  sent is never handed back (it may hold links, devices, absolute or hostile names, which
  the extraction drops or neutralises).
- An archive into gz, bz2 or xz: a gz, bz2 or xz source is decompressed and compressed again
  (.tar.gz -> .tar.xz); zip, tar, 7z and rar sources are compressed as one file (tar -> xz
  gives a .tar.xz), their entries untouched.
- An archive into a media format: every entry the registry can convert to it is converted and
  the results come back as a zip; the rest are skipped and named in the notes.
- RAR output needs the proprietary `rar` program (CONVERTLY_RAR_COMMAND); RAR input is read by
  rarfile through `unar`.

This module plans each conversion and registers the converter. Archives are written by
packing.py and read by unpacking.py into an Extraction (extraction.py), which holds what is
written to the limits.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from convertly.converters.archive.extraction import LISTED_NAMES, Extraction, count, names
from convertly.converters.archive.packing import compress_file, is_packed, pack
from convertly.converters.archive.unpacking import (
    base_name,
    extract,
    guarded,
    inner_name,
    open_stream,
)
from convertly.converters.base import Limits, ProgressFn, Queue, no_progress, target_of
from convertly.converters.media import AUDIO_TARGETS, VIDEO_TARGETS
from convertly.converters.process import run
from convertly.converters.registry import Registry
from convertly.errors import ConversionError, ConvertlyError, UnsupportedConversionError
from convertly.models import (
    ConvertedFile,
    FileSpec,
    JobType,
    OutputFormat,
    SourceInfo,
    extension_for,
    mime_for,
)
from convertly.sniff import HEAD_BYTES, Kind, known_format, sniff_bytes

ARCHIVE_KINDS = (
    Kind.ZIP, Kind.TAR, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.SEVEN_Z, Kind.RAR,
)  # fmt: skip
CONTAINER_FORMATS = (OutputFormat.ZIP, OutputFormat.TAR, OutputFormat.TGZ, OutputFormat.SEVEN_Z)
STREAM_FORMATS = (OutputFormat.GZ, OutputFormat.BZ2, OutputFormat.XZ)
ARCHIVE_FORMATS = (*CONTAINER_FORMATS, *STREAM_FORMATS, OutputFormat.RAR)
MEDIA_FORMATS = tuple(f for f in OutputFormat if f not in ARCHIVE_FORMATS)

# What only ffmpeg writes: an archive's entries become these on the media workers.
FFMPEG_TARGETS = frozenset((*VIDEO_TARGETS, *AUDIO_TARGETS))

_STREAM_KINDS = {Kind.GZIP: OutputFormat.GZ, Kind.BZIP2: OutputFormat.BZ2, Kind.XZ: OutputFormat.XZ}
_RAR_SECONDS = 60
_RAR_BYTES_PER_SECOND = 1_000_000


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

    def queue(self, source: Kind, target: OutputFormat) -> Queue:
        """Audio and video go to the media workers, into and out of archives too; the rest
        to the archive workers."""
        if source.family in ("audio", "video") or target in FFMPEG_TARGETS:
            return Queue.MEDIA
        return Queue.ARCHIVE

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
        task = _Task(src, kind, spec, target_of(spec), workdir, limits)
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
                head = fh.read(HEAD_BYTES)
            kind = sniff_bytes(head)
            held[kind.label if kind else known_format(head) or ""] += 1
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


def _from_single_file(task: _Task) -> ConvertedFile:
    name = base_name(task.spec.filename)
    packed = is_packed(task.src)
    if task.target in CONTAINER_FORMATS:
        pack([(name, task.src)], task.out, task.target.value)
        how = "stored without recompression"
    else:
        compress_file(task.src, task.out, task.target, packed=packed, best=False, name=name)
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
        notes = _not_smaller(task, notes)
    return task.result(task.out, task.target.value, notes)


def _to_stream(task: _Task) -> ConvertedFile:
    """Into gz, bz2 or xz: a compressed stream changes compressor, other archives are wrapped.
    A tarball inside a stream is rebuilt from its checked entries, not passed through."""
    name = base_name(task.spec.filename)
    if task.kind not in _STREAM_KINDS:
        packed = is_packed(task.src)
        compress_file(task.src, task.out, task.target, packed=packed, best=False, name=name)
        inner = extension_for(task.kind.own_format)
        return task.result(task.out, task.target.value, [
            f"The {task.kind.label} archive was compressed as one file (a "
            f".{inner}.{task.target.value}); its entries are unchanged."])
    entry_name = inner_name(task.spec.filename, task.kind)
    with open_stream(task.src, task.kind) as stream:
        head = guarded(stream.read, task.kind.label)(HEAD_BYTES)
    notes: list[str] = []
    if sniff_bytes(head) is Kind.TAR:
        extraction = task.extract()
        data = task.workdir / "rebuilt.tar"
        pack(extraction.listing(), data, "tar")
        packed = False
        notes = extraction.notes()
    else:
        single = Extraction(task.workdir / "entries", task.limits, task.src.stat().st_size)
        with open_stream(task.src, task.kind) as stream:
            single.file(entry_name, guarded(stream.read, task.kind.label))
        data = single.files()[0].path
        packed = is_packed(data)
    compress_file(data, task.out, task.target, packed=packed, best=task.keeps_format,
                  name=entry_name)
    if task.keeps_format:
        if packed:
            notes.insert(0, "The compressed data is itself already compressed, so it was "
                            "stored at the fastest level.")
        return task.result(task.out, task.target.value, _not_smaller(task, notes))
    notes.insert(0, f"Decompressed from {task.kind.own_format} and compressed again as "
                    f"{task.target.value}.")
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
        notes = _not_smaller(task, notes)
    return task.result(task.out, OutputFormat.RAR.value, notes)


def _not_smaller(task: _Task, notes: list[str]) -> list[str]:
    """Say so when re-packing into its own format did not make the archive smaller. The
    rebuilt archive is handed back all the same: the original as sent may hold what the
    extraction dropped or neutralised."""
    if task.out.stat().st_size < task.src.stat().st_size:
        return notes
    note = ("Re-packing did not make the archive smaller; it was rebuilt from its checked "
            "entries all the same (an archive is never handed back as it was sent).")
    if task.kind is Kind.TAR:
        note += " TAR does not compress; convert to tgz, 7z or xz for a smaller file."
    return [*notes, note]


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
    kinds = [count(number, f"{label} file" if label else "file of unrecognised content")
             for label, number in held.most_common()]
    holds = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
    nested = " (archives inside an archive are not opened)" if held.keys() & _ARCHIVE_LABELS else ""
    return UnsupportedConversionError(
        f"The {task.kind.label} archive holds {holds}, and none of them can be converted to "
        f"{target}{nested}. Send an archive of images, audio, video or PDFs, or ask for an "
        "archive format (zip, 7z, tar, gz, bz2, xz) to repack it."
    )


_ARCHIVE_LABELS = frozenset(kind.label for kind in ARCHIVE_KINDS)
