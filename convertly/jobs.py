"""Creating a job: from a parsed request to a stored job whose files are queued.

One trip down: the endpoint hands over the parsed request (`JobRequest`) and the sources
being stored; this module replays an idempotent request, checks the queue's capacity and
the tenant's limits (`convertly.limits`), stores the job, adds its callback endpoint,
stores its sources (see `sources.SourceStore`) and queues each file as its source lands.

Idempotency: a job created with an Idempotency-Key keeps the `fingerprint` of its request
(every field that shapes the job, and each source's digest, in order) in `extra`. The same
key with the same request replays that job; with another request it is refused
(IdempotencyMismatchError, 409), as Stripe does. A job stored before fingerprints were kept
has none and is replayed as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from convertly import limits, logs, pipeline, service, webhooks
from convertly.errors import IdempotencyMismatchError
from convertly.executors.base import Executor
from convertly.models import FileResult, FileSpec, FileStatus, Job, JobStatus, JobType
from convertly.service import Services
from convertly.sources import SourceStore
from convertly.state.records import JobQuota


@dataclass(frozen=True)
class JobRequest:
    """A job to create, parsed and checked (`api.forms.receive_job` builds it from POST
    /api/jobs): one spec per spooled source file, in order."""

    specs: tuple[FileSpec, ...]
    paths: tuple[Path, ...]
    job_type: JobType = JobType.CONVERT
    create_archive: bool = False
    archive_format: str = "zip"
    priority: str = "normal"
    # saveToStorage: the outputs stay as stored files once the job expires.
    save: bool = False
    callback: webhooks.Callback | None = None
    idempotency_key: str | None = None
    # Per source, in order: "sha256:<hex>" of an upload's bytes (taken while it streamed),
    # "url:<url>" of a sourceUrl. Only the fingerprint reads them.
    digests: tuple[str, ...] = ()
    # Per source, in order: its first bytes when the parse kept them (`sniff.HEAD_BYTES`),
    # else b"" (the spooled file is read for them).
    heads: tuple[bytes, ...] = ()

    @property
    def sources(self) -> list[tuple[int, str, Path]]:
        """(index, filename, spooled path) of every file."""
        return [(s.index, s.filename, p) for s, p in zip(self.specs, self.paths, strict=True)]


FINGERPRINT = "fingerprint"  # the key of a job's request fingerprint in `Job.extra`
SAVED = "saved"  # in `Job.extra` when the job was sent with saveToStorage=true


def fingerprint(request: JobRequest) -> str:
    """A digest of everything in `request` that shapes its job: the job's own fields, each
    file's settings and name, and each source's digest, in order. Two requests that differ
    only in how a value was spelled (a default sent or left out) have the same one."""
    callback = request.callback
    shape = {
        "jobType": request.job_type.value,
        "createArchive": request.create_archive,
        "archiveFormat": request.archive_format,
        "priority": request.priority,
        # Only when sent, so fingerprints of requests without it are those of before.
        **({"saveToStorage": True} if request.save else {}),
        "callback": None if callback is None else [
            callback.url, hashlib.sha256(callback.secret.encode()).hexdigest()],
        "files": [spec.to_dict() for spec in request.specs],
        "sources": list(request.digests),
    }
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"), default=str)
    return "v1:" + hashlib.sha256(text.encode()).hexdigest()


def replayed(earlier: Job, request: JobRequest) -> Job:
    """`earlier`, the job `request`'s Idempotency-Key names, when it was created by the same
    request (or before fingerprints were kept); else IdempotencyMismatchError."""
    kept = earlier.extra.get(FINGERPRINT)
    if kept is not None and kept != fingerprint(request):
        raise IdempotencyMismatchError(
            f"This Idempotency-Key was first used for job {earlier.id} with a different "
            "request (other fields or other files). Send exactly that request again to get "
            "the job, or use a new key for a new job.",
            detail={"jobId": earlier.id})
    return earlier


def source_store(svc: Services, tenant: str) -> SourceStore:
    """Where a new job's sources go, under a job id chosen now (the keys are job-scoped)."""
    job_id = new_job_id()

    def key_for(index: int, filename: str) -> str:
        return service.source_key(tenant, job_id, FileSpec(index=index, filename=filename))

    return SourceStore(svc.storage, job_id, service.job_prefix(tenant, job_id), key_for)


async def create(svc: Services, executor: Executor, tenant: str, request: JobRequest,
                 sources: SourceStore, base_url: str) -> tuple[Job, bool]:
    """The job for `request`, stored and queued: (job, True); or the earlier job its
    idempotency key names: (job, False), and nothing is stored. `base_url` is where the
    callback's download links point. On failure nothing stays stored; the caller discards
    `sources` whenever no job was created, and closes it."""
    if request.idempotency_key is not None:
        earlier = await asyncio.to_thread(svc.jobs.by_idempotency_key, tenant,
                                          request.idempotency_key, svc.settings.idempotency_ttl)
        if earlier is not None:
            return replayed(earlier, request), False
    executor.check_capacity(len(request.specs))
    own = await asyncio.to_thread(limits.for_tenant, svc, tenant)
    await asyncio.to_thread(limits.require_storage, svc, tenant, 0)
    job, created = await asyncio.to_thread(store, svc, tenant, request, sources, base_url,
                                           executor.submit_file, own.job_quota)
    if created:
        executor.submitted(job)
    return job, created


def store(svc: Services, tenant: str, request: JobRequest, sources: SourceStore,
          base_url: str, submit_file: Callable[[Job, int], None] | None = None,
          quota: JobQuota | None = None) -> tuple[Job, bool]:
    """Store the job, then its sources, and `submit_file(job, index)` each file as its
    source lands, so that conversions start while the others are still being stored; the
    job's callback endpoint is added before the first file is submitted. (job, False) when
    the idempotency key replays a job (nothing is stored then; IdempotencyMismatchError
    when that job was made by another request). When storing fails, the job is deleted
    again and the error propagates. A `quota` the tenant's jobs in flight would pass
    refuses the job (`JobStore.create`)."""
    specs = request.specs
    job = Job(
        id=sources.job_id, tenant=tenant, job_type=request.job_type,
        status=JobStatus.PENDING, specs=specs,
        results=tuple(FileResult(index=s.index, filename=s.filename, status=FileStatus.PENDING)
                      for s in specs),
        create_archive=request.create_archive, archive_format=request.archive_format,
        created_at=time.time(),
        extra={"families": [pipeline.task_family(path, s.format.value if s.format else None,
                                                svc.registry, head)
                            for s, path, head in zip(specs, request.paths,
                                                     request.heads or [b""] * len(specs),
                                                     strict=True)],
               "priority": request.priority,
               **({SAVED: True} if request.save else {}),
               **({webhooks.REQUEST_ID: request_id}
                  if (request_id := logs.context().get("request_id")) else {}),
               **({FINGERPRINT: fingerprint(request)}
                  if request.idempotency_key is not None else {})},
    )
    stored, created = svc.jobs.create(job, request.idempotency_key,
                                      svc.settings.idempotency_ttl, quota)
    if not created:
        return replayed(stored, request), False
    try:
        for landed, index in enumerate(sources.store(request.sources)):
            if landed == 0 and request.callback is not None:
                webhooks.add_callback(svc, tenant, job.id, request.callback, base_url)
            if submit_file is not None:
                submit_file(job, index)
    except BaseException:
        with contextlib.suppress(Exception):
            svc.jobs.delete(job)
            svc.storage.delete_prefix(sources.prefix)
        raise
    # From here on a failure (say, while noting the job as queued) must not take the
    # sources of a stored, queued job away with the request.
    sources.commit()
    return job, True


def new_job_id() -> str:
    return str(uuid.uuid4())
