"""The media tool endpoints: POST /api/media/{tool} and POST /api/files/{file_id}/tools."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import mediatools
from convertly.api import forms
from convertly.api.endpoints import render_output
from convertly.api.library import json_object, render_file
from convertly.api.requests import authenticate, base_url, executor, services
from convertly.errors import InvalidFieldError
from convertly.fields import parse_bool
from convertly.models import JobStatus


async def media_tool(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    tool = svc.tools.get(request.path_params["tool"])
    parsed = await forms.read_tool(request, key.tenant, svc.settings, svc.scratch_root, tool)
    try:
        if parsed.queued:
            job, created = await mediatools.queue(svc, executor(request), key.tenant, parsed,
                                                  base_url(request))
            headers = {} if created else {"Idempotent-Replayed": "true"}
            status = JobStatus.PENDING.value if created else job.status.value
            return JSONResponse({"jobId": job.id, "status": status, "tool": tool.name},
                                status_code=202 if created else 200, headers=headers)
        result = await mediatools.run(svc, executor(request), key.tenant, parsed)
        files = [] if result.output is None else [render_output(request, key, result.output)]
    except BaseException:
        await asyncio.to_thread(mediatools.discard, parsed)
        raise
    # The spool (upload, output) is removed once the answer is sent, not before.
    return JSONResponse({"tool": tool.name, "files": files,
                         **_facts(result.facts, parsed.source.filename, files)},
                        background=BackgroundTask(mediatools.discard, parsed))


def _facts(facts: dict[str, Any], filename: str, files: list[Any]) -> dict[str, Any]:
    """A tool's facts in its answer: beside its files, or, for a tool that writes none
    (inspect), as Convertly's `media` object, named after the source."""
    return facts if files else {"media": {"filename": filename, **facts}}


_STORED_FIELDS = {"tool", "params", "preview", "watermarkLogoDataUrl"}


async def stored_file_tool(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    body = await json_object(request, _STORED_FIELDS)
    name = body.get("tool")
    if not isinstance(name, str) or not name:
        raise InvalidFieldError("tool", f"is required: one of {', '.join(svc.tools.names())}.")
    tool = svc.tools.get(name)
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidFieldError("params", "must be a JSON object of the tool's fields.")
    preview = parse_bool(body.get("preview", False), "preview", None)
    svc.scratch_root.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix="tool-", dir=svc.scratch_root))
    try:
        source = await mediatools.fetch_stored(svc, key.tenant, request.path_params["file_id"],
                                               spool)
        parsed = _stored_request(tool, source, params, spool, body.get("watermarkLogoDataUrl"))
        converted, stored = await mediatools.run_on_stored(
            svc, executor(request), key.tenant, request.path_params["file_id"], parsed,
            preview=preview)
        answer: dict[str, Any] = {"tool": tool.name, **_facts(
            converted.facts, source.filename, [converted.path] if converted.path else [])}
        if stored is not None:
            answer["file"] = render_file(request, stored)
        elif preview and converted.path:
            data = Path(converted.path).read_bytes()
            answer["preview"] = {
                "dataUrl": f"data:{converted.mime_type};base64,"
                           f"{base64.b64encode(data).decode()}",
                "mimeType": converted.mime_type, "sizeBytes": len(data),
                "width": converted.width, "height": converted.height,
            }
    finally:
        await asyncio.to_thread(mediatools.discard_spool, spool)
    return JSONResponse(answer)


def _stored_request(tool: Any, source: mediatools.Upload, params: dict[str, Any], spool: Path,
                    logo: Any) -> mediatools.ToolRequest:
    """The request a stored file's tool run makes: `params` are the fields the form route
    takes (string values); a logo data: URL becomes the tool's file option."""
    file_options = mediatools.file_params(tool)
    options = {str(k): v if isinstance(v, str) else _text(v) for k, v in params.items()}
    parts: tuple[tuple[str, mediatools.Upload], ...] = ()
    if logo is not None:
        names = sorted(p.name for p in tool.params if p.name in file_options)
        if not names:
            raise InvalidFieldError("watermarkLogoDataUrl", f"the {tool.name} tool takes no "
                                    "image besides its source.")
        parts = ((names[0], mediatools.data_url_file(logo, "watermarkLogoDataUrl", spool)),)
    mediatools.check_options(tool, options)
    return mediatools.ToolRequest(
        tool=tool, source=source, spool=spool,
        options=tuple((k, v) for k, v in options.items() if k not in file_options),
        file_ids=tuple((k, v) for k, v in options.items() if k in file_options and v),
        file_parts=parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise InvalidFieldError("params", "values must be strings, numbers or booleans.")
