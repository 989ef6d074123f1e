"""Request-free renderings of the wire shapes that more than the endpoints need: a job as
GET /api/jobs/{id} answers it (webhook events carry it too), signed download links and the
archive's name. Core, not HTTP: the endpoints and the webhook sender both render from here."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from convertly.models import FileStatus, Job, JobType, extension_for, mime_for
from convertly.signing import Grant, sign

if TYPE_CHECKING:
    from convertly.service import Services


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def archive_filename(job: Job) -> str:
    return f"convertly-{job.id[:8]}.{extension_for(job.archive_format)}"


def signed_url(svc: Services, base_url: str, *, key: str, tenant: str, filename: str,
               mime_type: str) -> str:
    """A download link under `base_url`, valid for CONVERTLY_DOWNLOAD_URL_TTL seconds."""
    grant = Grant(key=key, tenant=tenant, filename=filename, mime_type=mime_type,
                  expires=int(time.time()) + svc.settings.download_url_ttl)
    return f"{base_url}/api/download/{sign(grant, svc.secret)}"


def job_view(svc: Services, base_url: str, job: Job) -> dict[str, Any]:
    """The job as GET /api/jobs/{id} answers it (webhook events carry the same), with
    download links under `base_url`."""
    results = []
    for result in job.results:
        url = None
        if result.status is FileStatus.COMPLETED and result.output_key:
            url = signed_url(svc, base_url, key=result.output_key, tenant=job.tenant,
                             filename=result.output_filename or "output",
                             mime_type=result.mime_type or "application/octet-stream")
        results.append({
            "index": result.index,
            "filename": result.filename,
            "status": result.status.value,
            "format": result.format,
            "outputFilename": result.output_filename,
            "originalSize": result.original_size,
            "finalSize": result.final_size,
            "mimeType": result.mime_type,
            "appliedQuality": result.applied_quality,
            "width": result.width,
            "height": result.height,
            "downloadUrl": url,
            "storedFileId": result.stored_file_id,
            "error": result.error,
            "errorCode": result.error_code,
            "notes": list(result.notes),
            "progress": 100 if result.status is not FileStatus.PENDING
            else int(100 * result.progress),
            # A media tool's facts (inspect's probe, a storyboard's grid), when it has any.
            **({"facts": result.facts} if result.facts else {}),
        })
    archive = None
    if job.create_archive:
        name = archive_filename(job)
        archive = {
            "filename": name,
            "format": job.archive_format,
            "size": job.archive_size,
            "downloadUrl": signed_url(svc, base_url, key=job.archive_key, tenant=job.tenant,
                                      filename=name, mime_type=mime_for(job.archive_format))
            if job.archive_key else None,
        }
    return {
        "jobId": job.id,
        "jobType": job.job_type.value,
        **({"tool": job.specs[0].tool}
           if job.job_type is JobType.TOOL and job.specs else {}),
        "status": job.status.value,
        "priority": job.priority,
        "totalFiles": job.total_files,
        "completedFiles": job.completed_files,
        "failedFiles": job.failed_files,
        "progress": job.progress,
        "errorMessage": job.error_message,
        "cancelled": job.cancelled,
        "results": results,
        "archive": archive,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "completedAt": iso(job.completed_at),
    }
