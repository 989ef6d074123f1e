"""The video stream endpoints, /api/video/streams (the SDK's `video.streams` methods
create, list, get, update and delete); the domain is `convertly.videostreams`.

A stream is created from a stored video (`sourceFileId`), or, for convenience, from an
upload (multipart: the video in `file`, the options as form fields, JSON values where they
are lists or objects) or a `sourceUrl`; an uploaded or fetched video is stored in the
library first, like any upload, and the stream made from it.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import filenames, library, videostreams, views
from convertly.api import forms
from convertly.api.library import check_fields, json_object
from convertly.api.requests import authenticate, base_url, executor, query_int, services
from convertly.errors import InvalidFieldError, InvalidRequestError
from convertly.streams.model import StreamStatus, VideoStream

MAX_JSON_BYTES = 8 * 1024 * 1024  # captions travel in the body
_SOURCE_FIELDS = ("sourceFileId", "sourceUrl")
_OPTION_FIELDS = {"profile", "renditions", "packageFormats", "segmentDuration", "access",
                  "tokenTtlSeconds", "allowedDomains", "captions", "clip", "title",
                  "description", "tags"}


def render(request: Request, stream: VideoStream) -> dict[str, Any]:
    return views.stream_view(services(request), base_url(request), stream)


def _form_value(raw: str) -> Any:
    """A multipart field's value: JSON when it is a list, an object or a number."""
    text = raw.strip()
    if text[:1] in ("[", "{") or text.replace(".", "", 1).isdigit():
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidRequestError(f"The form field value {text[:40]!r} is not valid "
                                      "JSON.") from None
    return text


async def _store(request: Request, tenant: str, form: forms.ParsedForm) -> str:
    """The one uploaded (or fetched) file of `form`, stored in the library: its id."""
    svc = services(request)
    if len(form.files) != 1 or form.files[0].size == 0:
        raise InvalidFieldError("file", "send one video file (or a sourceUrl, or the "
                                "sourceFileId of a stored video).")
    upload = form.files[0]
    name = filenames.neutral(upload.filename) or "video"
    record = await asyncio.to_thread(library.add_upload, svc, tenant, upload.path, name,
                                     upload.content_type, None)
    return record.id


async def create_stream(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    content_type = request.headers.get("content-type", "")
    form: forms.ParsedForm | None = None
    try:
        if content_type.startswith("multipart/form-data"):
            form = await forms.parse_multipart(request, svc.settings, svc.scratch_root)
            body = {name: _form_value(value) for name, value in form.fields.items()
                    if value.strip()}
        else:
            body = await json_object(request, max_bytes=MAX_JSON_BYTES)
        check_fields(body, _OPTION_FIELDS | set(_SOURCE_FIELDS))
        options = videostreams.parse_options({k: v for k, v in body.items()
                                              if k in _OPTION_FIELDS})
        source_id = body.get("sourceFileId")
        given = [name for name in _SOURCE_FIELDS if body.get(name) is not None]
        if form is not None and form.files:
            given.append("file")
        if len(given) != 1:
            raise InvalidFieldError("sourceFileId", "send exactly one source: sourceFileId "
                                    "(a stored video), an uploaded file, or sourceUrl.")
        if source_id is not None and not isinstance(source_id, str):
            raise InvalidFieldError("sourceFileId", "must be a stored file's id.")
        if body.get("sourceUrl") is not None:
            if form is None:
                spool = Path(tempfile.mkdtemp(prefix="stream-", dir=svc.scratch_root))
                form = forms.ParsedForm(spool=spool)
            form.fields["sourceUrl"] = str(body["sourceUrl"])
            await forms.fetch(request, key.tenant, form, svc.settings)
        if source_id is None:
            assert form is not None
            source_id = await _store(request, key.tenant, form)
    finally:
        if form is not None:
            await asyncio.to_thread(form.cleanup)
    stream = await asyncio.to_thread(videostreams.create, svc, key.tenant, options,
                                     source_file_id=source_id)
    await asyncio.to_thread(executor(request).submit_stream, stream.id)
    return JSONResponse({"stream": render(request, stream)}, status_code=201)


async def list_streams(request: Request) -> Response:
    key = authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    offset = query_int(request, "offset", 0, 0, 10**9)
    raw = request.query_params.get("status")
    status = None
    if raw:
        try:
            status = StreamStatus(raw)
        except ValueError:
            raise InvalidFieldError("status", "use queued, processing, ready or "
                                    "failed.") from None
    page, total = await asyncio.to_thread(services(request).streams.list, key.tenant,
                                          status=status, limit=limit, offset=offset)
    return JSONResponse({
        "streams": [render(request, s) for s in page],
        "pagination": {"limit": limit, "offset": offset, "total": total,
                       "hasMore": offset + len(page) < total},
    })


async def get_stream(request: Request) -> Response:
    key = authenticate(request)
    stream_id = request.path_params["stream_id"]
    stream = await asyncio.to_thread(services(request).streams.get, stream_id, key.tenant)
    if stream is None:
        raise videostreams.not_found(stream_id)
    return JSONResponse({"stream": render(request, stream)})


async def update_stream(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, max_bytes=MAX_JSON_BYTES)
    stream = await asyncio.to_thread(videostreams.update, services(request), key.tenant,
                                     request.path_params["stream_id"], body)
    return JSONResponse({"stream": render(request, stream)})


async def delete_stream(request: Request) -> Response:
    key = authenticate(request)
    stream = await asyncio.to_thread(videostreams.delete, services(request), key.tenant,
                                     request.path_params["stream_id"])
    return JSONResponse({"deleted": True, "id": stream.id})
