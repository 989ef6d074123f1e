"""Redis restarted (AOF on) for 10 s while files convert, again and again, on real processes:
every run's jobs complete with every file converted and bundled exactly once. Two apps run
side by side through the same restarts: one with its job state on the broker's Redis, one
with it on a second Redis (restarted with the broker, alone, or the broker alone). An outage
longer than the tasks' soft time limit sends their messages back to their queue, and still
nothing is lost."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from convertly.settings import Settings
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    create_job,
    download,
    get_job,
    running_app,
    wait_for_job,
)
from tests.cluster import Cluster
from tests.infra import RedisServer

OUTAGE = 10.0  # seconds a Redis stays down
FILES = 4
SIZE = 1200  # pixels a side of each file
QUICK = 64  # pixels a side of the files that only wait for an outage
REQUEUED = "the message goes back to its queue"  # the worker's log line
# What each run stops: "broker" is the Redis both apps queue on (and the shared app keeps
# its state on), "state" the second Redis. The shared app loses its Redis in 5 runs; the
# other app its state and broker together in 3, its broker alone in 2, its state alone in 1.
RUNS = (("broker", "state"), ("broker",), ("broker", "state"), ("broker",),
        ("broker", "state"), ("state",))


@pytest.fixture(scope="module")
def cluster_and_state(tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[tuple[Cluster, RedisServer]]:
    """A cluster of its own (these tests stop and restart its Redis) and a second Redis."""
    root = tmp_path_factory.mktemp("redis-restart")
    cluster = Cluster(root)
    state = RedisServer(root / "state-redis")
    cluster.start()
    state.start()
    try:
        yield cluster, state
    finally:
        cluster.stop()
        state.stop()


def _svg(seed: int) -> bytes:
    # librsvg draws fractal noise for a second or two of CPU: files long at work, so each
    # restart finds some mid-conversion.
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}">'
            f'<filter id="t" x="0" y="0" width="100%" height="100%"><feTurbulence '
            f'baseFrequency="0.01" numOctaves="10" seed="{seed}"/></filter>'
            f'<rect width="{SIZE}" height="{SIZE}" filter="url(#t)"/></svg>').encode()


def _uploads(run: int) -> list[tuple[str, bytes]]:
    return [(f"r{run}-{i}.svg", _svg(run * FILES + i)) for i in range(FILES)]


def _quick_uploads() -> list[tuple[str, bytes]]:
    # Milliseconds of work each: once the state is back, a file converts well within the
    # soft time limit however busy the machine is.
    return [(f"r0-{i}.svg", (f'<svg xmlns="http://www.w3.org/2000/svg" width="{QUICK}" '
                             f'height="{QUICK}"><rect width="{QUICK}" height="{QUICK}" '
                             f'fill="#{40 * i:02x}8040"/></svg>').encode())
            for i in range(FILES)]


def _wait_started(env: AppEnv, tenant: Tenant, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while get_job(env.client, tenant, job_id)["status"] == "pending":
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.05)


def _check_bundle(env: AppEnv, job: dict[str, object], run: int, size: int = SIZE) -> None:
    """The job completed with every file, each once in its archive."""
    assert job["status"] == "completed", job
    assert job["completedFiles"] == FILES, job
    archive_info = job["archive"]
    assert isinstance(archive_info, dict), job
    data = download(env.client, archive_info["downloadUrl"]).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert sorted(names) == sorted(f"r{run}-{i}.webp" for i in range(FILES)), names
        for name in names:
            assert images.decode(archive.read(name)).size == (size, size)


def test_every_file_is_converted_once_across_redis_restarts(
        cluster_and_state: tuple[Cluster, RedisServer], tmp_path: Path) -> None:
    cluster, state = cluster_and_state
    servers = {"broker": cluster.redis, "state": state}
    with contextlib.ExitStack() as stack:
        envs = {}
        for name in ("shared", "separate"):
            settings = cluster.settings_for(Settings(data_dir=tmp_path / name, workers=1))
            if name == "separate":
                settings = settings.replace(state_url=state.url)
            envs[name] = stack.enter_context(running_app("distributed", settings, cluster))
        tenants = {name: env.new_tenant() for name, env in envs.items()}
        heal: dict[str, list[float]] = {name: [] for name in envs}
        for run, stopped in enumerate(RUNS):
            uploads = _uploads(run)
            jobs = {name: create_job(env.client, tenants[name], uploads, format="webp",
                                     createArchive=True) for name, env in envs.items()}
            for name, env in envs.items():
                _wait_started(env, tenants[name], jobs[name])
            # Stop at a different point of the files' work each run: as they start,
            # midway, and as the first ones finish; never after the last.
            time.sleep(0.2 * run)
            for name, env in envs.items():
                job = get_job(env.client, tenants[name], jobs[name])
                assert job["status"] == "processing", (run, name, job["status"])
            for server in stopped:
                servers[server].stop()
            time.sleep(OUTAGE)
            for server in reversed(stopped):
                servers[server].start()  # same port, same AOF
            back = time.monotonic()
            for name, env in envs.items():
                job = wait_for_job(env.client, tenants[name], jobs[name], timeout=90)
                heal[name].append(round(time.monotonic() - back, 1))
                _check_bundle(env, job, run)
    print(f"\nseconds from Redis back to the job completed, per run: {heal}")


def test_an_outage_longer_than_the_soft_time_limit_requeues_and_loses_nothing(
        cluster_and_state: tuple[Cluster, RedisServer], tmp_path: Path) -> None:
    # The files wait in place for the job state until their soft time limit, then go back
    # to their queue (the broker is up), again and again until the state is back. The
    # state stays away until every file has gone back at least once, however long a busy
    # machine takes to get there.
    cluster, state = cluster_and_state
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "api", workers=1)).replace(
        state_url=state.url.replace("/0", "/1"), task_soft_time_limit=4, task_time_limit=8)
    with running_app("distributed", settings, cluster) as env:
        worker = cluster.workers[-1]
        assert worker.proc is not None
        tenant = env.new_tenant()
        # The worker is paused while the job is queued and the state goes away, so that
        # every file meets the outage before it starts.
        os.killpg(worker.proc.pid, signal.SIGSTOP)
        try:
            job_id = create_job(env.client, tenant, _quick_uploads(), format="webp",
                                createArchive=True)
            state.stop()
        finally:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        down = time.monotonic()
        deadline = down + 120
        while worker.log_tail(1_000_000).count(REQUEUED) < FILES:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.1)
        print(f"\n{FILES} files back in their queue after {time.monotonic() - down:.1f} s")
        state.start()
        back = time.monotonic()
        job = wait_for_job(env.client, tenant, job_id, timeout=90)
        print(f"seconds from the state back to the job completed: "
              f"{time.monotonic() - back:.1f}")
        _check_bundle(env, job, 0, QUICK)
