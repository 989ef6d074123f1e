"""API fixtures: one started app per mode for the whole session (starting a worker pool
costs a second or two), a fresh tenant per test, and a small-limits app for the limit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from convertly.settings import Settings
from tests.api.support import MODES, SHARED_LIMITS, AppEnv, Tenant, deployed, running_app
from tests.converters.segmentation import redness_model


@pytest.fixture(scope="session", params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """How the service is deployed; every API test runs once per mode."""
    value: str = request.param
    return value


@pytest.fixture(scope="session")
def segmentation_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ONNX model for remove-background (tests/converters/segmentation.py)."""
    return redness_model(tmp_path_factory.mktemp("models") / "redness.onnx")


@pytest.fixture(scope="session")
def app_env(mode: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest, segmentation_model: Path) -> Iterator[AppEnv]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"data-{mode}"), workers=2,
                       background_model=str(segmentation_model), **SHARED_LIMITS), request)
    with running_app(mode, settings, cluster) as env:
        yield env


@pytest.fixture
def client(app_env: AppEnv) -> TestClient:
    return app_env.client


@pytest.fixture
def tenant(app_env: AppEnv) -> Tenant:
    return app_env.new_tenant("tenant-a")


@pytest.fixture
def other_tenant(app_env: AppEnv) -> Tenant:
    return app_env.new_tenant("tenant-b")


# Small limits, so the limit tests need no large uploads.
LIMITED = {
    "max_file_bytes": 64 * 1024,
    "max_files": 3,
    "max_request_bytes": 512 * 1024,
    "data_url_max_bytes": 1000,
    "max_queued_files": 1,
    "max_pixels": 200_000,
    "fetch_allow_private": True,  # sourceUrl tests fetch from a loopback server
    "max_media_seconds": 10,
    "playback_event_rate": 0.5,
    "playback_event_burst": 2,
    **SHARED_LIMITS,
}


@pytest.fixture(scope="session")
def limited_env(mode: str, tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[AppEnv]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"limited-{mode}"), workers=1,
                       **LIMITED), request)
    with running_app(mode, settings, cluster) as env:
        yield env
