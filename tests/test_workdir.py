"""The reusable working directory each thread converts job files in."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from convertly.service import build_services, file_workdir
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
