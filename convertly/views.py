"""Request-free renderings of the wire shapes that more than the endpoints need: a job as
GET /api/jobs/{id} answers it (webhook events carry it too), signed download links, the
archive's name, and a video stream as GET /api/video/streams/{id} answers it. Core, not
HTTP: the endpoints and the webhook sender both render from here."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from convertly.models import FileStatus, Job, JobType, extension_for, mime_for
from convertly.signing import Grant, sign
from convertly.state.records import StoredFile
from convertly.streams.access import playback_query
from convertly.streams.layout import CHAPTERS, DASH_MANIFEST, MASTER_PLAYLIST, caption_path
from convertly.streams.model import Access, StreamStatus, VideoStream

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


def file_view(svc: Services, base_url: str, record: StoredFile) -> dict[str, Any]:
    """A stored file as GET /api/files/{id} answers it (its `file`; file.uploaded events
    carry the same), with its download link under `base_url`."""
    url = signed_url(svc, base_url, key=record.key, tenant=record.tenant,
                     filename=record.filename, mime_type=record.mime_type)
    return {
        "id": record.id,
        "filename": record.filename,
        "mime_type": record.mime_type,
        "size_bytes": record.size_bytes,
        "folder_id": record.folder_id,
        "cdn_slug": None,
        "width": record.width,
        "height": record.height,
        "duration": record.duration,
        "metadata": {"tags": list(record.tags), "description": record.description,
                     "jobId": record.job_id, "pageCount": record.page_count},
        "created_at": iso(record.created_at),
        "download_url": url,
        "downloadUrl": url,
        "expiresIn": svc.settings.download_url_ttl,
    }


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


# --- video streams -----------------------------------------------------------------------


def playback_url(svc: Services, base_url: str, stream: VideoStream, path: str) -> str:
    """The URL a player fetches `path` of the stream's playback files at; a signed stream's
    carries a token valid for its tokenTtlSeconds."""
    url = f"{base_url}/video/v1/{stream.playback_id}/{path}"
    if stream.access is Access.SIGNED:
        url += "?" + playback_query(stream.playback_id, stream.token_ttl_seconds, svc.secret)
    return url


def stream_view(svc: Services, base_url: str, stream: VideoStream,
                analytics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A video stream as GET /api/video/streams/{id} answers it (inside `{"stream": ...}`;
    the video.stream.* webhook events carry it too), playback URLs under `base_url`."""
    ready = stream.status is StreamStatus.READY
    hls = playback_url(svc, base_url, stream, MASTER_PLAYLIST) if ready and stream.hls \
        else None
    dash = playback_url(svc, base_url, stream, DASH_MANIFEST) if ready and stream.dash \
        else None
    if ready:
        progress = 100
    elif not stream.renditions:
        progress = 0
    else:  # encoding is 95 % of the work, packaging the rest
        done = sum(r.progress for r in stream.renditions) / len(stream.renditions)
        progress = min(99, int(95 * done))
    clip = stream.clip
    return {
        "id": stream.id,
        "assetId": stream.id,
        "playbackId": stream.playback_id,
        "sourceFileId": stream.source_file_id,
        "status": stream.status.value,
        "progress": progress,
        "profile": stream.profile.value,
        "duration": stream.duration,
        "width": stream.width,
        "height": stream.height,
        "manifestUrl": hls or dash,
        "hlsManifestUrl": hls,
        "dashManifestUrl": dash,
        "posterUrl": playback_url(svc, base_url, stream, stream.poster)
        if stream.poster else None,
        "packageFormats": [p.value for p in stream.package_formats],
        "segmentDuration": stream.segment_duration,
        "clip": None if clip is None else {
            "start": clip.start, "end": clip.end, "duration": clip.duration,
            "mode": clip.mode.value},
        "renditions": [{
            "id": r.id,
            "width": r.width,
            "height": r.height,
            "bitrate": r.bitrate,
            "audioBitrate": r.audio_bitrate,
            "averageBitrate": r.average_bitrate,
            "codec": r.codec,
            "audioCodec": r.audio_codec,
            "segmentCount": r.segment_count,
        } for r in stream.renditions],
        "access": stream.access.value,
        "tokenTtlSeconds": stream.token_ttl_seconds,
        "allowedDomains": list(stream.allowed_domains),
        "captions": [{
            "id": c.id, "label": c.label, "language": c.language, "kind": c.kind,
            "url": playback_url(svc, base_url, stream, caption_path(c.id)) if ready else None,
        } for c in stream.captions],
        "chapters": [{"id": c.id, "title": c.title, "start": c.start}
                     for c in stream.chapters],
        "chaptersUrl": playback_url(svc, base_url, stream, CHAPTERS)
        if ready and stream.chapters else None,
        "title": stream.title,
        "description": stream.description,
        "tags": list(stream.tags),
        "engagement": stream.engagement,
        "analytics": analytics if analytics is not None
        else svc.playback.counts(stream.id).to_wire(),
        "error": stream.error,
        "errorCode": stream.error_code,
        "createdAt": iso(stream.created_at),
        "readyAt": iso(stream.ready_at),
    }
