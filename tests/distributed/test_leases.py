"""Worker leases on real processes: a message held by a process that died with its Celery main
process (a lost host) goes back to its queue once no live worker lists it for a lease, long
before the broker's visibility timeout; a held, young or foreign message stays where it is."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from convertly import priority
from convertly.executors.celeryapp import RUN_FILE, queue_keys
from convertly.executors.leases import workers_by_queue
from convertly.settings import Settings
from tests import images
from tests.api.support import create_job, running_app, wait_for_job
from tests.cluster import Cluster
from workers import leases
from workers.tasks import make_celery

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Celery, Any, Settings]]:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "api", workers=1))
    client = redis.Redis.from_url(settings.broker_url)
    try:
        yield make_celery(settings), client, settings
    finally:
        client.flushdb()
        client.close()


def _take_and_die(broker_url: str, queue: str) -> str:
    """A process takes one message from `queue` as a worker does (unacknowledged) and is
    killed with SIGKILL; returns the message's delivery tag."""
    script = textwrap.dedent(f"""
        import os, signal
        from kombu import Connection
        with Connection({broker_url!r}) as conn:
            message = conn.default_channel.basic_get({queue!r}, no_ack=False)
            print(message.delivery_tag, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, check=False)
    assert done.returncode == -9, done.stderr
    return done.stdout.strip()


def test_a_message_whose_holder_died_goes_back_after_a_lease(
        broker: tuple[Celery, Any, Settings]) -> None:
    app, client, settings = broker
    bulk = queue_keys("image")[priority.LEVELS.index(priority.BULK)]
    app.signature(RUN_FILE, args=("job-1", 0, "archive"), queue="image",
                  priority=priority.BULK).apply_async()
    tag = _take_and_die(settings.broker_url, "image")
    assert client.llen(bulk) == 0
    assert client.hexists(leases.UNACKED, tag)

    # Not yet: delivered less than a lease ago.
    assert leases.requeue_orphans(app, client, lease=30) == []
    later = time.time() + 31
    # Not while a live worker lists it (a long task still running).
    leases.beat(client, "convertly-1@alive", 30, [tag])
    assert leases.requeue_orphans(app, client, 30, now=later) == []
    assert leases.live_workers(client)["convertly-1@alive"]["held"] == [tag]

    client.delete(leases.WORKER_KEY + "convertly-1@alive")
    assert leases.requeue_orphans(app, client, 30, now=later) == [tag]
    assert not client.hexists(leases.UNACKED, tag)
    assert client.zscore(leases.UNACKED_INDEX, tag) is None
    # Back at its own level.
    assert [client.llen(key) for key in queue_keys("image")] == [
        int(level == priority.BULK) for level in priority.LEVELS]
    payload = json.loads(client.lindex(bulk, 0))
    assert payload["headers"]["task"] == RUN_FILE
    assert payload["headers"]["redelivered"] is True
    # Once is enough: a second sweep finds nothing.
    assert leases.requeue_orphans(app, client, 30, now=later) == []


def test_messages_of_other_celery_apps_on_the_broker_are_left_alone(
        broker: tuple[Celery, Any, Settings]) -> None:
    app, client, settings = broker
    app.signature("billing.charge", args=(1,), queue="image").apply_async()
    tag = _take_and_die(settings.broker_url, "image")
    assert leases.requeue_orphans(app, client, 30, now=time.time() + 31) == []
    assert client.hexists(leases.UNACKED, tag)


def test_a_live_worker_lists_what_it_holds_and_gives_its_lease_up_on_exit(
        broker: tuple[Celery, Any, Settings]) -> None:
    app, client, settings = broker
    lease = leases.Lease(app, "convertly-2@host", 6, settings.broker_url,
                         tags=lambda: ["tag-a", "tag-b"], queues=["image", "archive"])
    try:
        assert lease.step() == []  # beats, sweeps (nothing to requeue)
        record = leases.live_workers(client)["convertly-2@host"]
        assert record["held"] == ["tag-a", "tag-b"]
        assert record["queues"] == ["archive", "image"]
        assert 0 < client.ttl(leases.WORKER_KEY + "convertly-2@host") <= 6
        # One sweep per beat interval across the cluster: another worker skips its turn.
        other = leases.Lease(app, "convertly-3@host", 6, settings.broker_url, tags=list)
        assert not client.set(leases.SWEEP_LOCK, "x", nx=True, px=500)
        other.step()
        assert set(leases.live_workers(client)) == {"convertly-2@host", "convertly-3@host"}
        assert workers_by_queue(client, ["image", "media"]) == {
            "image": 1, "media": 0, "archive": 1}
    finally:
        lease.close()
    assert set(leases.live_workers(client)) == {"convertly-3@host"}


def test_a_whole_worker_killed_mid_job_has_its_files_done_by_another(
        cluster: Cluster, tmp_path: Path) -> None:
    # Leases of 2 s; the visibility timeout stays the test default (the hard time limit
    # plus a minute, 210 s), so a job done well within that was rescued by the lease.
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "api", workers=1,
                                             worker_lease=2))
    assert settings.task_time_limit + 60 > 150
    with running_app("distributed", settings, cluster) as env:
        victim = cluster.workers[-1]
        tenant = env.new_tenant()
        uploads = [(f"{i}.jpg", images.jpeg(1600, 1200, seed=i)) for i in range(4)]
        job_id = create_job(env.client, tenant, uploads, format="avif")
        deadline = time.monotonic() + 60
        while not _holds(settings):
            assert time.monotonic() < deadline, victim.log_tail()
            time.sleep(0.02)
        victim.kill()  # main process and pool processes: nobody left to requeue
        rescuer = cluster.start_worker(settings, concurrency=1)
        try:
            job = wait_for_job(env.client, tenant, job_id, timeout=120)
            assert job["status"] == "completed", job
            assert job["completedFiles"] == 4, job
            assert "held by workers silent" in rescuer.log_tail(100_000)
        finally:
            rescuer.stop()


def _holds(settings: Settings) -> bool:
    """Whether a worker holds a message (the victim is the only one consuming)."""
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return bool(client.hlen(leases.UNACKED))
    finally:
        client.close()
