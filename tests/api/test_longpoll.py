"""GET /api/jobs/{id}?wait=SECONDS: waiting for a job in one request, in both modes.

Jobs that must stay unfinished are stored without being handed to the executor (they stay
pending until submitted or cancelled). Where a test must show that the notification, not the
once-a-second re-read of the store, answered the request, it makes the re-read rare
(`events.recheck`) first."""

from __future__ import annotations

import concurrent.futures
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from convertly_client import Client, ClientError
from starlette.testclient import TestClient

from convertly.executors.base import Executor
from convertly.models import Job, OutputFormat
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    assert_error,
    behind_socket,
    create_job,
    output_bytes,
    store_job,
)

SLOW_RECHECK = 60.0  # longer than any wait below: only a notification can end it early


def _get(client: TestClient, tenant: Tenant, job_id: str, wait: str
         ) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    response = client.get(f"/api/jobs/{job_id}", params={"wait": wait}, headers=tenant.headers)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body, took


def _pending(app_env: AppEnv, tenant: Tenant, tmp_path: Path) -> Job:
    return store_job(app_env.services, tenant, [("wait.png", images.png(48, 32))],
                     tmp_path / "spool", fmt=OutputFormat.JPG)


def _registered(app_env: AppEnv, job_id: str, count: int = 1, timeout: float = 10) -> None:
    """Until `count` requests wait for `job_id` in the API process."""
    deadline = time.monotonic() + timeout
    while app_env.services.events.waiting(job_id) != count:
        assert time.monotonic() < deadline, f"{count} waiter(s) on {job_id} expected"
        time.sleep(0.01)


@pytest.fixture
def slow_recheck(app_env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_env.services.events, "recheck", SLOW_RECHECK)


def test_wait_answers_as_soon_as_the_job_is_finished(client: TestClient,
                                                     tenant: Tenant) -> None:
    job_id = create_job(client, tenant, [("pic.png", images.png(64, 48))], format="webp")
    job, took = _get(client, tenant, job_id, "30")
    assert job["status"] == "completed", job
    assert took < 20, took
    results = job["results"]
    assert isinstance(results, list)
    out = images.decode(output_bytes(client, results[0]))
    assert (out.format, out.size) == ("WEBP", (64, 48))


def test_the_finish_notification_wakes_a_waiter(app_env: AppEnv, tenant: Tenant,
                                                tmp_path: Path, slow_recheck: None) -> None:
    """Finished by the executor (embedded: a pool process; distributed: a Celery worker,
    whose notification crosses Redis) while a request waits."""
    job = _pending(app_env, tenant, tmp_path)
    executor: Executor = app_env.app.state.executor
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_get, app_env.client, tenant, job.id, "20")
        _registered(app_env, job.id)
        executor.submit_file(job, 0)
        executor.submitted(job)
        body, took = waiting.result(timeout=60)
    assert body["status"] == "completed", body
    assert took < 10, took  # the store is re-read only after SLOW_RECHECK


def test_wait_ends_after_the_timeout_with_the_unfinished_job(app_env: AppEnv, tenant: Tenant,
                                                             tmp_path: Path) -> None:
    job = _pending(app_env, tenant, tmp_path)
    try:
        body, took = _get(app_env.client, tenant, job.id, "1.5")
        assert (body["jobId"], body["status"], body["completedAt"]) == (job.id, "pending", None)
        assert 1.4 < took < 10, took
        assert app_env.services.events.waiting(job.id) == 0
    finally:
        app_env.services.jobs.cancel(job.id, tenant.tenant)


def test_cancelling_wakes_a_waiter(app_env: AppEnv, tenant: Tenant, tmp_path: Path,
                                   slow_recheck: None) -> None:
    job = _pending(app_env, tenant, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_get, app_env.client, tenant, job.id, "20")
        _registered(app_env, job.id)
        cancelled = app_env.client.delete(f"/api/jobs/{job.id}", headers=tenant.headers)
        assert cancelled.status_code == 200, cancelled.text
        body, took = waiting.result(timeout=60)
    assert (body["status"], body["cancelled"]) == ("failed", True), body
    assert took < 10, took


def test_a_job_finished_elsewhere_is_found_by_the_recheck(app_env: AppEnv, tenant: Tenant,
                                                          tmp_path: Path) -> None:
    """No notification at all (another replica, a lost message): the re-read answers."""
    job = _pending(app_env, tenant, tmp_path)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_get, app_env.client, tenant, job.id, "20")
        _registered(app_env, job.id)
        assert app_env.services.jobs.cancel(job.id, tenant.tenant) is not None
        body, took = waiting.result(timeout=60)
    assert body["status"] == "failed", body
    assert took < 10, took


@pytest.mark.parametrize("raw", ["abc", "-1", "61", "60.5", "nan", "inf", "1e999", "0x10",
                                 "1_0", "٣"])
def test_invalid_waits_are_400(client: TestClient, tenant: Tenant, raw: str) -> None:
    response = client.get("/api/jobs/no-such-job", params={"wait": raw},
                          headers=tenant.headers)
    body = assert_error(response, 400, "INVALID_FIELD", "'wait'", "from 0 to 60")
    assert body["detail"] == {"field": "wait"}


def test_zero_or_empty_wait_answers_at_once(app_env: AppEnv, tenant: Tenant,
                                            tmp_path: Path) -> None:
    job = _pending(app_env, tenant, tmp_path)
    try:
        for raw in ("0", "", "0.0"):
            body, took = _get(app_env.client, tenant, job.id, raw)
            assert body["status"] == "pending" and took < 1, (raw, took)
    finally:
        app_env.services.jobs.cancel(job.id, tenant.tenant)


def test_another_tenant_gets_404_without_waiting(app_env: AppEnv, tenant: Tenant,
                                                 other_tenant: Tenant, tmp_path: Path) -> None:
    job = _pending(app_env, tenant, tmp_path)
    try:
        started = time.monotonic()
        response = app_env.client.get(f"/api/jobs/{job.id}", params={"wait": "30"},
                                      headers=other_tenant.headers)
        assert_error(response, 404, "NOT_FOUND")
        assert time.monotonic() - started < 5
        # The same answer as without `wait` (and as for an id that does not exist).
        plain = app_env.client.get(f"/api/jobs/{job.id}", headers=other_tenant.headers)
        assert response.json() == plain.json()
        unauthenticated = app_env.client.get(f"/api/jobs/{job.id}", params={"wait": "30"})
        assert_error(unauthenticated, 401, "UNAUTHORIZED")
    finally:
        app_env.services.jobs.cancel(job.id, tenant.tenant)


# --- over a real socket ---------------------------------------------------------------------


@pytest.fixture
def served_url(app_env: AppEnv) -> Iterator[str]:
    """The session's app also behind a real socket (uvicorn in a thread, its own event loop;
    the app is already started, so no lifespan), for client disconnects and the HTTP client."""
    with behind_socket(app_env.app, lifespan=False) as url:
        yield url


def test_a_client_that_hangs_up_leaves_no_waiter_behind(app_env: AppEnv, tenant: Tenant,
                                                        tmp_path: Path, served_url: str,
                                                        slow_recheck: None) -> None:
    job = _pending(app_env, tenant, tmp_path)
    try:
        host, port = served_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(f"GET /api/jobs/{job.id}?wait=20 HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {tenant.key}\r\n\r\n".encode())
            _registered(app_env, job.id)
        # Hung up: the wait ends at its next look at the connection (at most every second,
        # though the store is re-read only every SLOW_RECHECK).
        started = time.monotonic()
        _registered(app_env, job.id, count=0, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        app_env.services.jobs.cancel(job.id, tenant.tenant)


def test_the_http_client_waits_on_the_server(app_env: AppEnv, tenant: Tenant, tmp_path: Path,
                                             served_url: str) -> None:
    """convertly_client (the CLI's): few requests for a long wait, and its timeout holds."""
    job = _pending(app_env, tenant, tmp_path)
    updates: list[str] = []
    try:
        with Client(served_url, tenant.key) as client:
            assert client.get_job(job.id, wait=0.3).status == "pending"
            started = time.monotonic()
            with pytest.raises(ClientError, match=r"still pending after 2\.5 s"):
                client.wait_job(job.id, timeout=2.5, wait=30,
                                on_update=lambda j: updates.append(j.status))
            took = time.monotonic() - started
    finally:
        app_env.services.jobs.cancel(job.id, tenant.tenant)
    assert 2.4 < took < 10, took
    assert updates == ["pending"]  # one request held until the timeout, not a poll loop

    finished = create_job(app_env.client, tenant, [("c.png", images.png(40, 30))],
                          format="jpg")
    with Client(served_url, tenant.key) as client:
        job_body = client.wait_job(finished, wait=30)
    assert job_body.status == "completed", job_body
