"""The route table."""

from __future__ import annotations

from starlette.routing import Route

from convertly.api import endpoints, webhook_endpoints
from convertly.api.openapi import openapi

ROUTES = [
    Route("/", endpoints.index, methods=["GET"]),
    Route("/healthz", endpoints.healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/api/formats", endpoints.formats, methods=["GET"]),
    Route("/api/convert", endpoints.convert, methods=["POST"]),
    Route("/api/compress", endpoints.compress, methods=["POST"]),
    Route("/api/jobs", endpoints.create_job, methods=["POST"]),
    Route("/api/jobs", endpoints.list_jobs, methods=["GET"]),
    Route("/api/jobs/{job_id}", endpoints.get_job, methods=["GET"]),
    Route("/api/jobs/{job_id}", endpoints.cancel_job, methods=["DELETE"]),
    Route("/api/download/{token}", endpoints.download, methods=["GET", "HEAD"]),
    Route("/api/webhooks", webhook_endpoints.create_webhook, methods=["POST"]),
    Route("/api/webhooks", webhook_endpoints.list_webhooks, methods=["GET"]),
    Route("/api/webhooks/deliveries", webhook_endpoints.list_deliveries, methods=["GET"]),
    Route("/api/webhooks/deliveries/{delivery_id}/retry", webhook_endpoints.retry_delivery,
          methods=["POST"]),
    Route("/api/webhooks/{webhook_id}", webhook_endpoints.delete_webhook, methods=["DELETE"]),
]
