"""A job's sources land in storage and are handed on in file order when they are stored
together (so files are queued, and converted, in the order they were sent), on both
storages; one started early and one stored later both land."""

from __future__ import annotations

from pathlib import Path

from convertly.sources import SourceStore
from convertly.storage.base import Storage


def _spooled(tmp_path: Path, count: int) -> list[tuple[int, str, Path]]:
    files = []
    for index in range(count):
        path = tmp_path / f"spool-{index}"
        path.write_bytes(b"x" * (index + 1))
        files.append((index, f"f{index}.bin", path))
    return files


def test_sources_are_handed_on_in_file_order(storage: Storage, tmp_path: Path) -> None:
    files = _spooled(tmp_path, 40)
    store = SourceStore(storage, "job", "jobs/job", lambda i, name: f"jobs/job/{i}-{name}")
    try:
        landed = list(store.store(files))
    finally:
        store.close()
    if storage.remote:  # uploads finish in any order
        assert sorted(landed) == list(range(40))
    else:
        assert landed == list(range(40))
    assert storage.size("jobs/job/39-f39.bin") == 40


def test_started_sources_land_with_the_rest(storage: Storage, tmp_path: Path) -> None:
    files = _spooled(tmp_path, 3)
    store = SourceStore(storage, "job", "jobs/job", lambda i, name: f"jobs/job/{i}-{name}")
    try:
        store.start(*files[1])
        landed = list(store.store(files))
        store.discard()
    finally:
        store.close()
    assert sorted(landed) == [0, 1, 2]
    assert not storage.exists("jobs/job/1-f1.bin")
