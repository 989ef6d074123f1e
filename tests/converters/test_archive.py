"""Archive converter: packing, re-packing, compressing, unpacking to media, limits, safety.

Inputs are built here with zipfile, tarfile, gzip, bz2, lzma and py7zr; the RAR inputs come
from rarfile's own test suite (data/README.md). Every output is opened and its entry names and
bytes compared with what went in.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import py7zr
import py7zr.io
import pytest
import rarfile
from PIL import Image

from convertly.converters import image
from convertly.converters.archive import converter as archive
from convertly.converters.archive import packing
from convertly.converters.archive.packing import pack
from convertly.converters.registry import Registry
from convertly.errors import (
    ArchiveTooLargeError,
    ConversionError,
    CorruptFileError,
    EncryptedFileError,
    UnsupportedConversionError,
)
from convertly.models import ConvertedFile, FileSpec, JobType, OutputFormat
from convertly.sniff import Kind, sniff_file
from tests.converters.conftest import BLUE, RED, FakeLimits, noisy, quadrants

DATA = Path(__file__).parent / "data"
CONTAINERS = ("zip", "tar", "tgz", "7z")
TARBALLS = {"tar": "w", "tgz": "w:gz", "tbz2": "w:bz2", "txz": "w:xz"}
# What rar3-subdirs.rar holds (names as its README lists them), besides its folders.
RAR_SUBDIRS = ("sub/dir1/file1.txt", "sub/dir2/file2.txt", "sub/with space/long fn.txt",
               "sub/üȵĩöḋè/file.txt")  # fmt: skip
Files = dict[str, bytes]


def image_bytes(colour: tuple[int, int, int], fmt: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def payload() -> Files:
    """A little of everything: an image in a nested folder, text, an empty file."""
    return {
        "photos/red.png": image_bytes(RED, "PNG"),
        "photos/deep/blue.jpg": image_bytes(BLUE, "JPEG"),
        "notes/readme.txt": b"Plain text compresses well.\n" * 200,
        "empty.txt": b"",
    }


@pytest.fixture
def registry() -> Registry:
    """The image converters and this one, as the service's registry would hold them."""
    registry = Registry()
    image.register(registry)
    archive.register(registry)
    return registry


def convert(
    registry: Registry,
    src: Path,
    target: OutputFormat | None,
    workdir: Path,
    *,
    filename: str | None = None,
    limits: FakeLimits | None = None,
    job_type: JobType = JobType.CONVERT,
) -> ConvertedFile:
    source = sniff_file(src)
    spec = FileSpec(index=0, filename=filename or src.name, format=target, job_type=job_type)
    workdir.mkdir(parents=True, exist_ok=True)
    converter, spec = registry.plan(Kind(source.kind), spec)
    return converter.convert(src, source, spec, workdir, limits or FakeLimits())


# -- writing inputs and reading outputs ------------------------------------------------------


def write_zip(path: Path, files: Files, method: int = zipfile.ZIP_DEFLATED, level: int = 6) -> Path:
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=level) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def write_tar(path: Path, files: Files, mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_7z(path: Path, files: Files, **options: object) -> Path:
    with py7zr.SevenZipFile(path, "w", **options) as archive_7z:  # type: ignore[arg-type]
        for name, data in files.items():
            archive_7z.writestr(data, name)
    return path


def write_source(directory: Path, fmt: str, files: Files) -> Path:
    path = directory / f"source.{fmt}"
    if fmt == "zip":
        return write_zip(path, files)
    if fmt == "7z":
        return write_7z(path, files)
    return write_tar(path, files, TARBALLS[fmt])


def read_entries(path: Path, fmt: str) -> Files:
    """The files (not folders) an archive holds, read with the format's own library."""
    if fmt == "zip":
        with zipfile.ZipFile(path) as zf:
            return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
    if fmt == "7z":
        # A file object: given a path, py7zr leaves threads' file handles open.
        with path.open("rb") as fh, py7zr.SevenZipFile(fh) as archive_7z:
            names = [f.filename for f in archive_7z.files if not f.is_directory]
            factory = py7zr.io.BytesIOFactory(1 << 30)
            archive_7z.extractall(factory=factory)
            return {name: factory.products[name].read() for name in names}
    with tarfile.open(path) as tf:
        return {m.name: extracted(tf, m) for m in tf if m.isreg()}


def extracted(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    data = tf.extractfile(member)
    assert data is not None
    return data.read()


def decompress(path: Path, fmt: str) -> bytes:
    return {"gz": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}[fmt](
        path.read_bytes()
    )


def rar_crcs(path: Path) -> dict[str, int]:
    """CRC32 of each file as the RAR headers record it (rarfile parses headers itself)."""
    with rarfile.RarFile(path) as rf:
        return {i.filename: i.CRC for i in rf.infolist() if i.is_file()}


def total_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


# -- pack ------------------------------------------------------------------------------------


def test_pack_stores_compressed_data_and_compresses_the_rest(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    noisy(200, 150).save(photo, quality=90)
    text = tmp_path / "notes.txt"
    text.write_bytes(b"compressible line of text\n" * 4000)
    folder = tmp_path / "folder"
    folder.mkdir()
    entries = [("a/photo.jpg", photo), ("a/notes.txt", text), ("a/empty-folder", folder)]
    want = {"a/photo.jpg": photo.read_bytes(), "a/notes.txt": text.read_bytes()}

    for fmt in CONTAINERS:
        out = tmp_path / f"out.{fmt}"
        pack(entries, out, fmt)
        assert read_entries(out, fmt) == want, fmt
        if fmt != "tar":  # the JPEG stored as is, the text squeezed to a fraction
            assert photo.stat().st_size < out.stat().st_size < photo.stat().st_size + 4096, fmt

    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert zf.getinfo("a/photo.jpg").compress_type == zipfile.ZIP_STORED
        assert zf.getinfo("a/notes.txt").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("a/empty-folder/").is_dir()
    with py7zr.SevenZipFile(tmp_path / "out.7z") as archive_7z:  # reads headers only
        assert {"LZMA2", "COPY"} <= set(archive_7z.archiveinfo().method_names)
    with tarfile.open(tmp_path / "out.tgz") as tf:
        assert tf.getmember("a/empty-folder").isdir()
        assert tf.getmember("a/photo.jpg").uname == ""  # the server's user stays out


def test_pack_gives_everyone_read_access_and_keeps_execute_bits(tmp_path: Path) -> None:
    """Working copies may be private (a temporary file is created 0600); the archive's
    entries are readable by all, as a file saved by any program would be."""
    private = tmp_path / "photo.webp"
    private.write_bytes(b"RIFF....WEBP")
    private.chmod(0o600)
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    folder = tmp_path / "folder"
    folder.mkdir(mode=0o700)
    entries = [("photo.webp", private), ("run.sh", script), ("folder", folder)]
    want = {"photo.webp": 0o644, "run.sh": 0o755, "folder": 0o755}
    for fmt in CONTAINERS:
        out = tmp_path / f"modes.{fmt}"
        pack(entries, out, fmt)
        if fmt == "zip":
            with zipfile.ZipFile(out) as zf:
                got = {i.filename.rstrip("/"): (i.external_attr >> 16) & 0o777
                       for i in zf.infolist()}
        elif fmt == "7z":
            with py7zr.SevenZipFile(out) as archive_7z:
                got = {f.filename: (f.posix_mode or 0) & 0o777 for f in archive_7z.files}
        else:
            with tarfile.open(out) as tf:
                got = {m.name: m.mode for m in tf.getmembers()}
        assert got == want, fmt


def test_pack_refuses_names_that_leave_the_archive(tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("a")
    for name in ("../a.txt", "/etc/a.txt", "C:/a.txt"):
        with pytest.raises(ValueError, match="relative"):
            pack([(name, src)], tmp_path / "out.zip", "zip")
    with pytest.raises(ValueError, match="zip, tar, tgz, 7z"):
        pack([("a.txt", src)], tmp_path / "out.rar", "rar")


def test_large_files_are_judged_by_a_sample(tmp_path: Path) -> None:
    random_data = tmp_path / "random.bin"
    random_data.write_bytes(os.urandom(2 * 1024 * 1024))
    text = tmp_path / "text.bin"
    text.write_bytes(b"0123456789 words words\n" * 100_000)
    small_random = tmp_path / "small.bin"
    small_random.write_bytes(os.urandom(1000))
    assert packing.is_packed(random_data)
    assert not packing.is_packed(text)
    assert not packing.is_packed(small_random)  # too small to be worth sampling


# -- registration ----------------------------------------------------------------------------


def test_every_kind_packs_and_only_archives_unpack_to_media(registry: Registry) -> None:
    for kind in Kind:
        for fmt in archive.ARCHIVE_FORMATS:
            assert registry.find(kind, fmt).name == "archive"
    for kind in archive.ARCHIVE_KINDS:
        for fmt in archive.MEDIA_FORMATS:
            assert registry.find(kind, fmt).name == "archive"
    assert registry.find(Kind.PNG, OutputFormat.WEBP).name == "image"
    with pytest.raises(ValueError, match="already handled"):
        archive.register(registry)


# -- a single file ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["zip", "tar", "tgz", "7z", "gz", "bz2", "xz"])
def test_single_file_into_each_archive_format(
    registry: Registry, tmp_path: Path, target: str
) -> None:
    photo = tmp_path / "upload"
    noisy(120, 90).save(photo, format="JPEG", quality=90)
    out = convert(registry, photo, OutputFormat(target), tmp_path / "work",
                  filename="albums/Holiday photo.jpg")
    path = Path(out.path)
    assert out.format == target
    if target in CONTAINERS:
        assert read_entries(path, target) == {"Holiday photo.jpg": photo.read_bytes()}
        assert "stored without recompression" in out.notes[0]
    else:
        assert decompress(path, target) == photo.read_bytes()
        assert "already compressed (JPEG)" in out.notes[0]
    if target == "gz":
        with gzip.open(path) as gz:
            assert gz.read(1)
        assert b"Holiday photo.jpg\x00" in path.read_bytes()[:40]  # gzip's FNAME header


@pytest.mark.parametrize("target", ["gz", "bz2", "xz"])
def test_compressible_single_file_is_compressed(
    registry: Registry, tmp_path: Path, target: str
) -> None:
    bitmap = tmp_path / "scan.bmp"
    quadrants(300, 200).save(bitmap)
    out = convert(registry, bitmap, OutputFormat(target), tmp_path / "work")
    assert decompress(Path(out.path), target) == bitmap.read_bytes()
    assert Path(out.path).stat().st_size < bitmap.stat().st_size / 20
    assert out.notes == ()


def test_stored_xz_is_a_valid_xz_file(tmp_path: Path) -> None:
    for size in (0, 1, 65_536, 65_537, 200_003):
        data = os.urandom(size)
        src = tmp_path / f"{size}.bin"
        src.write_bytes(data)
        out = tmp_path / f"{size}.xz"
        with src.open("rb") as fh:
            packing._write_stored_xz(fh, out)
        assert lzma.decompress(out.read_bytes(), format=lzma.FORMAT_XZ) == data
        assert out.stat().st_size < size + 96


# -- archive to archive ----------------------------------------------------------------------


@pytest.mark.parametrize("target", CONTAINERS)
@pytest.mark.parametrize("source", ["zip", "tar", "tgz", "tbz2", "txz", "7z"])
def test_archive_repacks_into_each_container(
    registry: Registry, tmp_path: Path, payload: Files, source: str, target: str
) -> None:
    src = write_source(tmp_path, source, payload)
    out = convert(registry, src, OutputFormat(target), tmp_path / "work")
    assert out.format == target
    assert read_entries(Path(out.path), target) == payload


@pytest.mark.parametrize("target", CONTAINERS)
def test_rar_repacks_into_each_container(registry: Registry, tmp_path: Path, target: str) -> None:
    crcs = rar_crcs(DATA / "rar3-subdirs.rar") | rar_crcs(DATA / "rar5-crc.rar")
    got: Files = {}
    for name in ("rar3-subdirs.rar", "rar5-crc.rar"):  # stored; compressed, read through unar
        out = convert(registry, DATA / name, OutputFormat(target), tmp_path / name)
        got |= read_entries(Path(out.path), target)
    assert set(got) == {*RAR_SUBDIRS, "stest1.txt", "stest2.txt"}
    assert {name: zlib.crc32(data) for name, data in got.items()} == crcs
    assert len(got["stest1.txt"]) == 2048


def test_rar_keeps_empty_folders(registry: Registry, tmp_path: Path) -> None:
    out = convert(registry, DATA / "rar3-subdirs.rar", OutputFormat.ZIP, tmp_path / "work")
    with zipfile.ZipFile(out.path) as zf:
        assert "sub/empty/" in zf.namelist()


def test_compressed_plain_file_is_the_one_entry(registry: Registry, tmp_path: Path) -> None:
    data = b"id,value\n" + b"1,2\n" * 1000
    src = tmp_path / "upload"
    src.write_bytes(gzip.compress(data))
    out = convert(registry, src, OutputFormat.ZIP, tmp_path / "work", filename="report.csv.gz")
    assert read_entries(Path(out.path), "zip") == {"report.csv": data}
    src.write_bytes(lzma.compress(data))
    out = convert(registry, src, OutputFormat.SEVEN_Z, tmp_path / "w2", filename="export.txz")
    assert read_entries(Path(out.path), "7z") == {"export.tar": data}


def test_archive_into_a_compressed_stream(
    registry: Registry, tmp_path: Path, payload: Files
) -> None:
    tar = write_source(tmp_path, "tar", payload)
    out = convert(registry, tar, OutputFormat.XZ, tmp_path / "a", filename="bundle.tar")
    assert decompress(Path(out.path), "xz") == tar.read_bytes()  # a .tar.xz
    assert "compressed as one file (a .tar.xz)" in out.notes[0]

    zipped = write_source(tmp_path, "zip", payload)
    out = convert(registry, zipped, OutputFormat.GZ, tmp_path / "b", filename="bundle.zip")
    assert decompress(Path(out.path), "gz") == zipped.read_bytes()

    tgz = write_source(tmp_path, "tgz", payload)  # .tar.gz -> .tar.xz: decompressed first
    out = convert(registry, tgz, OutputFormat.XZ, tmp_path / "c", filename="bundle.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(decompress(Path(out.path), "xz")), mode="r:") as tf:
        assert {m.name: extracted(tf, m) for m in tf if m.isreg()} == payload
    assert "Decompressed from gz" in out.notes[0]


# -- compress: archive into its own format ---------------------------------------------------


def test_compress_repacks_smaller(registry: Registry, tmp_path: Path, payload: Files) -> None:
    stored = write_zip(tmp_path / "stored.zip", payload, zipfile.ZIP_STORED)
    out = convert(registry, stored, None, tmp_path / "a", job_type=JobType.COMPRESS)
    assert out.format == "zip"
    assert Path(out.path).stat().st_size < stored.stat().st_size * 0.6
    assert read_entries(Path(out.path), "zip") == payload

    copied = write_7z(tmp_path / "copied.7z", payload, filters=[{"id": py7zr.FILTER_COPY}])
    out = convert(registry, copied, None, tmp_path / "b", job_type=JobType.COMPRESS)
    assert Path(out.path).stat().st_size < copied.stat().st_size * 0.6
    assert read_entries(Path(out.path), "7z") == payload

    text = b"lines of a log file, again and again\n" * 2000
    fast = tmp_path / "fast.gz"
    fast.write_bytes(gzip.compress(text, compresslevel=1))
    out = convert(registry, fast, None, tmp_path / "c", job_type=JobType.COMPRESS)
    assert Path(out.path).stat().st_size < fast.stat().st_size
    assert decompress(Path(out.path), "gz") == text


def test_compress_rebuilds_an_archive_it_cannot_make_smaller(
    registry: Registry, tmp_path: Path, payload: Files
) -> None:
    tight = write_zip(tmp_path / "tight.zip", payload, zipfile.ZIP_DEFLATED, 9)
    out = convert(registry, tight, None, tmp_path / "a", job_type=JobType.COMPRESS)
    assert Path(out.path).read_bytes() != tight.read_bytes()
    assert read_entries(Path(out.path), "zip") == payload
    assert "rebuilt from its checked entries" in out.notes[-1]

    tar = write_source(tmp_path, "tar", payload)
    out = convert(registry, tar, None, tmp_path / "b", job_type=JobType.COMPRESS)
    assert read_entries(Path(out.path), "tar") == payload
    assert "TAR does not compress" in out.notes[-1]

    photo = io.BytesIO()
    noisy(100, 100).save(photo, format="JPEG")
    wrapped = tmp_path / "photo.jpg.gz"
    wrapped.write_bytes(gzip.compress(photo.getvalue()))
    out = convert(registry, wrapped, None, tmp_path / "c", job_type=JobType.COMPRESS)
    assert decompress(Path(out.path), "gz") == photo.getvalue()
    assert "already compressed" in out.notes[0]


# -- archive into media formats --------------------------------------------------------------


def test_archive_of_images_converts_each_image(registry: Registry, tmp_path: Path) -> None:
    inner = write_zip(tmp_path / "inner.zip", {"x.txt": b"x"})
    src = write_zip(tmp_path / "album.zip", {
        "album/red.png": image_bytes(RED, "PNG"),
        "album/more/blue.png": image_bytes(BLUE, "PNG", (20, 10)),
        "album/notes.txt": b"not an image",
        "album/inner.zip": inner.read_bytes(),
    })  # fmt: skip
    out = convert(registry, src, OutputFormat.WEBP, tmp_path / "work")
    assert out.format == "zip"
    with zipfile.ZipFile(out.path) as zf:
        assert sorted(zf.namelist()) == ["album/more/blue.webp", "album/red.webp"]
        with Image.open(zf.open("album/red.webp")) as red:
            assert (red.format, red.size) == ("WEBP", (40, 30))
            pixel = red.convert("RGB").getpixel((5, 5))
            assert isinstance(pixel, tuple)
            assert max(abs(a - b) for a, b in zip(pixel, RED, strict=True)) < 12
        with Image.open(zf.open("album/more/blue.webp")) as blue:
            assert blue.size == (20, 10)
    notes = " ".join(out.notes)
    assert "Converted 2 files of 4 to webp" in notes
    assert "Skipped 1 file that cannot become webp: album/notes.txt" in notes
    assert "not opened: album/inner.zip" in notes


def test_entries_that_fail_are_listed(registry: Registry, tmp_path: Path) -> None:
    good = image_bytes(RED, "PNG")
    src = write_zip(tmp_path / "mixed.zip", {"good.png": good, "broken.png": good[:60]})
    out = convert(registry, src, OutputFormat.JPG, tmp_path / "work")
    with zipfile.ZipFile(out.path) as zf:
        assert zf.namelist() == ["good.jpg"]
    assert any("Could not convert broken.png" in note for note in out.notes)


def test_tarball_of_one_image_converts(registry: Registry, tmp_path: Path) -> None:
    src = write_tar(tmp_path / "one.tgz", {"one.png": image_bytes(RED, "PNG")}, "w:gz")
    out = convert(registry, src, OutputFormat.AVIF, tmp_path / "work")
    with zipfile.ZipFile(out.path) as zf, Image.open(zf.open("one.avif")) as converted:
        assert converted.size == (40, 30)


def test_nothing_convertible_names_what_the_archive_holds(
    registry: Registry, tmp_path: Path
) -> None:
    src = write_zip(tmp_path / "docs.zip", {"a.txt": b"a", "b.txt": b"b", "c.zip": b"PK\x05\x06"})
    with pytest.raises(UnsupportedConversionError) as caught:
        convert(registry, src, OutputFormat.PNG, tmp_path / "work")
    assert caught.value.message == (
        "The ZIP archive holds 2 text files and 1 ZIP file, and none of them can be converted "
        "to png (archives inside an archive are not opened). Send an archive of images, "
        "audio, video or PDFs, or ask for an archive format (zip, 7z, tar, gz, bz2, xz) to "
        "repack it.")
    broken = write_zip(tmp_path / "broken.zip", {"x.png": image_bytes(RED, "PNG")[:60]})
    with pytest.raises(ConversionError, match="No file in the archive could be converted"):
        convert(registry, broken, OutputFormat.PNG, tmp_path / "w2")


# -- RAR output ------------------------------------------------------------------------------


def test_rar_output_needs_the_rar_program(registry: Registry, tmp_path: Path) -> None:
    src = write_zip(tmp_path / "a.zip", {"a.txt": b"a"})
    with pytest.raises(UnsupportedConversionError) as caught:
        convert(registry, src, OutputFormat.RAR, tmp_path / "work")
    assert "proprietary `rar` program" in caught.value.message
    assert "CONVERTLY_RAR_COMMAND" in caught.value.message


FAKE_RAR = '''#!{python}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
files = {{str(p.relative_to(Path.cwd())): p.read_bytes().hex()
          for p in sorted(Path.cwd().rglob("*")) if p.is_file()}}
Path({record!r}).write_text(json.dumps({{"argv": args, "cwd": os.getcwd(), "files": files}}))
Path(args[args.index("--") + 1]).write_bytes(b"Rar!\\x1a\\x07\\x01\\x00 written by the stand-in")
'''


@pytest.mark.parametrize("source", ["zip", "jpeg"])
def test_rar_output_runs_the_configured_command(
    registry: Registry, tmp_path: Path, payload: Files, source: str
) -> None:
    """The real `rar` is proprietary and not installed, so a stand-in script records how it
    is called: this checks the command line and the files staged for it, not a RAR file."""
    record = tmp_path / "call.json"
    fake = tmp_path / "rar"
    fake.write_text(FAKE_RAR.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)
    if source == "zip":
        src, want = write_source(tmp_path, "zip", payload), payload
    else:
        src = tmp_path / "upload"
        src.write_bytes(image_bytes(RED, "JPEG"))
        want = {"photo.jpg": src.read_bytes()}
    out = convert(registry, src, OutputFormat.RAR, tmp_path / "work", filename="photo.jpg",
                  limits=FakeLimits(rar_command=str(fake)))

    assert out.format == "rar"
    assert Path(out.path).read_bytes().startswith(b"Rar!\x1a\x07")
    call = json.loads(record.read_text())
    assert call["argv"] == ["a", "-idq", "-r", "-y", "-m3", "--", str(Path(out.path).resolve()),
                            "*"]
    assert {name: bytes.fromhex(data) for name, data in call["files"].items()} == want


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["zip", "tar", "7z"])
def test_too_many_entries(registry: Registry, tmp_path: Path, source: str) -> None:
    src = write_source(tmp_path, source, {f"{n}.txt": b"x" for n in range(5)})
    with pytest.raises(ArchiveTooLargeError, match="more than 3 entries") as caught:
        convert(registry, src, OutputFormat.ZIP, tmp_path / "work",
                limits=FakeLimits(max_archive_entries=3))
    assert caught.value.detail == {"maxEntries": 3}


@pytest.mark.parametrize("source", ["gz", "zip", "tgz", "7z"])
def test_decompression_bomb_stops_at_the_limit(
    registry: Registry, tmp_path: Path, source: str
) -> None:
    zeros = b"\x00" * (16 * 1024 * 1024)  # each input is tens of KB
    if source == "gz":
        src = tmp_path / "zeros.gz"
        src.write_bytes(gzip.compress(zeros, 9))
    else:
        src = write_source(tmp_path, source, {"zeros.bin": zeros})
    limit = 1024 * 1024
    work = tmp_path / "work"
    for target in (OutputFormat.ZIP, OutputFormat.XZ):
        with pytest.raises(ArchiveTooLargeError, match="expands to more than 1,048,576 bytes"):
            convert(registry, src, target, work, limits=FakeLimits(max_extracted_bytes=limit))
        assert total_bytes(work) <= limit
        if source != "gz":
            break  # zip, tgz and 7z are compressed as one file into xz, not extracted


# -- safety ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil.txt", "ok/../../evil.txt", "C:/evil.txt", "..\\evil.txt"]
)
def test_traversal_is_refused(registry: Registry, tmp_path: Path, name: str) -> None:
    work = tmp_path / "deep" / "work"
    for fmt in ("zip", "tar"):
        src = write_source(tmp_path, fmt, {"fine.txt": b"ok", name: b"evil"})
        with pytest.raises(CorruptFileError, match="points outside the archive"):
            convert(registry, src, OutputFormat.ZIP, work)
    assert not list(tmp_path.rglob("evil.txt"))


def test_traversal_in_7z_is_refused(registry: Registry, tmp_path: Path) -> None:
    src = tmp_path / "evil.7z"
    with py7zr.SevenZipFile(src, "w") as archive_7z:
        archive_7z._writestr(b"evil", "../evil.txt")  # the public writestr refuses such names
    with pytest.raises(CorruptFileError, match="points outside the archive"):
        convert(registry, src, OutputFormat.ZIP, tmp_path / "work")
    assert not list(tmp_path.rglob("evil.txt"))


def test_absolute_names_become_relative(registry: Registry, tmp_path: Path) -> None:
    src = write_tar(tmp_path / "abs.tar", {"/etc/app.conf": b"key=value"})
    out = convert(registry, src, OutputFormat.ZIP, tmp_path / "work")
    assert read_entries(Path(out.path), "zip") == {"etc/app.conf": b"key=value"}
    assert "made relative: /etc/app.conf" in out.notes[0]
    assert not Path("/etc/app.conf").exists()


def test_links_and_special_files_are_skipped(registry: Registry, tmp_path: Path) -> None:
    src = tmp_path / "links.tar"
    with tarfile.open(src, "w") as tf:
        for name, kind, target in (("escape", tarfile.SYMTYPE, "/etc"),
                                   ("hard", tarfile.LNKTYPE, "/etc/passwd"),
                                   ("fifo", tarfile.FIFOTYPE, ""), ("tty", tarfile.CHRTYPE, "")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
        info = tarfile.TarInfo("escape/passwd")  # through the link, were it extracted
        info.size = 4
        tf.addfile(info, io.BytesIO(b"mine"))
    work = tmp_path / "work"
    out = convert(registry, src, OutputFormat.ZIP, work)
    assert read_entries(Path(out.path), "zip") == {"escape/passwd": b"mine"}
    assert "Skipped 4 entries that are links or special files" in out.notes[0]
    assert "escape, hard, fifo, tty" in out.notes[0]
    assert not [p for p in work.rglob("*") if p.is_symlink()]


def test_rar_symlink_traversal_stays_inside(registry: Registry, tmp_path: Path) -> None:
    work = tmp_path / "work"
    out = convert(registry, DATA / "rar5-evil-symlink-traversal.rar", OutputFormat.TAR, work)
    assert set(read_entries(Path(out.path), "tar")) == {"up/pwned.txt"}
    assert "links or special files" in out.notes[0]
    assert not [p for p in work.rglob("*") if p.is_symlink()]
    assert not list(tmp_path.glob("pwned.txt"))


def encrypted_zip(path: Path) -> Path:
    """A zip whose entries carry the 'encrypted' flag (zipfile cannot encrypt)."""
    data = bytearray(write_zip(path, {"secret.txt": b"secret"}).read_bytes())
    data[6] |= 1  # local header flags
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # central directory flags
    path.write_bytes(bytes(data))
    return path


def test_password_protected_archives_are_refused(registry: Registry, tmp_path: Path) -> None:
    sources = [
        encrypted_zip(tmp_path / "secret.zip"),
        write_7z(tmp_path / "secret.7z", {"a.txt": b"a"}, password="pw"),
        write_7z(tmp_path / "headers.7z", {"a.txt": b"a"}, password="pw", header_encryption=True),
        DATA / "rar5-psw.rar",
        DATA / "rar5-hpsw.rar",
    ]
    for number, src in enumerate(sources):
        with pytest.raises(EncryptedFileError, match="passwords are not supported") as caught:
            convert(registry, src, OutputFormat.TAR, tmp_path / str(number))
        assert caught.value.code == "ENCRYPTED_FILE", src.name


@pytest.mark.parametrize("source", ["zip", "tgz", "txz", "7z", "tar"])
def test_damaged_archives_are_corrupt(
    registry: Registry, tmp_path: Path, payload: Files, source: str
) -> None:
    src = write_source(tmp_path, source, payload | {"big.bin": os.urandom(20_000)})
    data = src.read_bytes()
    if source == "tar":
        src.write_bytes(data[:1024] + b"\xff" * 512 + data[1536:])  # the 2nd header garbled
    else:
        src.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CorruptFileError):
        convert(registry, src, OutputFormat.ZIP, tmp_path / "work")


def test_rar_output_is_listed_only_with_the_rar_program() -> None:
    from convertly.converters.builtin import default_registry

    with_rar = default_registry()
    without = default_registry((OutputFormat.RAR,))
    assert OutputFormat.RAR in with_rar.targets_for(Kind.PNG)
    assert OutputFormat.RAR not in without.targets_for(Kind.PNG)
    assert all(OutputFormat.RAR not in targets for targets in without.matrix().values())
    # Asked for anyway, its converter answers (and says what is missing).
    assert without.find(Kind.PNG, OutputFormat.RAR).name == with_rar.find(
        Kind.PNG, OutputFormat.RAR).name
