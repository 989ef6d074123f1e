"""Fixtures shared by every test package: small generated test images."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import images
from tests.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Redis and an S3 service for distributed-mode tests, started once per session."""
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A 320x240 photo-like JPEG (quality 90)."""
    return images.jpeg(320, 240)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A 320x240 photo-like RGB PNG."""
    return images.png(320, 240)
