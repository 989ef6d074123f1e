"""Endpoints: authenticate, parse the request (forms), call the domain (conversions, jobs,
service), render the answer. Nothing else."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from convertly import conversions, jobevents, jobs, views, webhooks
from convertly.api import forms
from convertly.api.requests import (
    authenticate,
    base_url,
    download_url,
    executor,
    query_int,
    query_wait,
    services,
)
from convertly.converters.archive.converter import ARCHIVE_KINDS, MEDIA_FORMATS
from convertly.errors import (
    ConflictError,
    InvalidFieldError,
    NotFoundError,
)
from convertly.models import (
    Job,
    JobStatus,
    JobType,
    OutputFormat,
    ResizePreset,
)
from convertly.service import Services
from convertly.signing import verify
from convertly.sniff import NAME_EXTENSIONS, NAME_MIME_TYPES, Kind
from convertly.state.records import ApiKey

# --- sync conversions -------------------------------------------------------------------


async def convert(request: Request) -> Response:
    return await _sync(request, JobType.CONVERT)


async def compress(request: Request) -> Response:
    return await _sync(request, JobType.COMPRESS)


async def _sync(request: Request, job_type: JobType) -> Response:
    key = authenticate(request)
    svc = services(request)
    parsed = await forms.read_convert(request, key.tenant, svc.settings, svc.scratch_root,
                                      job_type)
    try:
        outputs = await conversions.run(svc, executor(request), key.tenant, parsed)
        files = [render_output(request, key, output) for output in outputs]
    except BaseException:
        await asyncio.to_thread(forms.discard, parsed)
        raise
    if parsed.save:
        notice = "Uploads and outputs were saved to storage."
    elif any(output.temporary for output in outputs):
        notice = (f"Not saved to storage. Outputs over {svc.settings.data_url_max_bytes} bytes "
                  f"are kept for {svc.settings.temporary_ttl} s behind their download link; "
                  "send saveToStorage=true to keep them.")
    else:
        notice = "Not saved to storage; send saveToStorage=true to keep uploads and outputs."
    # The spool (uploads, outputs) is removed once the answer is sent, not before.
    return JSONResponse({"files": files, "storage": {"saved": parsed.save, "notice": notice}},
                        background=BackgroundTask(forms.discard, parsed))


def render_output(request: Request, key: ApiKey, output: conversions.Output) -> dict[str, Any]:
    out = output.converted
    if output.stored is not None:
        url = download_url(request, key=output.stored.key, tenant=key.tenant,
                           filename=output.name, mime_type=out.mime_type)
    else:
        # At most data_url_max_bytes, just written: read from the page cache at once.
        data = Path(out.path).read_bytes()
        url = f"data:{out.mime_type};base64,{base64.b64encode(data).decode()}"
    original, final = output.original_size, output.final_size
    return {
        "filename": output.name,
        "originalFilename": output.spec.filename,
        "originalSize": original,
        "finalSize": final,
        "savedPercent": round(100 * (original - final) / original, 2) if original else 0.0,
        "mimeType": out.mime_type,
        "format": out.format,
        "width": out.width,
        "height": out.height,
        "downloadUrl": url,
        "appliedQuality": out.applied_quality,
        "storedFileId": None if output.stored is None or output.temporary
        else output.stored.id,
        "notes": list(out.notes),
    }


# --- jobs -------------------------------------------------------------------------------


async def create_job(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    # On S3, sources go to the bucket while the rest of the body arrives.
    sources = jobs.source_store(svc, key.tenant)
    created = False
    try:
        async with forms.receive_job(
                request, key.tenant, svc.settings, svc.scratch_root,
                on_file=lambda index, upload: sources.start(index, upload.filename,
                                                            upload.path)) as parsed:
            job, created = await jobs.create(svc, executor(request), key.tenant, parsed,
                                             sources, base_url(request))
    finally:
        if not created:
            await asyncio.to_thread(sources.discard)
        await asyncio.to_thread(sources.close)
    if created:
        return JSONResponse({"jobId": job.id, "status": JobStatus.PENDING.value})
    return _replayed(job)


def _replayed(job: Job) -> Response:
    return JSONResponse({"jobId": job.id, "status": job.status.value},
                        headers={"Idempotent-Replayed": "true"})


async def list_jobs(request: Request) -> Response:
    key = authenticate(request)
    limit = query_int(request, "limit", 20, 1, 100)
    offset = query_int(request, "offset", 0, 0, 10**9)
    raw_status = request.query_params.get("status")
    status = None
    if raw_status:
        try:
            status = JobStatus(raw_status)
        except ValueError:
            raise InvalidFieldError("status", "use pending, processing, completed or "
                                    "failed.") from None
    page, total = await asyncio.to_thread(
        services(request).jobs.list, key.tenant, limit=limit, offset=offset, status=status
    )
    return JSONResponse({
        "jobs": [render_job(request, job) for job in page],
        "pagination": {"limit": limit, "offset": offset, "total": total,
                       "hasMore": offset + len(page) < total},
    })


async def _job_for(request: Request, key: ApiKey) -> Job:
    job_id = request.path_params["job_id"]
    job = await asyncio.to_thread(services(request).jobs.get, job_id, key.tenant)
    if job is None:
        raise NotFoundError(f"No job {job_id!r} for this API key.")
    return job


async def get_job(request: Request) -> Response:
    key = authenticate(request)
    wait = query_wait(request)
    if not wait:
        return JSONResponse(render_job(request, await _job_for(request, key)))
    job = await jobevents.until_finished(
        services(request).events, request.path_params["job_id"], wait,
        reload=lambda: _job_for(request, key), gone=request.is_disconnected)
    return JSONResponse(render_job(request, job))


async def cancel_job(request: Request) -> Response:
    key = authenticate(request)
    job = await _job_for(request, key)
    cancelled = await asyncio.to_thread(services(request).jobs.cancel, job.id, key.tenant)
    if cancelled is None:
        # Finished (maybe just now, after `_job_for` read it): say which way.
        job = await _job_for(request, key)
        raise ConflictError(f"Job {job.id} is {job.status.value}; only pending or processing "
                            "jobs can be cancelled.")
    executor(request).cancel(cancelled.id)
    await asyncio.to_thread(webhooks.job_finished, services(request), cancelled)
    await asyncio.to_thread(services(request).events.finished, cancelled.id)
    request.app.state.dispatcher.wake()
    return JSONResponse(render_job(request, cancelled))


def render_job(request: Request, job: Job) -> dict[str, Any]:
    return views.job_view(services(request), base_url(request), job)


# --- downloads, formats, health ---------------------------------------------------------


async def download(request: Request) -> Response:
    svc = services(request)
    grant = verify(request.path_params["token"], svc.secret, old=svc.old_secrets)
    headers = {"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"}
    path = await asyncio.to_thread(_local_path, svc, grant.key)
    if path is not None:
        return FileResponse(path, media_type=grant.mime_type, filename=grant.filename,
                            headers=headers)
    headers["Content-Disposition"] = content_disposition(grant.filename)
    try:
        size = await asyncio.to_thread(svc.storage.size, grant.key)
        headers["Content-Length"] = str(size)
        if request.method == "HEAD":
            return Response(media_type=grant.mime_type, headers=headers)
        fh = await asyncio.to_thread(svc.storage.open, grant.key)
    except FileNotFoundError:
        raise NotFoundError("This file no longer exists.") from None

    def chunks() -> Any:
        with fh:
            while block := fh.read(1024 * 1024):
                yield block

    return StreamingResponse(chunks(), media_type=grant.mime_type, headers=headers)


def content_disposition(filename: str) -> str:
    """An attachment header that survives any file name (RFC 6266 filename*)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=utf-8''{quote(filename)}"


def _local_path(svc: Services, key: str) -> Path | None:
    try:
        path = svc.storage.local_path(key)
    except FileNotFoundError:
        path = None
    if path is None and not svc.storage.exists(key):
        raise NotFoundError("This file no longer exists.")
    return path


def _format_entry(kind: Kind, targets: list[OutputFormat]) -> dict[str, Any]:
    """One input of GET /api/formats. `extensions` and `mimeTypes` let a client guess a
    file's kind before sending it; an archive's `entryTargets` are the targets that convert
    the files it holds (the rest re-pack or compress the archive itself)."""
    entry: dict[str, Any] = {
        "kind": kind.value, "family": kind.family, "mimeType": kind.mime_type,
        "targets": sorted(t.value for t in targets),
        "extensions": list(NAME_EXTENSIONS[kind]),
        "mimeTypes": list(NAME_MIME_TYPES.get(kind, (kind.mime_type,))),
    }
    if kind in ARCHIVE_KINDS:
        entry["entryTargets"] = sorted(t.value for t in targets if t in MEDIA_FORMATS)
    return entry


async def formats(request: Request) -> Response:
    registry = services(request).registry
    matrix = registry.matrix()
    inputs = [_format_entry(kind, targets)
              for kind, targets in sorted(matrix.items(), key=lambda kv: kv[0].value)]
    outputs = sorted({t.value for targets in matrix.values() for t in targets})
    compressible = sorted(k.value for k in matrix
                          if k.own_format in {t.value for t in matrix[k]})
    return JSONResponse({
        "inputs": inputs,
        "outputs": outputs,
        "compress": compressible,
        "resizePresets": [p.value for p in ResizePreset],
        "kinds": [k.value for k in Kind],
    })


async def index(request: Request) -> Response:
    return JSONResponse({
        "name": "convertly",
        "docs": f"{base_url(request)}/openapi.json",
        "reference": f"{base_url(request)}/docs",
        "formats": f"{base_url(request)}/api/formats",
    })
