"""Storage fixtures: the same contract tests run against every Storage implementation.

SeaweedFS starts once per session; each S3 test gets a fresh S3Storage on an emptied bucket.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio.deleteobjects import DeleteObject

from convertly.storage.base import Storage
from convertly.storage.local import LocalStorage
from convertly.storage.s3 import S3Storage
from tests.infra import SeaweedS3

BUCKET = "contract"
BACKENDS = ["local", "s3"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A SeaweedFS S3 server shared by the session (do not stop it in a test)."""
    with SeaweedS3(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def empty_bucket(server: SeaweedS3, bucket: str) -> None:
    client = server.client()
    if not client.bucket_exists(bucket):
        return
    objects = client.list_objects(bucket, recursive=True)
    errors = list(client.remove_objects(
        bucket, (DeleteObject(o.object_name) for o in objects if o.object_name)
    ))
    assert not errors, errors


def s3_storage(server: SeaweedS3, bucket: str = BUCKET) -> S3Storage:
    return S3Storage(server.endpoint, server.access_key, server.secret_key, bucket)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def storage(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty storage of each kind."""
    if backend == "local":
        yield LocalStorage(tmp_path / "storage")
        return
    server: SeaweedS3 = request.getfixturevalue("seaweed")
    empty_bucket(server, BUCKET)
    yield s3_storage(server)
    empty_bucket(server, BUCKET)


@dataclass(frozen=True)
class BigFile:
    path: Path
    size: int
    sha256: str


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    """64 MiB of random bytes, written in 1 MiB pieces (never whole in memory)."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(64):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            fh.write(chunk)
    return BigFile(path, path.stat().st_size, digest.hexdigest())
