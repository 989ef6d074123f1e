"""Helpers for the API tests: running apps per mode, tenants, multipart bodies, polling jobs,
reading outputs and checking error bodies."""

from __future__ import annotations

import base64
import json
import mimetypes
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from convertly import jobs, service
from convertly.app import create_app
from convertly.models import FileSpec, Job, JobType, OutputFormat
from convertly.service import Services
from convertly.settings import Settings
from tests.cluster import Cluster

MODES = ["embedded", "distributed"]
# The session's shared servers serve every test from one address ("testclient"), many of
# them sending wrong keys on purpose: failed-key throttling is off there, and key bursts are
# far above what one test sends. tests/api/test_limits.py checks the defaults.
SHARED_LIMITS: dict[str, Any] = {"rate_burst": 10_000, "auth_failure_limit": 0}
JOB_TIMEOUT = 60.0
FINISHED = {"completed", "failed"}

Upload = tuple[str, bytes]


@dataclass(frozen=True)
class Tenant:
    key: str
    prefix: str
    tenant: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass(frozen=True)
class AppEnv:
    """A started app (lifespan running, so its executor is up) and a client bound to it."""

    mode: str
    app: Starlette
    client: TestClient
    settings: Settings

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc

    def new_tenant(self, name: str = "test") -> Tenant:
        return new_tenant(self.services, name)


def new_tenant(services: Services, name: str = "test") -> Tenant:
    """A fresh API key, and with it a fresh tenant that no other test shares."""
    key, record = services.keys.create(name)
    return Tenant(key=key, prefix=record.prefix, tenant=record.tenant)


def deployed(mode: str, settings: Settings, request: pytest.FixtureRequest
             ) -> tuple[Settings, Cluster | None]:
    """`settings` as `mode` deploys them (distributed: on the session's cluster)."""
    if mode != "distributed":
        return settings, None
    cluster: Cluster = request.getfixturevalue("cluster")
    return cluster.settings_for(settings), cluster


def services_for(mode: str, settings: Settings) -> Services:
    """The services a process of this deployment builds (to act on its data directly);
    in distributed mode `settings` already point at the cluster (Cluster.settings_for)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return service.build_services(settings)


@contextmanager
def running_app(mode: str, settings: Settings, cluster: Cluster | None = None
                ) -> Iterator[AppEnv]:
    """Start the app the way `mode` deploys it and stop it (and its workers) afterwards.
    Distributed mode also starts a `convertly worker` process on the cluster."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    worker = None
    if mode == "distributed":
        assert cluster is not None and settings.distributed
        worker = cluster.start_worker(settings)
    try:
        app = create_app(settings)
        with TestClient(app) as client:
            yield AppEnv(mode=mode, app=app, client=client, settings=settings)
    finally:
        if worker is not None:
            worker.stop()


# --- requests ---------------------------------------------------------------------------


def multipart(uploads: Sequence[Upload], field: str = "files") -> list[tuple[str, Any]]:
    return [
        (field, (name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"))
        for name, data in uploads
    ]


def form(fields: Mapping[str, Any]) -> dict[str, str]:
    """Form values as the SDK sends them: booleans as true/false, arrays as JSON."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(list(value))
        else:
            out[name] = str(value)
    return out


def post(client: TestClient, path: str, tenant: Tenant | None, uploads: Sequence[Upload],
         *, field: str = "files", headers: Mapping[str, str] | None = None,
         **fields: Any) -> httpx2.Response:
    all_headers = {**(tenant.headers if tenant else {}), **(headers or {})}
    return client.post(path, headers=all_headers, files=multipart(uploads, field),
                       data=form(fields))


def convert_ok(client: TestClient, tenant: Tenant, uploads: Sequence[Upload],
               **fields: Any) -> dict[str, Any]:
    response = post(client, "/api/convert", tenant, uploads, **fields)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert len(body["files"]) == len(uploads)
    return body


def create_job(client: TestClient, tenant: Tenant, uploads: Sequence[Upload],
               **fields: Any) -> str:
    response = post(client, "/api/jobs", tenant, uploads, **fields)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "pending"
    job_id: str = body["jobId"]
    return job_id


def get_job(client: TestClient, tenant: Tenant, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/jobs/{job_id}", headers=tenant.headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def wait_for_job(client: TestClient, tenant: Tenant, job_id: str,
                 timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """Poll the job until it is completed or failed."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        job = get_job(client, tenant, job_id)
        if job["status"] in FINISHED:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def list_jobs(client: TestClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = client.get("/api/jobs", headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- outputs ----------------------------------------------------------------------------


def data_url_bytes(url: str, mime_type: str) -> bytes:
    header, comma, payload = url.partition(",")
    assert comma and header == f"data:{mime_type};base64", url[:80]
    return base64.b64decode(payload, validate=True)


def download(client: TestClient, url: str) -> httpx2.Response:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response


def output_bytes(client: TestClient, entry: Mapping[str, Any]) -> bytes:
    """The bytes behind a file entry's downloadUrl, inline (data:) or signed link."""
    url = entry["downloadUrl"]
    if url.startswith("data:"):
        return data_url_bytes(url, entry["mimeType"])
    return download(client, url).content


# --- errors -----------------------------------------------------------------------------


def assert_error(response: httpx2.Response, status: int, code: str,
                 *fragments: str) -> dict[str, Any]:
    """The response is `status` with Convertly's error body, `code`, and `fragments` in the
    message; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert body.get("code") == code, body
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])
    return body


# --- jobs stored without the API -------------------------------------------------------


def store_job(services: Services, tenant: Tenant, uploads: Sequence[Upload], spool: Path,
              *, fmt: OutputFormat = OutputFormat.PNG, job_type: JobType = JobType.CONVERT,
              create_archive: bool = False) -> Job:
    """Store a job the way POST /api/jobs does, without handing it to an executor: it stays
    pending until something submits it (an executor's start, after a restart)."""
    spool.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (_, data) in enumerate(uploads):
        path = spool / f"upload-{index}"
        path.write_bytes(data)
        paths.append(path)
    specs = [
        FileSpec(index=i, filename=name, job_type=job_type,
                 format=None if job_type is JobType.COMPRESS else fmt)
        for i, (name, _) in enumerate(uploads)
    ]
    request = jobs.JobRequest(specs=tuple(specs), paths=tuple(paths), job_type=job_type,
                              create_archive=create_archive)
    sources = jobs.source_store(services, tenant.tenant)
    try:
        job, created = jobs.store(services, tenant.tenant, request, sources, base_url="")
    finally:
        sources.close()
    assert created
    return job


@contextmanager
def behind_socket(app: Starlette, *, lifespan: bool) -> Iterator[str]:
    """`app` behind a real loopback socket (uvicorn in a thread, its own event loop): its
    base URL. With `lifespan` the server starts and stops the app (executor, webhook
    dispatcher, fetch pool), as `convertly serve` does; without, the app is already started."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none",
                                           lifespan="on" if lifespan else "off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
