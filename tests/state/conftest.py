"""State fixtures: every store's contract tests run on both engines, SQLite (embedded) and
Redis (distributed, on the session's redis-server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from convertly.state.redis.client import connect
from tests.cluster import Cluster

ENGINES = ["sqlite", "redis"]


@pytest.fixture
def redis_client(cluster: Cluster) -> Iterator[redis.Redis]:
    """A client of the session's redis-server, its database emptied before and after."""
    client = connect(f"redis://{cluster.redis.endpoint}/0")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()
