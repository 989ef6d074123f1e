"""The Storage contract (convertly.storage.base), checked against every implementation,
plus what only S3 storage has to survive: a missing bucket and a server that goes away."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import resource
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from convertly.errors import (
    InvalidRequestError,
    StorageMisconfiguredError,
    StorageUnavailableError,
)
from convertly.settings import Settings
from convertly.storage import build_storage
from convertly.storage.base import Storage
from convertly.storage.local import LocalStorage
from convertly.storage.s3 import PART_SIZE, S3Storage
from tests.infra import SeaweedS3
from tests.storage.conftest import BigFile, s3_storage

MiB = 1024 * 1024


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def read_all(storage: Storage, key: str) -> bytes:
    with storage.open(key) as fh:
        return fh.read()


# -- writes and reads ---------------------------------------------------------------------


def test_put_file_get_file_round_trip(storage: Storage, tmp_path: Path) -> None:
    src = write(tmp_path / "src.bin", b"\x00\x01payload" * 1000)
    assert storage.put_file("jobs/j1/source.bin", src) == src.stat().st_size
    assert src.read_bytes() == b"\x00\x01payload" * 1000  # a copy leaves the source alone

    dst = tmp_path / "dst.bin"
    storage.get_file("jobs/j1/source.bin", dst)
    assert dst.read_bytes() == src.read_bytes()


def test_put_file_move_consumes_source(storage: Storage, tmp_path: Path) -> None:
    src = write(tmp_path / "out.png", b"png bytes")
    assert storage.put_file("jobs/j1/out.png", src, move=True) == 9
    assert not src.exists()
    assert read_all(storage, "jobs/j1/out.png") == b"png bytes"


def test_put_bytes(storage: Storage) -> None:
    assert storage.put_bytes("a/b/c.json", b'{"ok": true}') == 12
    assert storage.put_bytes("a/empty", b"") == 0
    assert read_all(storage, "a/b/c.json") == b'{"ok": true}'
    assert read_all(storage, "a/empty") == b""
    assert storage.size("a/empty") == 0


def test_overwrite_replaces_the_whole_object(storage: Storage, tmp_path: Path) -> None:
    big = b"L" * (PART_SIZE + MiB)  # a multipart upload on S3
    storage.put_bytes("k/obj", big)
    storage.put_bytes("k/obj", b"short")
    assert read_all(storage, "k/obj") == b"short"
    assert storage.size("k/obj") == 5
    storage.put_file("k/obj", write(tmp_path / "big", big))
    assert read_all(storage, "k/obj") == big
    dst = tmp_path / "dst"
    storage.get_file("k/obj", dst)
    assert dst.read_bytes() == big


def test_readers_never_see_a_partial_object(storage: Storage) -> None:
    versions = [b"a" * (3 * MiB), b"b" * (PART_SIZE + MiB), b"c" * 100]
    storage.put_bytes("k/obj", versions[0])
    seen: list[int] = []
    bad: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = read_all(storage, "k/obj")
            if data in versions:
                seen.append(versions.index(data))
            else:
                bad.append(f"{len(data)} bytes starting {data[:1]!r}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 10):
            storage.put_bytes("k/obj", versions[i % 3])
    finally:
        stop.set()
        thread.join()
    assert not bad
    assert seen
    assert read_all(storage, "k/obj") == versions[0]


def test_open_reads_in_chunks(storage: Storage) -> None:
    data = bytes(range(256)) * 4099  # not a multiple of the chunk size
    storage.put_bytes("x/data", data)
    chunks = []
    with storage.open("x/data") as fh:
        assert fh.readable()
        while chunk := fh.read(10_000):
            assert len(chunk) <= 10_000
            chunks.append(chunk)
        assert fh.read(10) == b""
    assert fh.closed
    assert b"".join(chunks) == data
    assert len(chunks) == -(-len(data) // 10_000)


def test_open_closed_before_the_end_releases_the_connection(storage: Storage) -> None:
    storage.put_bytes("x/data", b"z" * (2 * MiB))
    fds_before = len(os.listdir("/proc/self/fd"))
    handles = [storage.open("x/data") for _ in range(20)]
    for fh in handles:
        assert fh.read(5) == b"zzzzz"
        fh.close()
    # The handles are still referenced, so only close() can have freed their sockets.
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2
    assert storage.size("x/data") == 2 * MiB


def test_size_and_exists(storage: Storage) -> None:
    storage.put_bytes("jobs/j1/out/a.webp", b"12345")
    assert storage.size("jobs/j1/out/a.webp") == 5
    assert storage.exists("jobs/j1/out/a.webp")
    assert not storage.exists("jobs/j1/out/b.webp")
    assert not storage.exists("jobs/j1/out")  # a "directory" is not an object
    assert not storage.exists("jobs")


def test_delete(storage: Storage) -> None:
    storage.put_bytes("d/one", b"1")
    storage.delete("d/one")
    assert not storage.exists("d/one")
    storage.delete("d/one")  # missing: not an error
    storage.delete("never/existed")


def test_delete_prefix_removes_only_that_prefix(storage: Storage) -> None:
    keys = ["jobs/j1/src/a.png", "jobs/j1/out/a.webp", "jobs/j1/archive.zip"]
    others = ["jobs/j10/src/a.png", "jobs/j1.zip", "jobs/j2/out/a.webp"]
    for key in keys + others:
        storage.put_bytes(key, b"x")
    assert storage.delete_prefix("jobs/j1") == 3
    assert not any(storage.exists(k) for k in keys)
    assert all(storage.exists(k) for k in others)
    assert storage.delete_prefix("jobs/j1/") == 0
    assert storage.delete_prefix("nothing/here") == 0


def test_delete_prefix_beyond_one_batch(storage: Storage) -> None:
    keys = [f"many/j1/{i:04d}" for i in range(1100)]  # S3 deletes at most 1000 per request
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: storage.put_bytes(k, b"x"), [*keys, "many/j2/keep"]))
    assert storage.delete_prefix("many/j1") == 1100
    assert list(storage.list_prefix("many")) == ["many/j2/keep"]


def test_list_prefix(storage: Storage) -> None:
    keys = ["t/j1/b.txt", "t/j1/a.txt", "t/j1/sub/c.txt"]
    for key in [*keys, "t/j10/x.txt", "t/j1.txt", "u/j1/a.txt"]:
        storage.put_bytes(key, b"x")
    assert sorted(storage.list_prefix("t/j1")) == sorted(keys)
    assert sorted(storage.list_prefix("t/j1/")) == sorted(keys)
    assert list(storage.list_prefix("t/none")) == []


MISSING_OPS: dict[str, Callable[[Storage, Path], Any]] = {
    "get_file": lambda s, tmp: s.get_file("no/such/key", tmp / "dst"),
    "open": lambda s, tmp: s.open("no/such/key"),
    "size": lambda s, tmp: s.size("no/such/key"),
}


@pytest.mark.parametrize("op", MISSING_OPS)
def test_missing_key_raises_file_not_found(storage: Storage, tmp_path: Path, op: str) -> None:
    storage.put_bytes("no/such/other", b"x")
    with pytest.raises(FileNotFoundError):
        MISSING_OPS[op](storage, tmp_path)
    assert not (tmp_path / "dst").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "storage"] == []


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "", "a/../b", "a/./b", "a/", ".hidden"])
def test_invalid_keys_are_rejected(storage: Storage, tmp_path: Path, key: str) -> None:
    src = write(tmp_path / "src", b"x")
    ops: list[Callable[[], Any]] = [
        lambda: storage.put_file(key, src),
        lambda: storage.put_file(key, src, move=True),
        lambda: storage.put_bytes(key, b"x"),
        lambda: storage.get_file(key, tmp_path / "dst"),
        lambda: storage.open(key),
        lambda: storage.local_path(key),
        lambda: storage.size(key),
        lambda: storage.exists(key),
        lambda: storage.delete(key),
        lambda: storage.presigned_url(key, "f.txt", "text/plain", 60),
    ]
    for op in ops:
        with pytest.raises(InvalidRequestError):
            op()
    assert src.read_bytes() == b"x"


def test_large_file_streams_without_being_held_in_memory(
    storage: Storage, backend: str, big_file: BigFile, tmp_path: Path
) -> None:
    dst = tmp_path / "big.out"
    with MemoryPeak() as upload:
        started = time.perf_counter()
        assert storage.put_file("big/file.bin", big_file.path) == big_file.size
        upload_s = time.perf_counter() - started
    with MemoryPeak() as download:
        started = time.perf_counter()
        storage.get_file("big/file.bin", dst)
        download_s = time.perf_counter() - started
    assert sha256_file(dst) == big_file.sha256

    mb = big_file.size / 1e6
    print(f"{backend}: upload {mb / upload_s:.0f} MB/s, peak +{upload.rss / MiB:.1f} MiB RSS "
          f"(+{upload.python / MiB:.1f} MiB Python objects); download {mb / download_s:.0f} "
          f"MB/s, peak +{download.rss / MiB:.1f} MiB RSS (+{download.python / MiB:.1f} MiB)")
    # Python never holds more than about two upload parts, whatever the file size; the
    # process as a whole (allocator slack included) stays far below the file size.
    assert upload.python < 2.5 * PART_SIZE
    assert download.python < 8 * MiB  # a few 1 MiB read buffers
    assert upload.rss < big_file.size / 2
    assert download.rss < big_file.size / 8


class MemoryPeak:
    """How far memory rose above its level at the start of the block, at its peak: `rss`
    for the process (Linux resets the kernel's high-water mark first, so an earlier test's
    peak cannot hide this one) and `python` for live Python objects (tracemalloc)."""

    rss = 0
    python = 0

    def __enter__(self) -> MemoryPeak:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        self._rss_start = _max_rss()
        tracemalloc.start()
        self._python_start = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.python = tracemalloc.get_traced_memory()[1] - self._python_start
        tracemalloc.stop()
        self.rss = _max_rss() - self._rss_start


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def test_presigned_url(storage: Storage, backend: str) -> None:
    storage.put_bytes("out/j1/photo.webp", b"RIFF....WEBP")
    url = storage.presigned_url("out/j1/photo.webp", "My photo é.webp", "image/webp", 60)
    if backend == "local":
        assert url is None  # the API serves local files itself
        return
    assert url is not None
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF....WEBP"
    assert response.headers["content-type"] == "image/webp"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="My photo _.webp"' in disposition
    assert "filename*=UTF-8''My%20photo%20%C3%A9.webp" in disposition
    # The signature covers the key: another object is not reachable with it.
    assert httpx.get(url.replace("photo.webp", "other.webp", 1)).status_code == 403


def test_local_path(storage: Storage, backend: str) -> None:
    storage.put_bytes("p/file.txt", b"hello")
    path = storage.local_path("p/file.txt")
    if backend == "local":
        assert path is not None and path.read_bytes() == b"hello"
        assert storage.local_path("p/missing.txt") is None
    else:
        assert path is None


def test_check_passes(storage: Storage) -> None:
    storage.check()


# -- S3 only --------------------------------------------------------------------------------


def test_bucket_is_created_when_missing(seaweed: SeaweedS3) -> None:
    client = seaweed.client()
    assert not client.bucket_exists("created-on-use")
    storage = s3_storage(seaweed, "created-on-use")
    assert client.bucket_exists("created-on-use")
    storage.put_bytes("a/b", b"x")
    assert read_all(storage, "a/b") == b"x"
    # A second instance (another process, say) finds the bucket and shares the objects.
    assert read_all(s3_storage(seaweed, "created-on-use"), "a/b") == b"x"


def test_build_storage_selects_s3_when_an_endpoint_is_set(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    local = build_storage(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalStorage)
    settings = Settings.from_env({
        "CONVERTLY_DATA_DIR": str(tmp_path),
        "CONVERTLY_S3_ENDPOINT": seaweed.endpoint,
        "CONVERTLY_S3_ACCESS_KEY": seaweed.access_key,
        "CONVERTLY_S3_SECRET_KEY": seaweed.secret_key,
        "CONVERTLY_S3_BUCKET": "from-settings",
    }, env_file=None)
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.put_bytes("k", b"v")
    assert seaweed.client().bucket_exists("from-settings")


@pytest.mark.parametrize(("access_key", "secret_key", "code"), [
    (None, "wrong-secret", "SignatureDoesNotMatch"),
    ("nobody", "wrong-secret", "InvalidAccessKeyId"),
], ids=["wrong-secret", "unknown-access-key"])
def test_refused_credentials_are_a_configuration_error(
    seaweed: SeaweedS3, caplog: pytest.LogCaptureFixture, access_key: str | None,
    secret_key: str, code: str,
) -> None:
    # Built all the same (only `convertly serve` and `worker` refuse to start on it).
    storage = S3Storage(seaweed.endpoint, access_key or seaweed.access_key, secret_key,
                        "contract")
    operations: list[Callable[[], object]] = [
        storage.check, lambda: storage.size("any/key"),
        lambda: storage.put_bytes("any/key", b"x"), lambda: storage.open("any/key"),
        lambda: list(storage.list_prefix("any")),
    ]
    for op in operations:
        caplog.clear()
        with pytest.raises(StorageMisconfiguredError) as raised:
            op()
        error = raised.value
        assert isinstance(error, StorageUnavailableError)  # still a 503 to callers
        assert error.code == "STORAGE_MISCONFIGURED" and not error.transient
        assert "retry" not in error.message and "CONVERTLY_" not in error.message
        assert error.reason == (
            f"S3 storage {seaweed.endpoint} refuses this server's credentials ({code}): check "
            "CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY, and that they may use "
            "bucket 'contract'.")
        logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(logged) == 1, logged
        assert f"({code} during " in logged[0]
        assert logged[0].endswith("check CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY, "
                                  "and that they may use bucket 'contract'.")
    # The right credentials reach the same objects (nothing was written by the refused ones).
    assert not s3_storage(seaweed).exists("any/key")


def test_a_clock_s3_finds_skewed_is_a_configuration_error(
    seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This host's clock two hours ahead, as the signatures show it to the real server.
    import minio.time

    real = minio.time.utcnow
    monkeypatch.setattr(minio.time, "utcnow", lambda: real() + datetime.timedelta(hours=2))
    storage = S3Storage(seaweed.endpoint, seaweed.access_key, seaweed.secret_key, "contract")
    with pytest.raises(StorageMisconfiguredError) as raised:
        storage.put_bytes("skewed/key", b"x")
    assert not raised.value.transient
    assert raised.value.reason == (
        f"S3 storage {seaweed.endpoint} refuses this server's requests (RequestTimeTooSkewed): "
        "check this host's clock (keep it in sync, e.g. with NTP): S3 refuses requests signed "
        "more than 15 minutes off its own time.")
    monkeypatch.undo()
    assert not s3_storage(seaweed).exists("skewed/key")


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedS3]:
    """A SeaweedFS server of this test's own, free to be stopped (runs beside the shared one)."""
    with SeaweedS3(tmp_path / "seaweed") as server:
        yield server


def test_server_down_then_back(own_seaweed: SeaweedS3, tmp_path: Path) -> None:
    storage = s3_storage(own_seaweed)
    storage.put_bytes("kept/before", b"still here")
    src = write(tmp_path / "src", b"new")

    own_seaweed.stop()
    for op in (storage.check, lambda: storage.put_file("k/new", src, move=True),
               lambda: storage.open("kept/before"), lambda: storage.exists("kept/before")):
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError) as raised:
            op()
        assert time.monotonic() - started < 5
        assert raised.value.transient  # an outage, not a configuration error
    assert src.exists()  # a failed move leaves the source for a retry

    own_seaweed.start()
    storage.check()  # the same instance, not rebuilt
    assert storage.put_file("k/new", src, move=True) == 3
    assert read_all(storage, "k/new") == b"new"
    assert read_all(storage, "kept/before") == b"still here"


def test_storage_built_while_server_is_down(tmp_path: Path) -> None:
    server = SeaweedS3(tmp_path / "seaweed")
    try:
        started = time.monotonic()
        storage = s3_storage(server, "late-bucket")  # must not raise
        assert time.monotonic() - started < 5
        with pytest.raises(StorageUnavailableError):
            storage.put_bytes("a/b", b"x")
        server.start()
        storage.put_bytes("a/b", b"x")
        assert server.client().bucket_exists("late-bucket")
    finally:
        server.close()
