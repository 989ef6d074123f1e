"""An archive re-packed into its own format (zip -> zip, tar -> tar, 7z -> 7z, tgz -> gz, as a
compress job or a convert to the same format) is always rebuilt from its checked entries:
never handed back as sent, with no absolute or climbing names, no links and no devices, and
names holding control or bidirectional characters neutralised."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import uuid
import zipfile
from pathlib import Path

import py7zr
import pytest

from convertly.converters.builtin import default_registry
from convertly.errors import CorruptFileError
from convertly.models import ConvertedFile, FileSpec, JobType, OutputFormat
from convertly.sniff import Kind, sniff_file
from tests import images
from tests.converters.conftest import FakeLimits
from tests.hostile import corpus

MARKER = f"escaped-{uuid.uuid4().hex[:10]}"
PNG = images.png(16, 16)
REG = stat.S_IFREG | 0o644
LINK = stat.S_IFLNK | 0o777
OWN = {"zip": OutputFormat.ZIP, "tar": OutputFormat.TAR, "7z": OutputFormat.SEVEN_Z,
       "tgz": OutputFormat.GZ}


def _hostile() -> dict[str, tuple[str, bytes]]:
    """name -> (upload name, bytes): the traversal corpus's archives that are not refused
    outright, and a few more."""
    cases = {c.name.removesuffix("-to-zip"): c.files[0]
             for c in corpus.traversal(MARKER, PNG) if c.name.endswith("-to-zip")}
    tar_links = corpus._tar_raw([("passwd", tarfile.SYMTYPE, b"", "/etc/passwd"),
                                 ("shadow", tarfile.LNKTYPE, b"", "/etc/shadow"),
                                 ("/abs/a.png", tarfile.REGTYPE, PNG, ""),
                                 ("null", tarfile.CHRTYPE, b"", "")])
    cases["tgz-links"] = ("t.tar.gz", gzip.compress(tar_links))
    cases["zip-bidi-names"] = ("t.zip", corpus._zip_raw([
        ("invoice\u202egnp.exe", PNG, REG), ("bell\x07.png", PNG, REG),
        ("passwd", b"/etc/passwd", LINK)]))
    cases["tar-bidi-names"] = ("t.tar", corpus._tar_raw([
        ("dir\u2066/x\x1b[31m.png", tarfile.REGTYPE, PNG, ""),
        ("passwd", tarfile.SYMTYPE, b"", "/etc/passwd")]))
    return {k: v for k, v in cases.items() if not k.startswith("rar")}


HOSTILE = _hostile()


def _repack(tmp_path: Path, filename: str, data: bytes, *, compress: bool) -> ConvertedFile:
    workdir = tmp_path / "work"
    workdir.mkdir()
    src = workdir / "source"
    src.write_bytes(data)
    source = sniff_file(src)
    kind = Kind(source.kind)
    target = OutputFormat(kind.own_format)
    spec = FileSpec(index=0, filename=filename,
                    job_type=JobType.COMPRESS if compress else JobType.CONVERT,
                    format=target)  # a compress job's plan settles its own format
    converter = default_registry().find(kind, target)
    return converter.convert(src, source, spec, workdir, FakeLimits())


def _members(path: Path, fmt: str) -> list[tuple[str, str]]:
    """(name, what it is) of every entry, read with the format's own library."""
    if fmt == "zip":
        with zipfile.ZipFile(path) as zf:
            return [(i.filename, "dir" if i.is_dir() else
                     "file" if stat.S_IFMT(i.external_attr >> 16) in (0, stat.S_IFREG)
                     else "special") for i in zf.infolist()]
    if fmt == "7z":
        with path.open("rb") as fh, py7zr.SevenZipFile(fh) as archive:
            return [(f.filename, "dir" if f.is_directory else
                     "special" if f.is_symlink or f.is_junction or f.is_socket else "file")
                    for f in archive.files]
    raw = path.read_bytes()
    if fmt == "gz":
        raw = gzip.decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        return [(m.name, "dir" if m.isdir() else "file" if m.isreg() else "special")
                for m in tf]


@pytest.mark.parametrize("compress", [True, False], ids=["compress", "convert"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_archive_is_rebuilt_into_its_own_format(tmp_path: Path, name: str,
                                                          compress: bool) -> None:
    filename, data = HOSTILE[name]
    try:
        out = _repack(tmp_path, filename, data, compress=compress)
    except CorruptFileError as exc:  # names that climb out: the archive is refused
        assert "points outside the archive" in exc.message, exc
        return
    result = Path(out.path)
    assert result.read_bytes() != data, "the archive came back as it was sent"
    members = _members(result, out.format)
    assert members, name
    for entry, what in members:
        assert what != "special", (entry, members)
        assert not entry.startswith("/") and ".." not in entry.split("/"), members
        assert not any(c in entry for c in "\x00\x07\x1b\u202e\u2066"), members
    assert not any("original was kept" in note for note in out.notes), out.notes
    assert not Path(f"/tmp/{MARKER}").exists()


def test_rebuilding_says_what_it_dropped_and_renamed(tmp_path: Path) -> None:
    filename, data = HOSTILE["zip-bidi-names"]
    out = _repack(tmp_path, filename, data, compress=True)
    assert sorted(n for n, _ in _members(Path(out.path), "zip")) == [
        "bell_.png", "invoice_gnp.exe"]
    assert any("links or special files" in note and "passwd" in note for note in out.notes)
    assert any("replaced by _" in note and "invoice_gnp.exe" in note for note in out.notes)


def test_a_tarball_in_a_gzip_keeps_its_name_and_drops_its_links(tmp_path: Path) -> None:
    filename, data = HOSTILE["tgz-links"]
    out = _repack(tmp_path, filename, data, compress=True)
    assert out.format == "gz"
    header = Path(out.path).read_bytes()
    assert header[3] & 0x08 and header[10:].split(b"\x00", 1)[0] == b"t.tar"
    assert _members(Path(out.path), "gz") == [("abs/a.png", "file")]
