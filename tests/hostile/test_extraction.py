"""Safe extraction, checked on disk: whatever an archive says, nothing lands outside the
scratch directory, and no link, hard link or device node is ever created; bombs stop at the
byte, ratio and header budgets."""

from __future__ import annotations

import dataclasses
import os
import stat
import tarfile
import uuid
from pathlib import Path

import pytest

from convertly.converters.builtin import default_registry
from convertly.errors import ArchiveTooLargeError, ConvertlyError, CorruptFileError
from convertly.models import FileSpec, JobType, OutputFormat
from convertly.sniff import sniff_file
from tests import images
from tests.converters.conftest import FakeLimits
from tests.hostile import corpus, samples

MIB = 1024 * 1024


def _convert(tmp_path: Path, name: str, data: bytes, fmt: str,
             limits: FakeLimits | None = None) -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir()
    src = workdir / "source"
    src.write_bytes(data)
    spec = FileSpec(index=0, filename=name, job_type=JobType.CONVERT,
                    format=OutputFormat(fmt))
    source = sniff_file(src)
    from convertly.sniff import Kind

    converter = default_registry().find(Kind(source.kind), OutputFormat(fmt))
    converter.convert(src, source, spec, workdir, limits or FakeLimits())
    return workdir


def _tree_is_plain(root: Path) -> list[str]:
    """Everything under `root` is a regular file or directory with one link."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                bad.append(f"{path}: mode {oct(info.st_mode)}")
            elif stat.S_ISREG(info.st_mode) and info.st_nlink != 1:
                bad.append(f"{path}: {info.st_nlink} hard links")
    return bad


MARKER = f"escaped-{uuid.uuid4().hex[:10]}"
TRAVERSALS = {c.name: c for c in corpus.traversal(MARKER, images.png(16, 16))
              if c.name.endswith("-to-zip")}


@pytest.mark.parametrize("name", sorted(TRAVERSALS))
def test_archive_entries_stay_inside_and_links_are_never_created(tmp_path: Path,
                                                                 name: str) -> None:
    (filename, data), = TRAVERSALS[name].files
    try:
        workdir = _convert(tmp_path, filename, data, "zip")
    except ConvertlyError as exc:
        assert isinstance(exc, CorruptFileError), exc  # refused: the names climb out
    else:
        assert _tree_is_plain(workdir) == []
        inside = [p for p in workdir.rglob(MARKER)]
        assert all(p.is_relative_to(workdir) for p in inside)
    assert not Path(f"/tmp/{MARKER}").exists()
    assert not (tmp_path / MARKER).exists()


def test_expansion_ratio_stops_a_bomb_naming_the_setting(tmp_path: Path) -> None:
    bomb = corpus._zip_zeros(40 * MIB)  # ~40 KB: a ratio of ~1000
    limits = FakeLimits(max_expansion_ratio=100)
    with pytest.raises(ArchiveTooLargeError, match="CONVERTLY_MAX_EXPANSION_RATIO"):
        _convert(tmp_path, "bomb.zip", bomb, "7z", limits)
    written = sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file())
    assert written < 20 * MIB  # stopped at the 16 MiB floor, not at 40 MiB


def test_a_repetitive_but_small_archive_is_not_refused(tmp_path: Path) -> None:
    small = corpus._zip_zeros(4 * MIB)  # ratio ~1000, but under the 16 MiB floor
    workdir = _convert(tmp_path, "zeros.zip", small, "tar",
                       FakeLimits(max_expansion_ratio=100))
    with tarfile.open(workdir / "output.tar") as tf:
        assert [m.size for m in tf.getmembers()] == [4 * MIB]


def test_extracted_bytes_budget_names_its_setting(tmp_path: Path) -> None:
    limits = dataclasses.replace(FakeLimits(), max_extracted_bytes=2 * MIB)
    with pytest.raises(ArchiveTooLargeError, match="CONVERTLY_MAX_EXTRACTED_BYTES"):
        _convert(tmp_path, "z.tgz", corpus._tgz_zeros(8 * MIB), "zip", limits)


def test_entry_count_budget_names_its_setting(tmp_path: Path) -> None:
    limits = dataclasses.replace(FakeLimits(), max_archive_entries=50)
    many = samples.seven_z_of({f"e{i}": b"x" for i in range(60)})
    with pytest.raises(ArchiveTooLargeError, match="CONVERTLY_MAX_ARCHIVE_ENTRIES"):
        _convert(tmp_path, "many.7z", many, "zip", limits)


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME])
def test_huge_tar_headers_are_refused_before_being_read(tmp_path: Path, kind: bytes) -> None:
    with pytest.raises(CorruptFileError, match="extended header"):
        _convert(tmp_path, "h.tgz", corpus._tgz_header_bomb(kind, 8 * MIB), "zip")


def test_nested_archives_are_not_opened(tmp_path: Path) -> None:
    """Nesting depth is one: archives inside an archive stay packed, whatever they hold."""
    inner = corpus._zip_zeros(64 * MIB)
    outer = samples.zip_of({f"bomb{i}.zip": inner for i in range(4)})
    workdir = _convert(tmp_path, "outer.zip", outer, "tar",
                       FakeLimits(max_expansion_ratio=100))
    with tarfile.open(workdir / "output.tar") as tf:
        sizes = sorted(m.size for m in tf.getmembers())
    assert sizes == [len(inner)] * 4
