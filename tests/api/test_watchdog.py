"""The job watchdog (`convertly.watchdog`), in both modes, on real processes: a file whose
queue entry vanished behind the service's back is found, reported by /healthz, logged and
queued again, and its job completes with every file once; a job that progresses normally is
never touched; two API replicas looking at once queue a lost file once."""

from __future__ import annotations

import asyncio
import functools
import heapq
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from convertly.app import create_app
from convertly.executors.celeryapp import queue_keys, run_file_target
from convertly.executors.inprocess import InProcessExecutor
from convertly.settings import Settings
from convertly.watchdog import Watchdog
from tests import images
from tests.api.support import (
    AppEnv,
    create_job,
    deployed,
    new_tenant,
    running_app,
    wait_for_job,
)

# Looks five times a second; a file unaccounted for over 0.6 s is lost.
FAST: dict[str, Any] = {"watchdog_interval": 0.2, "watchdog_stale": 0.6}
# Tighter still for the jobs that must not be touched: a file that runs (~0.5 s) is older
# than the stale time, so only its holder accounts for it.
TIGHT: dict[str, Any] = {"watchdog_interval": 0.1, "watchdog_stale": 0.3}
FILES = 6


@functools.cache
def uploads() -> list[tuple[str, bytes]]:
    # Big enough (~0.5 s each to WebP) that files wait their turn behind one process for
    # seconds, well past the stale time.
    return [(f"{i}.jpg", images.jpeg(1600, 1200, seed=i)) for i in range(FILES)]


def healthz_watchdog(client: TestClient) -> dict[str, int]:
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    found: dict[str, int] = response.json()["watchdog"]
    return found


def wait_for_requeue(client: TestClient, timeout: float = 30) -> tuple[int, dict[str, int]]:
    """Poll /healthz until the watchdog requeued a file: (the most stuck files it showed
    meanwhile, its last answer)."""
    deadline = time.monotonic() + timeout
    most_stuck = 0
    while True:
        found = healthz_watchdog(client)
        most_stuck = max(most_stuck, found["stuckFiles"])
        if found["requeued"]:
            return most_stuck, found
        assert time.monotonic() < deadline, f"nothing requeued after {timeout} s: {found}"
        time.sleep(0.05)


def assert_completed_once(job: dict[str, Any]) -> None:
    assert job["status"] == "completed", job
    assert [f["status"] for f in job["results"]] == ["completed"] * FILES
    assert sorted(f["index"] for f in job["results"]) == list(range(FILES))


# --- embedded ----------------------------------------------------------------------------


def drop_from_backlog(executor: InProcessExecutor, job_id: str) -> int | None:
    """Remove the job's last waiting file from the backlog (runs on the app's loop): the
    loss of a queue entry, as a bug could cause it. Its index, or None if none waited."""
    waiting = [entry for entry in executor._backlog if entry[2] == job_id]
    if not waiting:
        return None
    entry = max(waiting)
    executor._backlog.remove(entry)
    heapq.heapify(executor._backlog)
    return entry[3]


@contextmanager
def embedded(tmp_path: Path, watch: dict[str, Any]) -> Iterator[AppEnv]:
    with running_app("embedded", Settings(data_dir=tmp_path, workers=1, **watch)) as env:
        yield env


def test_embedded_file_dropped_from_the_backlog_is_requeued_and_its_job_completes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="convertly.watchdog")
    with embedded(tmp_path, FAST) as env:
        client, tenant = env.client, env.new_tenant()
        job_id = create_job(client, tenant, uploads(), format="webp")
        assert client.portal is not None
        lost = client.portal.call(drop_from_backlog, env.app.state.executor, job_id)
        assert lost is not None, "every file left the backlog at once: make them bigger"
        lost_at = time.monotonic()

        most_stuck, found = wait_for_requeue(client)
        healed = time.monotonic() - lost_at
        assert most_stuck >= 1
        assert found["requeued"] == 1
        assert f"job {job_id} file {lost}:" in caplog.text
        assert_completed_once(wait_for_job(client, tenant, job_id))
        assert healthz_watchdog(client) == {"stuckFiles": 0, "requeued": 1}
    print(f"embedded: lost file requeued {healed:.1f} s after its loss")


def test_embedded_job_that_waits_and_progresses_is_never_requeued(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="convertly.watchdog")
    with embedded(tmp_path, TIGHT) as env:
        client, tenant = env.client, env.new_tenant()
        job_id = create_job(client, tenant, uploads(), format="webp")
        # Files wait in the backlog for seconds, past the stale time: queued, not lost.
        assert_completed_once(wait_for_job(client, tenant, job_id))
        time.sleep(3 * TIGHT["watchdog_interval"])
        assert healthz_watchdog(client) == {"stuckFiles": 0, "requeued": 0}
    assert "queueing it again" not in caplog.text


# --- distributed -------------------------------------------------------------------------


def delete_queue_message(settings: Settings, job_id: str, index: int) -> bool:
    """LREM the file's message from its Celery queue list, behind the service's back."""
    client = redis.Redis.from_url(settings.broker_url)
    try:
        for key in queue_keys(settings.image_queue):
            for raw in client.lrange(key, 0, -1):
                if run_file_target(json.loads(raw)) == (job_id, index):
                    return bool(client.lrem(key, 1, raw))
        return False
    finally:
        client.close()


def file_messages(settings: Settings, job_id: str, index: int) -> int:
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return sum(run_file_target(json.loads(raw)) == (job_id, index)
                   for key in queue_keys(settings.image_queue)
                   for raw in client.lrange(key, 0, -1))
    finally:
        client.close()


def test_distributed_deleted_queue_message_is_requeued_and_its_job_completes(
        tmp_path: Path, request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="convertly.watchdog")
    settings, cluster = deployed("distributed", Settings(data_dir=tmp_path, **FAST), request)
    assert cluster is not None
    # No worker yet, so the files wait in their queue.
    with TestClient(create_app(settings)) as client:
        tenant = new_tenant(client.app.state.services)  # type: ignore[attr-defined]
        job_id = create_job(client, tenant, uploads(), format="webp")
        assert delete_queue_message(settings, job_id, 3)
        lost_at = time.monotonic()

        most_stuck, found = wait_for_requeue(client)
        healed = time.monotonic() - lost_at
        assert most_stuck >= 1 and found["requeued"] == 1
        assert f"job {job_id} file 3:" in caplog.text
        # Many looks later: queued once, requeued once.
        time.sleep(5 * FAST["watchdog_interval"])
        assert file_messages(settings, job_id, 3) == 1
        assert healthz_watchdog(client) == {"stuckFiles": 0, "requeued": 1}

        worker = cluster.start_worker(settings, concurrency=1)
        try:
            assert_completed_once(wait_for_job(client, tenant, job_id))
        finally:
            worker.stop()
        assert healthz_watchdog(client) == {"stuckFiles": 0, "requeued": 1}
    print(f"distributed: lost file requeued {healed:.1f} s after its loss")


async def look_together(dogs: list[Watchdog], now: float) -> list[list[tuple[str, int]]]:
    return list(await asyncio.gather(*(dog.look(now) for dog in dogs)))


def test_two_replicas_looking_at_once_requeue_a_lost_file_once(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # Their own looks are an hour apart: the test makes both look at the same moments.
    settings, _ = deployed("distributed", Settings(
        data_dir=tmp_path, watchdog_interval=3600, watchdog_stale=60), request)
    with TestClient(create_app(settings)) as one, \
            TestClient(create_app(settings.replace(data_dir=tmp_path / "two"))) as two:
        tenant = new_tenant(one.app.state.services)  # type: ignore[attr-defined]
        job_id = create_job(one, tenant, uploads(), format="webp")
        assert delete_queue_message(settings, job_id, 3)
        dogs = [one.app.state.watchdog, two.app.state.watchdog]  # type: ignore[attr-defined]
        assert one.portal is not None
        now = time.monotonic()
        assert one.portal.call(look_together, dogs, now) == [[], []]  # first sight
        assert healthz_watchdog(two) == {"stuckFiles": 1, "requeued": 0}
        requeued = one.portal.call(look_together, dogs, now + 60)
        assert sorted(requeued, key=len) == [[], [(job_id, 3)]]
        assert file_messages(settings, job_id, 3) == 1
        assert healthz_watchdog(two) == {"stuckFiles": 1, "requeued": 1}
        assert one.portal.call(look_together, dogs, now + 120) == [[], []]
        assert healthz_watchdog(one) == {"stuckFiles": 0, "requeued": 1}


def test_distributed_job_that_waits_and_progresses_is_never_requeued(
        tmp_path: Path, request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="convertly.watchdog")
    settings, cluster = deployed("distributed", Settings(data_dir=tmp_path, **TIGHT), request)
    assert cluster is not None
    worker = cluster.start_worker(settings, concurrency=1)
    try:
        with TestClient(create_app(settings)) as client:
            tenant = new_tenant(client.app.state.services)  # type: ignore[attr-defined]
            job_id = create_job(client, tenant, uploads(), format="webp")
            # Files wait in the queue and are held by the worker (prefetched, running) for
            # seconds, well past the stale time: none of them is lost.
            assert_completed_once(wait_for_job(client, tenant, job_id))
            time.sleep(3 * TIGHT["watchdog_interval"])
            assert healthz_watchdog(client) == {"stuckFiles": 0, "requeued": 0}
    finally:
        worker.stop()
    assert "queueing it again" not in caplog.text
