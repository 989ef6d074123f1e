"""Adds the RateLimit-* headers of the caller's rate decision (`request.state.rate_limit`,
set by `api.requests.authenticate`) to every answer of an authenticated request, errors
included; an answer that already carries them (a 429 of another limit) keeps its own."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convertly import limits


class RateLimitHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = scope.get("state", {}).get("rate_limit")
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    if "ratelimit-limit" not in headers:
                        for name, value in limits.headers(decision).items():
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
