from __future__ import annotations

from pathlib import Path

import pytest

from tests.streams.packaged import package


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files of a tiny stream packaged by ffmpeg (read them, do not change them)."""
    return package(tmp_path_factory.mktemp("packaged"))
