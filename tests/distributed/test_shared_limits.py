"""Two real `convertly serve` processes on one real Redis share a key's rate limit: a burst
sent to both at once is limited as one, with the default settings."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from convertly.settings import Settings
from tests.api.support import new_tenant, services_for
from tests.cluster import Cluster
from tests.infra import free_ports, terminate

STARTUP_TIMEOUT = 60.0


@pytest.fixture
def two_servers(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Settings, list[str]]]:
    settings = cluster.settings_for(Settings(data_dir=tmp_path / "data", workers=1))
    env = {k: v for k, v in settings.to_env().items() if v}
    processes, bases = [], []
    try:
        for port in free_ports(2):
            with (tmp_path / f"serve-{port}.log").open("wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "convertly", "serve", "--port", str(port)],
                    env={**env, "CONVERTLY_LOG_LEVEL": "warning"}, cwd=tmp_path, stdout=log,
                    stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
        for process, base in zip(processes, bases, strict=True):
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                assert process.poll() is None, "convertly serve exited"
                try:
                    httpx2.get(f"{base}/healthz", timeout=2)
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline, "convertly serve is not answering"
                    time.sleep(0.05)
        yield settings, bases
    finally:
        for process in processes:
            terminate(process)


def test_two_api_processes_limit_one_key_as_one(two_servers: tuple[Settings, list[str]]
                                                ) -> None:
    settings, bases = two_servers
    tenant = new_tenant(services_for("distributed", settings), "shared")
    clients = [httpx2.Client(base_url=base, headers=tenant.headers, timeout=30)
               for base in bases]
    try:
        started = time.monotonic()
        answers = [(i % 2, clients[i % 2].get("/api/jobs")) for i in range(600)]
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    by_server = [Counter(r.status_code for s, r in answers if s == i) for i in (0, 1)]
    passed = sum(c[200] for c in by_server)
    burst, rate = settings.rate_burst, settings.rate_limit
    # One bucket for both: its burst and its rate over the run, not twice that.
    assert burst <= passed <= burst + rate * elapsed + 1, (passed, elapsed, by_server)
    assert all(c[200] and c[429] and set(c) == {200, 429} for c in by_server), by_server
    refused = [r for _, r in answers if r.status_code == 429]
    assert all(r.json()["code"] == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
               and r.headers["RateLimit-Remaining"] == "0" for r in refused)
    print(f"\ntwo processes: {passed} of 600 passed in {elapsed:.2f} s "
          f"(server 1: {dict(by_server[0])}, server 2: {dict(by_server[1])}); "
          f"Retry-After values {dict(Counter(r.headers['Retry-After'] for r in refused))}")
