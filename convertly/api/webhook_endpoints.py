"""Webhook endpoints of an account and their delivery log: parse, call, render."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import webhooks
from convertly.api.requests import authenticate, base_url, query_int, services
from convertly.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from convertly.state.records import Delivery, DeliveryStatus, Endpoint
from convertly.views import iso

MAX_BODY_BYTES = 64 * 1024


def render_endpoint(endpoint: Endpoint, *, secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events) if endpoint.events is not None else ["*"],
        "createdAt": iso(endpoint.created_at),
    }
    if secret:
        body["secret"] = endpoint.secret
    return body


def render_delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "eventId": delivery.event_id,
        "type": delivery.event_type,
        "endpointId": delivery.endpoint_id,
        "jobId": delivery.job_id,
        "url": delivery.url,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "maxAttempts": delivery.max_attempts,
        "responseCode": delivery.response_code,
        "responseExcerpt": delivery.response_excerpt,
        "lastError": delivery.last_error,
        "nextAttemptAt": iso(delivery.next_attempt_at)
        if delivery.status is DeliveryStatus.PENDING else None,
        "lastAttemptAt": iso(delivery.last_attempt_at),
        "createdAt": iso(delivery.created_at),
        "finishedAt": iso(delivery.finished_at),
    }


async def _fields(request: Request) -> dict[str, Any]:
    """The request's fields: a JSON object, or form fields (urlencoded or multipart)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        async with request.form(max_files=0, max_fields=20) as form:
            return {k: v for k, v in form.items() if isinstance(v, str)}
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLargeError(f"The body is over {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidRequestError('Send a JSON object such as {"url": "https://...", '
                                  '"events": ["conversion.completed"]}.')
    return data


async def create_webhook(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    fields = await _fields(request)
    endpoint = await asyncio.to_thread(webhooks.create_endpoint, svc, key.tenant,
                                       fields.get("url"), fields.get("events"),
                                       base_url(request))
    return JSONResponse(render_endpoint(endpoint, secret=True), status_code=201)


async def list_webhooks(request: Request) -> Response:
    key = authenticate(request)
    found = await asyncio.to_thread(services(request).webhooks.endpoints, key.tenant)
    return JSONResponse({"webhooks": [render_endpoint(e) for e in found]})


async def delete_webhook(request: Request) -> Response:
    key = authenticate(request)
    webhook_id = request.path_params["webhook_id"]
    removed = await asyncio.to_thread(services(request).webhooks.remove_endpoint,
                                      webhook_id, key.tenant)
    if not removed:
        raise NotFoundError(f"No webhook endpoint {webhook_id!r} for this API key.")
    return JSONResponse({"id": webhook_id, "deleted": True})


async def list_deliveries(request: Request) -> Response:
    key = authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    offset = query_int(request, "offset", 0, 0, 10**9)
    job_id = request.query_params.get("jobId") or None
    found, total = await asyncio.to_thread(services(request).webhooks.deliveries,
                                           key.tenant, job_id=job_id, limit=limit,
                                           offset=offset)
    return JSONResponse({
        "deliveries": [render_delivery(d) for d in found],
        "pagination": {"limit": limit, "offset": offset, "total": total,
                       "hasMore": offset + len(found) < total},
    })


async def retry_delivery(request: Request) -> Response:
    key = authenticate(request)
    store = services(request).webhooks
    delivery_id = request.path_params["delivery_id"]
    delivery = await asyncio.to_thread(store.delivery, delivery_id, key.tenant)
    if delivery is None:
        raise NotFoundError(f"No webhook delivery {delivery_id!r} for this API key.")
    again = None
    if delivery.status is not DeliveryStatus.PENDING:
        again = await asyncio.to_thread(store.retry, delivery_id, key.tenant, time.time())
    if again is None:
        raise ConflictError(f"Delivery {delivery_id} is still pending; it is retried on "
                            "its own.")
    request.app.state.dispatcher.wake()
    return JSONResponse(render_delivery(again))
