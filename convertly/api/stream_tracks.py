"""A stream's captions, chapters, poster and thumbnail candidates
(/api/video/streams/{id}/captions, /chapters, /poster, /thumbnails); the domain is
`convertly.streamtracks`. Each change answers with the stream, as GET answers it."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import streamtracks, views
from convertly.api import forms
from convertly.api.library import json_object
from convertly.api.requests import authenticate, base_url, services
from convertly.api.streams import MAX_JSON_BYTES, render
from convertly.errors import InvalidFieldError
from convertly.streams import layout


async def add_caption(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, max_bytes=MAX_JSON_BYTES)
    stream = await asyncio.to_thread(streamtracks.add_caption, services(request), key.tenant,
                                     request.path_params["stream_id"], body)
    return JSONResponse({"stream": render(request, stream)}, status_code=201)


async def remove_caption(request: Request) -> Response:
    key = authenticate(request)
    stream = await asyncio.to_thread(streamtracks.remove_caption, services(request),
                                     key.tenant, request.path_params["stream_id"],
                                     request.query_params.get("captionId"))
    return JSONResponse({"stream": render(request, stream)})


async def replace_chapters(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, max_bytes=MAX_JSON_BYTES)
    stream = await asyncio.to_thread(streamtracks.replace_chapters, services(request),
                                     key.tenant, request.path_params["stream_id"], body)
    return JSONResponse({"stream": render(request, stream)})


async def remove_chapter(request: Request) -> Response:
    key = authenticate(request)
    stream = await asyncio.to_thread(streamtracks.remove_chapter, services(request),
                                     key.tenant, request.path_params["stream_id"],
                                     request.query_params.get("chapterId"))
    return JSONResponse({"stream": render(request, stream)})


async def set_poster(request: Request) -> Response:
    """JSON {timeSeconds}: a frame of the video; multipart `poster`: an image."""
    key = authenticate(request)
    svc = services(request)
    stream_id = request.path_params["stream_id"]
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        body = await json_object(request, max_bytes=MAX_JSON_BYTES)
        stream = await asyncio.to_thread(streamtracks.poster_at, svc, key.tenant, stream_id,
                                         body)
        return JSONResponse({"stream": render(request, stream)})
    form = await forms.parse_multipart(request, svc.settings, svc.scratch_root,
                                       file_fields=("poster",))
    try:
        posters = [f for f in form.files if f.field == "poster"]
        if len(posters) != 1 or posters[0].size == 0:
            raise InvalidFieldError("poster", "send one image in the `poster` field.")
        stream = await asyncio.to_thread(streamtracks.poster_upload, svc, key.tenant,
                                         stream_id, posters[0].path)
    finally:
        await asyncio.to_thread(form.cleanup)
    return JSONResponse({"stream": render(request, stream)})


async def list_thumbnails(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    stream_id = request.path_params["stream_id"]
    candidates = await asyncio.to_thread(streamtracks.thumbnails, svc, key.tenant, stream_id)
    stream = await asyncio.to_thread(svc.streams.get, stream_id, key.tenant)
    if stream is None:
        return JSONResponse({"thumbnails": []})
    base = base_url(request)
    return JSONResponse({"thumbnails": [
        {"id": str(number), "timeSeconds": seconds,
         "url": views.playback_url(svc, base, stream, layout.thumbnail_path(number))}
        for number, seconds in candidates]})
