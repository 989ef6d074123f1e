"""What every request leaves behind: its request id (the client's `X-Request-ID` when it is a
valid one, else a new one) bound to every log line written for it and echoed on its answer;
one access line (method, route template, status, duration, tenant); the HTTP metrics,
labelled by route template (`/api/jobs/{job_id}`), never by raw path; and the RateLimit-*
headers of the caller's rate decision (`request.state.rate_limit`, set by
`api.requests.authenticate`) on every answer of an authenticated request, errors included
(an answer that carries them already, a 429 of another limit, keeps its own)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convertly import limits, logs, metrics
from convertly.api import requests
from convertly.errors import AuthenticationError

access_log = logging.getLogger("convertly.access")

UNMATCHED = "unmatched"  # the route label of a request no route took (a 404)


def route_template(scope: Scope) -> str:
    route: BaseRoute | None = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = logs.valid_request_id(raw) or logs.new_request_id()
        # A fresh context for this request, not reset afterwards: the app's error handler
        # for an unexpected exception runs outside this middleware and still logs with it.
        logs.start(request_id=request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                answer = MutableHeaders(scope=message)
                answer[logs.REQUEST_ID_HEADER] = request_id
                decision = scope["state"].get("rate_limit")
                if decision is not None and "ratelimit-limit" not in answer:
                    for name, value in limits.headers(decision).items():
                        answer[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(seconds)
            access_log.info("%s %s %d %.1f ms", method, route, status, seconds * 1000,
                            extra=logs.access_fields(method, route, scope["path"], status,
                                                     seconds * 1000))


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics: the Prometheus text exposition of every process on this host that
    shares the metrics directory, and this process's queue depth. With
    CONVERTLY_METRICS_TOKEN set it wants `Authorization: Bearer <token>`."""
    token = requests.services(request).settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise AuthenticationError("/metrics wants Authorization: Bearer "
                                      "<CONVERTLY_METRICS_TOKEN>.")
    executor = requests.executor(request)
    body = await asyncio.to_thread(metrics.exposition, [metrics.QueueDepth(executor.queue_depth)])
    return Response(body, media_type=metrics.CONTENT_TYPE)
