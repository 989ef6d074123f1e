"""What players call, with no API key: the playback route (`/video/v1/{playbackId}/{path}`:
manifests, segments, captions, chapters, poster) and `POST /api/video/playback-events`.

Every answer, errors included, carries CORS headers, so a player on another site can read
it (and tell an expired link from a missing file)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from convertly import limits
from convertly.api.errors import error_response
from convertly.api.requests import services
from convertly.errors import (
    ConvertlyError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from convertly.service import Services
from convertly.streams import access, analytics, playback

CHUNK = 256 * 1024
MAX_EVENT_BYTES = 4096
_EVENT_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


def _own_hosts(request: Request) -> tuple[str, ...]:
    """This server's host names: the one the request came in on and the public URL's (the
    dashboard plays any stream)."""
    hosts = {request.url.hostname or ""}
    public = services(request).settings.public_url
    if public:
        hosts.add(urlsplit(public).hostname or "")
    return tuple(sorted(h.lower() for h in hosts if h))


def _playback_request(request: Request) -> playback.Request:
    params = request.path_params
    path = "/".join(p for p in (params.get("folder"), params["name"]) if p)
    return playback.Request(
        playback_id=params["playback_id"], path=path,
        expires=request.query_params.get("expires"), token=request.query_params.get("token"),
        origin=request.headers.get("origin"), referer=request.headers.get("referer"))


async def play(request: Request) -> Response:
    """GET/HEAD a playback file."""
    svc = services(request)
    asked = _playback_request(request)
    cors = access.cors_headers(asked.origin, ())
    try:
        target = await asyncio.to_thread(playback.resolve, svc.streams,
                                         (svc.secret, *svc.old_secrets), asked,
                                         _own_hosts(request))
        cors = access.cors_headers(asked.origin, target.stream.allowed_domains)
        if target.manifest:
            text = await asyncio.to_thread(playback.manifest_text, svc.storage, target, asked)
            body = b"" if request.method == "HEAD" else text.encode()
            return Response(body, media_type=target.mime_type, headers={
                **cors, "Cache-Control": "no-cache", "Content-Length": str(len(text.encode())),
                "X-Content-Type-Options": "nosniff"})
        return await _file(request, svc, target, cors)
    except ConvertlyError as exc:
        response = error_response(exc)
        response.headers.update(cors)
        return response


async def _file(request: Request, svc: Services, target: playback.Target,
                cors: dict[str, str]) -> Response:
    try:
        size = await asyncio.to_thread(svc.storage.size, target.key)
    except FileNotFoundError:
        raise NotFoundError("This stream has no such file.") from None
    wanted = playback.byte_range(request.headers.get("range"), size)
    private = target.stream.access == "signed"
    cache = "max-age=86400, immutable" if target.immutable else "no-cache"
    headers = {**cors, "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff",
               "Cache-Control": f"{'private' if private else 'public'}, {cache}"}
    start, end = wanted if wanted is not None else (0, size - 1)
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD" or length == 0:
        return Response(status_code=status, media_type=target.mime_type, headers=headers)
    try:
        fh = await asyncio.to_thread(svc.storage.open_range, target.key, start, length)
    except FileNotFoundError:
        raise NotFoundError("This stream has no such file.") from None

    def chunks() -> Iterator[bytes]:
        left = length
        with fh:
            while left > 0 and (block := fh.read(min(CHUNK, left))):
                left -= len(block)
                yield block

    return StreamingResponse(chunks(), status_code=status, media_type=target.mime_type,
                             headers=headers)


async def play_options(request: Request) -> Response:
    """The CORS preflight of a playback file (a `Range` header asks for one)."""
    return Response(status_code=204, headers=access.cors_headers(
        request.headers.get("origin"), ()))


def _number(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise InvalidRequestError(f"`{name}` must be a number of seconds (0 or more).")
    return float(value)


def _event_fields(raw: bytes) -> tuple[str, str, str, float | None]:
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidRequestError('Send a JSON object such as {"playbackId": "pb_...", '
                                  '"sessionId": "...", "event": "play", "currentTime": 0}.')
    playback_id, session_id, event = (data.get(k) for k in ("playbackId", "sessionId", "event"))
    if not isinstance(playback_id, str) or not playback_id:
        raise InvalidRequestError("`playbackId` is required: the stream's playback id.")
    if not isinstance(session_id, str) or not analytics.SESSION_ID.match(session_id):
        raise InvalidRequestError("`sessionId` is required: up to 128 letters, digits and "
                                  "`._:-`, one per viewer session.")
    if event not in analytics.EVENTS:
        raise InvalidRequestError(
            f"`event` must be one of {', '.join(sorted(analytics.EVENTS))}.")
    _number(data, "duration")
    return playback_id, session_id, str(event), _number(data, "currentTime")


async def playback_event(request: Request) -> Response:
    """POST /api/video/playback-events: one event of the SDK's player (no API key)."""
    svc = services(request)
    try:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_EVENT_BYTES:
                raise PayloadTooLargeError(f"A playback event is at most {MAX_EVENT_BYTES} "
                                           "bytes of JSON.")
        playback_id, session_id, event, position = _event_fields(bytes(raw))

        address = request.client.host if request.client else ""

        def record() -> None:
            limits.check_playback_event(svc, address)
            stream = svc.streams.by_playback_id(playback_id)
            if stream is None:
                raise NotFoundError("No stream plays under this playback id.")
            access.check_domain(stream.allowed_domains, request.headers.get("origin"),
                                request.headers.get("referer"), _own_hosts(request))
            svc.playback.record(stream.id, session_id, event, position, time.time())

        await asyncio.to_thread(record)
    except ConvertlyError as exc:
        response = error_response(exc)
        response.headers.update(_EVENT_CORS)
        return response
    return JSONResponse({"ok": True}, status_code=202, headers=_EVENT_CORS)


async def playback_event_options(request: Request) -> Response:
    return Response(status_code=204, headers=_EVENT_CORS)
