"""What an operator watches: /metrics moves as requests, conversions and webhook deliveries
happen (in distributed mode the conversions are counted by the worker, on its own metrics
port); every answer carries a request id, which reaches the log lines of its request, the
worker that converts its job and the job's webhook deliveries."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from convertly import logs, metrics
from convertly.settings import Secret, Settings
from tests import images
from tests.api.support import (
    AppEnv,
    Tenant,
    convert_ok,
    create_job,
    deployed,
    post,
    running_app,
    wait_for_job,
)
from tests.cluster import Cluster
from tests.infra import free_ports, terminate
from tests.receiver import Receiver

HOOKS = {"webhook_allow_private": True, "webhook_retry_delay": 0.05,
         "webhook_retry_max_delay": 0.2, "webhook_timeout": 2.0}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def obs_env(mode: str, tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[AppEnv]:
    settings, cluster = deployed(
        mode, Settings(data_dir=tmp_path_factory.mktemp(f"obs-{mode}"), workers=1,
                       worker_metrics_port=free_ports(1)[0], **HOOKS), request)
    with running_app(mode, settings, cluster) as env:
        yield env


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def api_metrics(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def conversion_metrics(env: AppEnv) -> Samples:
    """Where conversions are counted: the API's /metrics (embedded: its pool's processes
    share its metrics directory), the worker's metrics port (distributed)."""
    if env.mode == "embedded":
        return api_metrics(env.client)
    port = env.settings.worker_metrics_port
    return parse(httpx2.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def eventually(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def test_metrics_move_as_requests_conversions_and_deliveries_happen(
        obs_env: AppEnv, receiver: Receiver) -> None:
    client = obs_env.client
    tenant = obs_env.new_tenant()
    before, converted_before = api_metrics(client), conversion_metrics(obs_env)

    convert_ok(client, tenant, [("a.png", images.png(40, 30))], format="webp")
    hook = client.post("/api/webhooks", headers=tenant.headers,
                       json={"url": receiver.url(f"/obs/{tenant.tenant}"),
                             "events": ["conversion.completed"]})
    assert hook.status_code == 201, hook.text
    job_id = create_job(client, tenant, [("b.png", images.png(40, 30))], format="jpg")
    assert wait_for_job(client, tenant, job_id)["status"] == "completed"
    missing = client.get(f"/api/jobs/{uuid.uuid4()}", headers=tenant.headers)
    assert missing.status_code == 404
    receiver.wait_for(f"/obs/{tenant.tenant}", lambda got: len(got) >= 1)

    def delivered() -> bool:
        now = api_metrics(client)
        return (value(now, "convertly_webhook_deliveries_total", outcome="succeeded")
                > value(before, "convertly_webhook_deliveries_total", outcome="succeeded"))

    eventually(delivered, "a succeeded webhook delivery counted")
    after = api_metrics(client)

    def grew(name: str, samples: Samples, earlier: Samples, **labels: str) -> float:
        return value(samples, name, **labels) - value(earlier, name, **labels)

    # Requests by route template (never the raw path, which holds ids) and status.
    assert grew("convertly_http_requests_total", after, before,
                method="POST", route="/api/convert", status="200") == 1
    assert grew("convertly_http_requests_total", after, before,
                method="GET", route="/api/jobs/{job_id}", status="404") == 1
    assert not any(job_id in dict(labels).get("route", "") for _, labels in after)
    assert grew("convertly_http_request_duration_seconds_count", after, before,
                method="POST", route="/api/convert") == 1
    assert grew("convertly_http_request_duration_seconds_bucket", after, before,
                method="POST", route="/api/convert", le="+Inf") == 1
    # Queue depth, read at scrape time: every level of every queue, none waiting now.
    depth = {dict(labels)["priority"]: v for (name, labels), v in after.items()
             if name == "convertly_queue_depth"}
    assert depth, "no convertly_queue_depth samples"
    if obs_env.mode == "distributed":
        assert {"urgent", "high", "head", "bulk", "low"} <= depth.keys()
    assert sum(depth.values()) == 0

    # Conversions, counted where they ran, by kind, source, target, mode and outcome.
    def conversions_counted() -> bool:
        now = conversion_metrics(obs_env)
        return all(grew("convertly_conversions_total", now, converted_before, kind="image",
                        source="png", target=target, mode=mode, outcome="completed") == 1
                   for target, mode in (("webp", "sync"), ("jpg", "job")))

    eventually(conversions_counted, "both conversions counted", timeout=10)
    converted = conversion_metrics(obs_env)
    assert grew("convertly_conversion_duration_seconds_count", converted, converted_before,
                kind="image", target="jpg", mode="job") == 1
    # What a scrape shows is what convertly.metrics declares (the dashboard is held to it);
    # storage errors appear once one happened.
    shown = {name for name, _ in [*after, *converted]}
    assert shown <= metrics.EXPORTED
    assert metrics.EXPORTED - shown == {"convertly_storage_errors_total"}


def test_failed_conversions_are_counted_as_failed(obs_env: AppEnv) -> None:
    client, tenant = obs_env.client, obs_env.new_tenant()
    before = conversion_metrics(obs_env)
    broken = images.png(40, 30)[:60]  # a PNG cut short: its conversion fails
    job_id = create_job(client, tenant, [("cut.png", broken)], format="webp")
    assert wait_for_job(client, tenant, job_id)["status"] == "failed"

    def counted() -> bool:
        now = conversion_metrics(obs_env)
        labels = {"kind": "image", "source": "png", "target": "webp", "mode": "job",
                  "outcome": "failed"}
        return (value(now, "convertly_conversions_total", **labels)
                - value(before, "convertly_conversions_total", **labels)) == 1

    eventually(counted, "the failed conversion counted", timeout=10)


def test_request_id_is_echoed_and_reaches_deliveries_and_workers(
        obs_env: AppEnv, receiver: Receiver, request: pytest.FixtureRequest) -> None:
    client, tenant = obs_env.client, obs_env.new_tenant()
    given = "obs-" + uuid.uuid4().hex
    hook = client.post("/api/webhooks", headers=tenant.headers,
                       json={"url": receiver.url(f"/rid/{tenant.tenant}"),
                             "events": ["conversion.completed"]})
    assert hook.status_code == 201
    response = post(client, "/api/jobs", tenant, [("b.png", images.png(40, 30))],
                    headers={"X-Request-ID": given}, format="webp")
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == given
    job_id = response.json()["jobId"]
    assert wait_for_job(client, tenant, job_id)["status"] == "completed"
    got = receiver.wait_for(f"/rid/{tenant.tenant}", lambda found: len(found) >= 1)
    assert got[0].headers["x-request-id"] == given
    if obs_env.mode == "distributed":
        # The worker's lines for the task carry the id its message brought (JSON lines:
        # its log is a file, not a terminal).
        cluster: Cluster = request.getfixturevalue("cluster")
        [worker] = [w for w in cluster.workers
                    if w.settings.broker_url == obs_env.settings.broker_url]

        def logged() -> bool:
            lines = [json.loads(raw) for raw in worker.log_tail(10_000_000).splitlines()
                     if raw.startswith("{")]
            return any(line.get("request_id") == given and line.get("job_id") == job_id
                       for line in lines)

        eventually(logged, "a worker log line with the request id and job id", timeout=10)


@pytest.mark.parametrize("given", ["", "x" * 129, "bad id", "na\xefve".encode("latin-1"), "a;b"])
def test_an_invalid_request_id_is_replaced(app_env: AppEnv, given: str | bytes) -> None:
    response = app_env.client.get("/api/formats", headers={"X-Request-ID": given})
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed != given and len(echoed) == 32 and int(echoed, 16) >= 0


def test_every_answer_carries_a_request_id(app_env: AppEnv) -> None:
    for response in (app_env.client.get("/nowhere"),
                     app_env.client.get("/api/jobs"),  # 401: no key
                     app_env.client.get("/healthz")):
        assert len(response.headers["x-request-id"]) == 32


def test_access_line_has_request_id_route_status_and_tenant(
        app_env: AppEnv, tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    given = "access-" + uuid.uuid4().hex
    with caplog.at_level(logging.INFO, logger="convertly.access"):
        response = app_env.client.get(f"/api/jobs/{uuid.uuid4()}",
                                      headers={**tenant.headers, "X-Request-ID": given})
    assert response.status_code == 404
    [line] = [r for r in caplog.records
              if r.name == "convertly.access" and getattr(r, "request_id", None) == given]
    assert line.route == "/api/jobs/{job_id}"  # type: ignore[attr-defined]
    assert line.status == 404  # type: ignore[attr-defined]
    assert line.tenant == tenant.tenant  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    rendered = json.loads(logs.JsonFormatter().format(line))
    assert rendered["request_id"] == given and rendered["tenant"] == tenant.tenant
    assert rendered["method"] == "GET" and rendered["status"] == 404
    assert "[request_id=" + given in logs.TextFormatter().format(line)


def test_metrics_token_guards_metrics(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, workers=1, metrics_token=Secret("s3cret"))
    with running_app("embedded", settings) as env:
        refused = env.client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["code"] == "UNAUTHORIZED"
        wrong = env.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        api_metrics(env.client, Authorization="Bearer s3cret")


def test_serve_writes_json_lines_with_the_request_id(tmp_path: Path) -> None:
    """`convertly serve` with CONVERTLY_LOG_FORMAT=json: uvicorn's lines and the app's are
    all JSON objects, and the request's access line carries its id, route and tenant."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CONVERTLY_", "PROMETHEUS_"))}
    port = free_ports(1)[0]
    env.update({"CONVERTLY_DATA_DIR": str(tmp_path / "data"), "CONVERTLY_WORKERS": "1",
                "CONVERTLY_LOG_FORMAT": "json", "CONVERTLY_LOG_LEVEL": "info"})
    stderr_path = tmp_path / "stderr.log"
    convertly = str(Path(sys.executable).parent / "convertly")
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen([convertly, "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    given = "serve-" + uuid.uuid4().hex
    try:
        def answering() -> bool:
            assert process.poll() is None, stderr_path.read_text()
            try:
                return httpx2.get(f"{base}/api/formats", timeout=2).status_code == 200
            except httpx2.TransportError:
                return False

        eventually(answering, "convertly serve answering")
        response = httpx2.get(f"{base}/api/jobs/{uuid.uuid4()}", timeout=10,
                              headers={"X-Request-ID": given, "x-api-key": "cvly_wrong"})
        assert response.status_code == 401
        assert response.headers["x-request-id"] == given
    finally:
        assert terminate(process), "convertly serve did not stop on SIGTERM"
    lines = [json.loads(raw) for raw in stderr_path.read_text().splitlines() if raw.strip()]
    assert {"uvicorn.error", "convertly.access"} <= {line["logger"] for line in lines}
    [access] = [line for line in lines if line.get("request_id") == given]
    assert access["logger"] == "convertly.access"
    assert access["route"] == "/api/jobs/{job_id}" and access["status"] == 401
    assert access["method"] == "GET" and access["duration_ms"] >= 0
