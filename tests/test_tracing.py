"""OpenTelemetry tracing, opt-in (`convertly[otel]`, installed with the dev extra): requests
become server spans; in distributed mode the Celery task a request queues is a span of the
same trace, exported by the worker over OTLP/HTTP; asked for without the packages, tracing
is refused in one line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from convertly import tracing
from convertly.app import create_app
from convertly.settings import Settings, SettingsError
from tests import images
from tests.api.support import new_tenant, post, running_app, wait_for_job
from tests.cluster import Cluster
from tests.receiver import Receiver


def test_requests_become_server_spans(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, workers=1)
    app = create_app(settings)
    exporter = InMemorySpanExporter()
    tracing.instrument_app(app, settings, exporter)
    with TestClient(app) as client:
        response = client.get("/api/formats", headers={"traceparent":
                              "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        assert response.status_code == 200
    [server] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.name.startswith("GET")
    assert server.attributes is not None
    assert server.attributes.get("http.response.status_code",
                                 server.attributes.get("http.status_code")) == 200
    # The caller's trace is continued, not a new one started.
    assert f"{server.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"


def test_tracing_without_the_packages_is_one_clear_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    settings = Settings(data_dir=tmp_path, otlp_endpoint="http://127.0.0.1:4318/v1/traces")
    with pytest.raises(SettingsError) as raised:
        tracing.check(settings)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("CONVERTLY_OTLP_ENDPOINT: tracing needs the OpenTelemetry")
    assert "pip install 'convertly[otel]'" in message
    tracing.check(Settings(data_dir=tmp_path))  # not asked for: nothing is imported


def test_otlp_endpoint_must_be_a_url(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CONVERTLY_OTLP_ENDPOINT: expected an http"):
        Settings.from_env({"CONVERTLY_OTLP_ENDPOINT": "collector:4318"}, env_file=None)


def _spans(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(service name, span name, trace id) of every span the receiver was sent."""
    found = []
    for request in receiver.requests:
        if request.path != "/v1/traces":
            continue
        batch = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in batch.resource_spans:
            service = next(a.value.string_value for a in resource_spans.resource.attributes
                           if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                found.extend((service, span.name, span.trace_id.hex()) for span in scope.spans)
    return found


def test_a_job_is_one_trace_from_the_request_to_the_worker(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the worker exports every 0.1 s
    with Receiver() as receiver:
        settings = cluster.settings_for(Settings(
            data_dir=tmp_path, workers=1, otlp_endpoint=receiver.url("/v1/traces"),
            otel_service_name="convertly-test"))
        with running_app("distributed", settings, cluster) as env:
            tenant = new_tenant(env.services)
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            response = post(env.client, "/api/jobs", tenant, [("a.png", images.png(40, 30))],
                            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
                            format="webp")
            assert response.status_code == 200, response.text
            job_id = response.json()["jobId"]
            assert wait_for_job(env.client, tenant, job_id)["status"] == "completed"
            deadline = time.monotonic() + 15
            while not any(name.startswith("run/") and tid == trace_id
                          for _, name, tid in _spans(receiver)):
                assert time.monotonic() < deadline, f"no worker span: {_spans(receiver)}"
                time.sleep(0.1)
        spans = [(name, tid) for _, name, tid in _spans(receiver) if tid == trace_id]
        names = [name for name, _ in spans]
        assert any(name.startswith("POST") for name in names), names  # the API's request
        assert any(name.startswith("apply_async/") for name in names), names  # its publish
        assert any(name == "run/convertly.run_file" for name in names), names  # the worker
