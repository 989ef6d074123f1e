"""Fixtures shared by every test package: small generated test images."""

from __future__ import annotations

import pytest

from tests import images


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A 320x240 photo-like JPEG (quality 90)."""
    return images.jpeg(320, 240)


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A 320x240 photo-like RGB PNG."""
    return images.png(320, 240)
