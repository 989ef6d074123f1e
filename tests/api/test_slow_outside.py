"""One tenant's slow outside work does not slow the others down, on a real server (uvicorn on
loopback, the app's lifespan running as deployed, both modes): tenant X keeps 8 `sourceUrl`
requests to an origin that trickles its headers and has 8 webhook endpoints that do the same,
while tenant Y lists its jobs, the health check is polled, and Y's job callback is delivered.
Also: a header-trickling origin is cut at CONVERTLY_FETCH_TIMEOUT, and a download stops when
its client hangs up."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette

from convertly.app import create_app
from convertly.fetches import FetchPool
from convertly.settings import Settings
from tests import images
from tests.api.support import Tenant, assert_error, behind_socket, deployed, new_tenant
from tests.receiver import Receiver, kinds
from tests.trickle import ENDLESS_HEADERS, Trickler

FETCH_TIMEOUT = 4.0
TRICKLE = 0.5  # seconds between two header bytes: every read comes in time
SECRET = "whsec_" + "s" * 32


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[tuple[str, Starlette]]:
    """The app behind a real socket with its lifespan on (its executor, webhook dispatcher
    and fetch pool running in the server's own event loop, as `convertly serve` runs them)."""
    app = create_app(settings)
    with behind_socket(app, lifespan=True) as url:
        yield url, app


@pytest.fixture(scope="module")
def served(mode: str, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[tuple[str, Starlette]]:
    settings, cluster = deployed(mode, Settings(
        data_dir=tmp_path_factory.mktemp(f"isolation-{mode}"), workers=1,
        fetch_allow_private=True, webhook_allow_private=True, fetch_timeout=FETCH_TIMEOUT,
        fetch_tenant_queue=4), request)
    worker = cluster.start_worker(settings) if cluster is not None else None
    try:
        with serving(settings) as running:
            yield running
    finally:
        if worker is not None:
            worker.stop()


class SourceRequest:
    """A `POST /api/convert` with a `sourceUrl`, on a socket of its own, read by a thread:
    `answer` (the status line) and when it came, or `close()` to hang up."""

    def __init__(self, base: str, tenant: Tenant, source: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        boundary = "isolation"
        body = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (("sourceUrl", source), ("format", "png"))
        ) + f"--{boundary}--\r\n"
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.sent = time.monotonic()
        self.sock.sendall(
            (f"POST /api/convert HTTP/1.1\r\nHost: {host}\r\n"
             f"Authorization: Bearer {tenant.key}\r\n"
             f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
             f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
        self.answer = b""
        self.answered_at: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        data = b""
        try:
            while not data.rstrip().endswith(b"}"):  # the end of the JSON answer
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                if not data:
                    self.answered_at = time.monotonic()
                data += chunk
        except OSError:
            pass
        self.answer = data

    @property
    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer else None

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)

    def close(self) -> None:
        """Hang up (shut down first: a plain close waits for the reading thread's recv)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self.sock.close()


def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _job(client: httpx2.Client, tenant: Tenant, **fields: str) -> str:
    response = client.post("/api/jobs", headers=tenant.headers,
                           files={"files": ("a.png", images.png(40, 30), "image/png")},
                           data={"format": "jpg", **fields})
    assert response.status_code == 200, response.text
    job_id: str = response.json()["jobId"]
    return job_id


def test_one_tenants_slow_origins_and_receivers_do_not_slow_another(
        served: tuple[str, Starlette], mode: str) -> None:
    base, app = served
    svc = app.state.services
    fetches: FetchPool = app.state.fetches
    x, y = new_tenant(svc, "x"), new_tenant(svc, "y")
    requests: list[SourceRequest] = []
    with (Trickler(ENDLESS_HEADERS, TRICKLE) as origin,
          Trickler(ENDLESS_HEADERS, TRICKLE) as hooks, Receiver() as receiver,
          httpx2.Client(base_url=base, timeout=30) as client):
        try:
            # X: 8 webhook endpoints that trickle, and a job whose events go to all 8.
            for i in range(8):
                made = client.post("/api/webhooks", headers=x.headers,
                                   json={"url": hooks.url(f"/x{i}")})
                assert made.status_code == 201, made.text
            _job(client, x)
            # X: 8 sourceUrl requests to an origin that trickles its headers.
            requests = [SourceRequest(base, x, origin.url(f"/slow{i}.jpg")) for i in range(8)]
            _until(lambda: hooks.open_connections >= 4 and origin.open_connections >= 4, 10,
                   "X's deliveries and downloads did not start")
            # X runs its share of downloads, the rest wait; one more is refused.
            assert (fetches.running, fetches.waiting(x.tenant)) == (4, 4)
            refused = client.post("/api/convert", headers=x.headers,
                                  files={"sourceUrl": (None, origin.url("/more.jpg")),
                                         "format": (None, "png")})
            assert_error(refused, 503, "QUEUE_FULL", "4 waiting")
            assert refused.headers["Retry-After"] == "5"

            # Y lists its jobs and its job's callback is delivered, the health check stays up.
            created = time.monotonic()
            y_job = _job(client, y, callbackUrl=receiver.url("/y"), callbackSecret=SECRET)
            latencies: list[float] = []
            delivered: float | None = None
            while time.monotonic() - created < 3.0 or delivered is None:
                started = time.monotonic()
                listed = client.get("/api/jobs", headers=y.headers)
                latencies.append(time.monotonic() - started)
                assert listed.status_code == 200, listed.text
                if len(latencies) % 10 == 0:
                    health = client.get("/healthz")
                    assert health.status_code == 200, health.text
                if delivered is None and "conversion.completed" in kinds(receiver.at("/y")):
                    delivered = time.monotonic() - created
                assert time.monotonic() - created < 10, "Y's callback was not delivered"
                time.sleep(0.02)
            # X still held its share the whole time: it was slowed, not Y.
            assert hooks.open_connections <= 4, hooks.open_connections
            assert origin.open_connections == 4

            latencies.sort()
            p95 = latencies[int(0.95 * len(latencies)) - 1]
            print(f"\n[{mode}] Y: GET /api/jobs p95 {p95 * 1000:.1f} ms over {len(latencies)} "
                  f"requests (max {latencies[-1] * 1000:.1f} ms); callback delivered "
                  f"{delivered:.2f} s after the job was created")
            assert p95 < 0.100, latencies
            assert delivered < 5.0
            [event] = [json.loads(r.body) for r in receiver.at("/y")
                       if json.loads(r.body)["type"] == "conversion.completed"]
            assert event["data"]["jobId"] == y_job or event["data"].get("id") == y_job

            # The first 4 downloads are cut at CONVERTLY_FETCH_TIMEOUT.
            _until(lambda: sum(r.status is not None for r in requests) >= 4,
                   FETCH_TIMEOUT + 3, "no download was cut at the fetch timeout")
            cut = sorted(r.answered_at - r.sent for r in requests if r.answered_at)[:4]
            print(f"[{mode}] X: header-trickling downloads cut after "
                  f"{', '.join(f'{c:.2f}' for c in cut)} s (timeout {FETCH_TIMEOUT:g} s)")
            assert all(FETCH_TIMEOUT - 0.1 < c < FETCH_TIMEOUT + 1 for c in cut), cut
        finally:
            for r in requests:
                r.close()
        # X hung up: its downloads stop at once, none is left running or waiting.
        _until(lambda: fetches.running == 0 and fetches.waiting(x.tenant) == 0, 3,
               "downloads of clients that hung up were not stopped")
        assert origin.wait_closed(3) < 3


def test_a_header_trickling_origin_is_cut_at_the_fetch_timeout(
        served: tuple[str, Starlette], mode: str) -> None:
    base, app = served
    tenant = new_tenant(app.state.services, "trickled")
    with Trickler(ENDLESS_HEADERS, TRICKLE) as origin:
        request = SourceRequest(base, tenant, origin.url("/slow.jpg"))
        request.wait(FETCH_TIMEOUT + 5)
        request.close()
        took = (request.answered_at or time.monotonic()) - request.sent
        print(f"\n[{mode}] cut after {took:.2f} s (CONVERTLY_FETCH_TIMEOUT={FETCH_TIMEOUT:g})")
        assert request.status == 400, request.answer
        body = json.loads(request.answer.split(b"\r\n\r\n", 1)[1])
        assert body["code"] == "INVALID_FIELD"
        assert f"longer than {FETCH_TIMEOUT:g} s" in body["error"]
        assert FETCH_TIMEOUT - 0.1 < took < FETCH_TIMEOUT + 1
        assert origin.wait_closed(2) < 2


def test_a_download_stops_when_its_client_hangs_up(served: tuple[str, Starlette]) -> None:
    base, app = served
    fetches: FetchPool = app.state.fetches
    tenant = new_tenant(app.state.services, "hangs-up")
    with Trickler(ENDLESS_HEADERS, TRICKLE) as origin:
        request = SourceRequest(base, tenant, origin.url("/slow.jpg"))
        _until(lambda: origin.open_connections == 1, 5, "the download did not start")
        hung_up = time.monotonic()
        request.close()
        took = origin.wait_closed(FETCH_TIMEOUT)
        print(f"\norigin connection closed {took:.2f} s after the client hung up")
        # Well before the deadline would have ended it: the hang-up did.
        assert took < 1.5, took
        assert time.monotonic() - hung_up < FETCH_TIMEOUT - 1
        _until(lambda: fetches.running == 0, 2, "the download still holds a thread")


def test_sync_conversions_waiting_for_a_worker_do_not_stall_the_routes(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Distributed mode, no worker: 8 sync conversions wait for one (until
    CONVERTLY_SYNC_QUEUE_TIMEOUT), each on a thread of the API process; meanwhile another
    tenant's job list answers at once."""
    settings, _ = deployed("distributed", Settings(data_dir=tmp_path, sync_queue_timeout=3),
                           request)
    with serving(settings) as (base, app), httpx2.Client(base_url=base, timeout=30) as client:
        x, y = new_tenant(app.state.services, "x"), new_tenant(app.state.services, "y")
        answers: list[int] = []

        def convert() -> None:
            with httpx2.Client(base_url=base, timeout=30) as own:
                answers.append(own.post(
                    "/api/convert", headers=x.headers, data={"format": "jpg"},
                    files={"files": ("a.png", images.png(40, 30), "image/png")}).status_code)

        waiting = [threading.Thread(target=convert) for _ in range(8)]
        for thread in waiting:
            thread.start()
        time.sleep(0.5)  # all 8 are waiting for a worker now
        latencies = []
        started = time.monotonic()
        while time.monotonic() - started < 2.0:
            before = time.monotonic()
            listed = client.get("/api/jobs", headers=y.headers)
            latencies.append(time.monotonic() - before)
            assert listed.status_code == 200, listed.text
            time.sleep(0.02)
        for thread in waiting:
            thread.join(30)
    latencies.sort()
    p95 = latencies[int(0.95 * len(latencies)) - 1]
    print(f"\nY: GET /api/jobs p95 {p95 * 1000:.1f} ms over {len(latencies)} requests while 8 "
          "sync conversions waited for a worker")
    assert answers == [503] * 8  # QUEUE_TIMEOUT: no worker took them
    assert p95 < 0.100, latencies
