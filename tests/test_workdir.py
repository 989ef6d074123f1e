"""The working directories conversions run in: reused per thread, and absolute whatever
the data directory setting says."""

from __future__ import annotations

import shutil
import threading
import wave
from pathlib import Path

import pytest

from convertly.models import FileSpec, OutputFormat
from convertly.pipeline import convert_path
from convertly.service import build_services, file_workdir, scratch_dir
from convertly.settings import Settings


def test_a_threads_workdir_is_empty_at_each_use_and_reused(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path))
    with file_workdir(svc) as first:
        assert list(first.iterdir()) == []
        (first / "source").write_bytes(b"source")
        (first / "frames").mkdir()
        (first / "frames" / "1.png").write_bytes(b"frame")
    with file_workdir(svc) as second:
        assert second == first
        assert list(second.iterdir()) == []


def test_a_removed_workdir_is_replaced(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path))
    with file_workdir(svc) as first:
        pass
    shutil.rmtree(first)
    with file_workdir(svc) as second:
        assert second.is_dir() and second != first


def test_threads_get_workdirs_of_their_own(tmp_path: Path) -> None:
    svc = build_services(Settings(data_dir=tmp_path))
    other: list[Path] = []

    def convert_elsewhere() -> None:
        with file_workdir(svc) as path:
            other.append(path)

    with file_workdir(svc) as mine:
        thread = threading.Thread(target=convert_elsewhere)
        thread.start()
        thread.join()
    assert other and other[0] != mine


def test_a_relative_data_dir_serves_the_external_programs_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg runs inside the working directory: with CONVERTLY_DATA_DIR relative (the
    default, `data`), every path handed to it must still be absolute."""
    monkeypatch.chdir(tmp_path)
    svc = build_services(Settings(data_dir=Path("data")))
    assert svc.settings.data_dir == tmp_path / "data"
    with scratch_dir(svc, "relative") as workdir:
        src = workdir / "source"
        with wave.open(str(src), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\x00\x10" * 4000)
        spec = FileSpec(index=0, filename="tone.wav", format=OutputFormat.MP3)
        done = convert_path(svc, src, spec, workdir)
        assert done.mime_type == "audio/mpeg"
        assert Path(done.path).stat().st_size > 0
