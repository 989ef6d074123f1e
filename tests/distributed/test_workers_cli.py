"""`convertly workers`, run as the program the workers' container healthcheck runs, against a
real Redis where a real `convertly worker` keeps its lease."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from convertly.executors import leases
from convertly.settings import Settings
from tests.cluster import Cluster, Worker
from tests.infra import free_ports

HOST = socket.gethostname()
ELSEWHERE = "convertly-7@elsewhere.example"


def _convertly() -> str:
    path = Path(sys.executable).parent / "convertly"
    assert path.is_file(), f"{path} is missing: run `make setup` to install the command"
    return str(path)


def run_workers(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`convertly workers ARGS` with `settings` as its whole environment of CONVERTLY_*
    variables (cwd has no .env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERTLY_")}
    env.update(settings.to_env())
    return subprocess.run([_convertly(), "workers", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def node_of(worker: Worker) -> str:
    """The worker's Celery node name (`convertly worker` names it after its own pid)."""
    assert worker.proc is not None
    return f"convertly-{worker.proc.pid}@{HOST}"


def wait_for_lease(settings: Settings, node: str, timeout: float = 30) -> None:
    client = redis.Redis.from_url(settings.broker_url)
    try:
        deadline = time.monotonic() + timeout
        while node not in leases.live_workers(client):
            assert time.monotonic() < deadline, f"{node} took no lease"
            time.sleep(0.1)
    finally:
        client.close()


@pytest.fixture(scope="module")
def fleet(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Settings, str]]:
    """One real worker on this host, consuming image and archive: its settings, node name."""
    settings = cluster.settings_for(
        Settings(data_dir=tmp_path_factory.mktemp("workers-cli"), workers=1))
    worker = cluster.start_worker(settings, queues="image,archive", concurrency=1)
    try:
        wait_for_lease(settings, node_of(worker))
        yield settings, node_of(worker)
    finally:
        worker.stop()
        cluster.flush(settings)


def lease_elsewhere(settings: Settings, *, age: float, held: list[str],
                    queues: list[str]) -> None:
    """A lease as a worker on another host writes it, its last beat `age` seconds ago."""
    client = redis.Redis.from_url(settings.broker_url)
    try:
        at = time.time() - age
        client.set(leases.WORKER_KEY + ELSEWHERE,
                   json.dumps({"at": at, "held": held, "queues": queues}), ex=30)
        client.zadd(leases.WORKERS, {ELSEWHERE: at})
    finally:
        client.close()


@pytest.fixture
def other_host(fleet: tuple[Settings, str]) -> Iterator[float]:
    """Beside the real worker: a worker on another host, holding two files, that beat 20 s
    ago. Yields when (time.monotonic) its lease was written: the age a command reports
    later is 20 s plus the time since."""
    settings, _ = fleet
    lease_elsewhere(settings, age=20, held=["tag-1", "tag-2"], queues=["media"])
    yield time.monotonic()
    client = redis.Redis.from_url(settings.broker_url)
    client.delete(leases.WORKER_KEY + ELSEWHERE)
    client.zrem(leases.WORKERS, ELSEWHERE)
    client.close()


def test_lists_each_live_worker_with_its_queues(
        fleet: tuple[Settings, str], other_host: float, tmp_path: Path) -> None:
    settings, node = fleet
    done = run_workers(settings, tmp_path)
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["NODE", "QUEUES", "HELD", "LAST", "BEAT"]
    rows = {line.split()[0]: line.split()[1:] for line in lines}
    assert set(rows) == {node, ELSEWHERE}
    queues, held, age, *_ = rows[node]
    assert (queues, held) == ("archive,image", "0")
    assert 0 <= int(age) <= leases.beat_interval(settings.worker_lease) + 2
    assert rows[ELSEWHERE][:2] == ["media", "2"]
    assert 19 <= int(rows[ELSEWHERE][2]) <= 21 + time.monotonic() - other_host
    assert rows[ELSEWHERE][3:] == ["s", "ago"]


def test_json_gives_each_worker_as_an_object(
        fleet: tuple[Settings, str], other_host: float, tmp_path: Path) -> None:
    settings, node = fleet
    done = run_workers(settings, tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert [row["node"] for row in rows] == sorted([node, ELSEWHERE])
    mine, = (row for row in rows if row["node"] == node)
    assert mine == {"node": node, "host": HOST, "queues": ["archive", "image"], "held": 0,
                    "lastBeatSeconds": mine["lastBeatSeconds"]}
    assert 0 <= mine["lastBeatSeconds"] <= leases.beat_interval(settings.worker_lease) + 2
    other, = (row for row in rows if row["node"] == ELSEWHERE)
    assert other["host"] == "elsewhere.example"
    assert (other["queues"], other["held"]) == (["media"], 2)
    assert 19.5 <= other["lastBeatSeconds"] <= 21 + time.monotonic() - other_host


def test_local_lists_only_the_workers_on_this_host(
        fleet: tuple[Settings, str], other_host: float, tmp_path: Path) -> None:
    settings, node = fleet
    done = run_workers(settings, tmp_path, "--local", "--json")
    assert done.returncode == 0, done.stderr
    assert [row["node"] for row in json.loads(done.stdout)] == [node]
    table = run_workers(settings, tmp_path, "--local")
    assert table.returncode == 0, table.stderr
    assert node in table.stdout
    assert ELSEWHERE not in table.stdout


def test_no_live_worker_exits_1(cluster: Cluster, tmp_path: Path) -> None:
    empty = cluster.settings_for(Settings(data_dir=tmp_path / "data", workers=1))
    done = run_workers(empty, tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"convertly workers: no live worker found in Redis at {empty.broker_url}."]
    as_json = run_workers(empty, tmp_path, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == []


def test_local_exits_1_when_the_only_workers_are_elsewhere(
        cluster: Cluster, tmp_path: Path) -> None:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "data", workers=1))
    lease_elsewhere(settings, age=0, held=[], queues=["image"])
    try:
        assert run_workers(settings, tmp_path).returncode == 0
        done = run_workers(settings, tmp_path, "--local")
        assert done.returncode == 1
        assert done.stdout == ""
        assert f"no live worker found on this host ({HOST})" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    finally:
        cluster.flush(settings)


def test_a_killed_worker_fails_the_check_once_its_lease_runs_out(
        cluster: Cluster, tmp_path: Path) -> None:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "data", workers=1,
                                             worker_lease=2))
    worker = cluster.start_worker(settings, queues="media", concurrency=1)
    try:
        wait_for_lease(settings, node_of(worker))
        alive = run_workers(settings, tmp_path, "--local")
        assert alive.returncode == 0, alive.stderr
        assert node_of(worker) in alive.stdout
        worker.kill()  # main process too: nothing gives the lease up
        time.sleep(settings.worker_lease + 0.5)
        dead = run_workers(settings, tmp_path, "--local")
        assert dead.returncode == 1, dead.stdout
        assert "no live worker found on this host" in dead.stderr
    finally:
        worker.stop()
        cluster.flush(settings)


def test_embedded_mode_exits_2(tmp_path: Path) -> None:
    done = run_workers(Settings(data_dir=tmp_path / "data"), tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("convertly workers: set CONVERTLY_BROKER_URL")
    assert done.stdout == ""


def test_unreachable_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    port = free_ports(1)[0]  # nothing listens there
    settings = Settings(data_dir=tmp_path / "data",
                        broker_url=f"redis://:hunter2@127.0.0.1:{port}/0")
    started = time.monotonic()
    done = run_workers(settings, tmp_path, "--local")
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("convertly workers: cannot read the worker leases from Redis at "
                           f"redis://127.0.0.1:{port}/0 (CONVERTLY_BROKER_URL): ")
    assert "hunter2" not in done.stderr
