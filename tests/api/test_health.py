"""GET /livez and /readyz (convertly/api/health.py): liveness asks nothing of the
dependencies, readiness names the one that is down. The Redis-down case runs a distributed
app on a redis-server of its own, stopped and started again under it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from convertly.app import create_app
from convertly.settings import Settings
from tests.api.support import AppEnv
from tests.cluster import Cluster
from tests.infra import RedisServer


def test_livez_and_readyz(app_env: AppEnv, client: TestClient) -> None:
    live = client.get("/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert live.headers["cache-control"] == "no-store"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {
        "storage": "ok", "state": "ok", "queue": "ok", "disk": "ok"}}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        yield server


def test_readyz_fails_and_livez_stays_up_with_redis_down(
    cluster: Cluster, own_redis: RedisServer, tmp_path: Path,
) -> None:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "data", workers=1)).replace(
        broker_url=own_redis.url)
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        own_redis.stop()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        # The job state and the broker are the same Redis here; the S3 storage still answers.
        assert body["down"] == ["state", "queue"]
        assert body["checks"]["storage"] == "ok"
        assert body["checks"]["state"] != "ok" and body["checks"]["queue"] != "ok"
        live = client.get("/livez")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        # /healthz keeps its old answer: degraded, the queue named.
        health = client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["checks"]["queue"] != "ok"
        own_redis.start()
        assert client.get("/readyz").status_code == 200
