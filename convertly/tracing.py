"""OpenTelemetry tracing, opt-in: `pip install 'convertly[otel]'` and set
CONVERTLY_OTLP_ENDPOINT (an OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces).

Then every HTTP request is a server span (the ASGI instrumentation), every Celery task sent
and run is a span joined to the request that sent it (the Celery instrumentation carries
the trace context in the message), and spans go to the endpoint in batches. Nothing here
is imported unless tracing is asked for; asked for without the packages, it is one line
naming what to install.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from convertly.settings import Settings, SettingsError

EXTRA = "pip install 'convertly[otel]'"


def enabled(settings: Settings) -> bool:
    return bool(settings.otlp_endpoint)


def check(settings: Settings) -> None:
    """Raise SettingsError (one line) when tracing is asked for and the packages are
    missing: at start, before anything runs."""
    if enabled(settings):
        _otel()


def _otel() -> SimpleNamespace:
    """The OpenTelemetry parts used here, or one line saying what to install."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise SettingsError(
            f"CONVERTLY_OTLP_ENDPOINT: tracing needs the OpenTelemetry packages, which are "
            f"not installed ({exc.name}); {EXTRA}, or leave CONVERTLY_OTLP_ENDPOINT empty."
        ) from None
    return SimpleNamespace(
        OTLPSpanExporter=OTLPSpanExporter, OpenTelemetryMiddleware=OpenTelemetryMiddleware,
        CeleryInstrumentor=CeleryInstrumentor, Resource=Resource,
        TracerProvider=TracerProvider, BatchSpanProcessor=BatchSpanProcessor,
        SimpleSpanProcessor=SimpleSpanProcessor)


def provider(settings: Settings, exporter: Any = None) -> Any:
    """A tracer provider for this process sending spans to `exporter` (default: OTLP/HTTP
    to CONVERTLY_OTLP_ENDPOINT), batched; an exporter given (an in-memory one in tests) is
    sent each span as it ends. Raises SettingsError (one line) when the packages are
    missing."""
    otel = _otel()
    traced = otel.TracerProvider(resource=otel.Resource.create(
        {"service.name": settings.otel_service_name}))
    if exporter is None:
        traced.add_span_processor(otel.BatchSpanProcessor(
            otel.OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    else:
        traced.add_span_processor(otel.SimpleSpanProcessor(exporter))
    return traced


def instrument_app(app: Any, settings: Settings, exporter: Any = None) -> Any:
    """Trace `app`'s requests (a Starlette app, before it starts) and the Celery tasks this
    process sends. Returns the tracer provider."""
    traced = provider(settings, exporter)
    app.add_middleware(_otel().OpenTelemetryMiddleware, tracer_provider=traced)
    if settings.distributed:
        instrument_celery(traced)
    return traced


def instrument_celery(traced: Any) -> None:
    """Spans for the Celery tasks this process sends or runs (a worker calls it in each
    pool process, after the fork)."""
    instrumentor = _otel().CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=traced)
