"""The service layer: the only place that combines storage, state, converters and executors.

API endpoints call `submit_job`, `convert_upload`, ...; executors (a pool worker in embedded
mode, a Celery task in distributed mode) call `run_file` and `finalize_job`. The same
functions run in both modes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from convertly import jobevents, webhooks
from convertly.auth import ApiKeys
from convertly.converters.archive import packing
from convertly.converters.base import Converter, ProgressFn, no_progress
from convertly.converters.builtin import default_registry
from convertly.converters.registry import Registry
from convertly.errors import ConvertlyError, ServiceUnavailableError
from convertly.models import (
    ConvertedFile,
    FileResult,
    FileSpec,
    FileStatus,
    FileWork,
    Job,
    JobStatus,
    OutputFormat,
    SourceInfo,
    extension_for,
)
from convertly.settings import Settings
from convertly.signing import load_or_create_secret
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes, sniff_file
from convertly.state import build_state
from convertly.state.base import FileStore, FolderStore, JobStore, WebhookStore
from convertly.state.records import StoredFile, new_file_id
from convertly.storage import build_storage
from convertly.storage.base import Storage, safe_name
from convertly.views import archive_filename

log = logging.getLogger("convertly.service")

PROGRESS_INTERVAL = 1.0  # seconds between progress updates of one file


@dataclass(frozen=True)
class Services:
    """Everything the service functions need, built once per process (the stores and the
    finished-job channel from `convertly.state.build_state`)."""

    settings: Settings
    storage: Storage
    jobs: JobStore
    keys: ApiKeys
    files: FileStore
    registry: Registry
    secret: bytes
    folders: FolderStore
    webhooks: WebhookStore
    # Each thread's reusable working directory for job files (see file_workdir).
    workdirs: threading.local = field(default_factory=threading.local, compare=False,
                                      repr=False)
    # Wakes requests that wait for a job to finish (see convertly.jobevents).
    events: jobevents.JobEvents = field(default_factory=jobevents.JobEvents, compare=False,
                                        repr=False)

    @property
    def scratch_root(self) -> Path:
        return self.settings.data_dir / "tmp"


def build_services(settings: Settings, *, storage: Storage | None = None) -> Services:
    scratch = settings.data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    state = build_state(settings)
    return Services(
        settings=settings,
        storage=storage if storage is not None else build_storage(settings),
        jobs=state.jobs,
        keys=ApiKeys(state.keys),
        files=state.files,
        registry=default_registry(() if settings.rar_command else (OutputFormat.RAR,)),
        secret=load_or_create_secret(settings.secret_key, settings.data_dir),
        folders=state.folders,
        webhooks=state.webhooks,
        events=jobevents.JobEvents(state.finished),
    )


@contextmanager
def scratch_dir(svc: Services, label: str) -> Iterator[Path]:
    """A private working directory, removed afterwards whatever happens."""
    svc.scratch_root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=svc.scratch_root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def file_workdir(svc: Services) -> Iterator[Path]:
    """A private, empty working directory for one job file. Each thread keeps its directory
    and empties it after use rather than making and removing one per file: two directory
    inodes per file cost ~0.7 ms of a small PNG's ~7 ms on this machine's disk. A directory
    that cannot be emptied is removed; the next file gets a new one."""
    path: Path | None = getattr(svc.workdirs, "path", None)
    svc.workdirs.path = None
    if path is None or not path.is_dir():
        svc.scratch_root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix="file-", dir=svc.scratch_root))
    try:
        yield path
    finally:
        if _emptied(path):
            svc.workdirs.path = path
        else:
            shutil.rmtree(path, ignore_errors=True)


def _emptied(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
    except OSError:
        return False
    return True


# --- storage keys -----------------------------------------------------------------------


def job_prefix(tenant: str, job_id: str) -> str:
    return f"tenants/{tenant}/jobs/{job_id}"


def source_key(tenant: str, job_id: str, spec: FileSpec) -> str:
    return f"{job_prefix(tenant, job_id)}/sources/{spec.index}-{safe_name(spec.filename)}"


# Single-file compressors keep the whole original name: photo.jpg -> photo.jpg.gz.
_SUFFIX_FORMATS = frozenset({"gz", "bz2", "xz"})


def output_filename(original: str, fmt: str) -> str:
    stem = PurePosixPath(original.replace("\\", "/")).name
    if fmt in _SUFFIX_FORMATS and stem:
        return f"{stem}.{fmt}"
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    return f"{stem or 'file'}.{extension_for(fmt)}"


# --- converting one file ----------------------------------------------------------------


def convert_path(svc: Services, src: Path, spec: FileSpec, workdir: Path,
                 progress: ProgressFn = no_progress) -> ConvertedFile:
    """Sniff `src`, pick the converter and run it inside `workdir` (pure CPU work)."""
    converter, source, spec = plan_conversion(svc, src, spec)
    return converter.convert(src, source, spec, workdir, svc.settings, progress)


def plan_conversion(svc: Services, src: Path,
                    spec: FileSpec) -> tuple[Converter, SourceInfo, FileSpec]:
    """The converter for `src` and `spec`, what `src` is, and the spec with its target
    format settled once for the converter (`Registry.plan`: a compression keeps the
    source's). Reads only the file's first bytes, so it is cheap; raises the client's error
    for an empty, unknown or unsupported file."""
    source = sniff_file(src)
    converter, spec = svc.registry.plan(Kind(source.kind), spec)
    return converter, source, spec


def run_file(svc: Services, job_id: str, index: int,
             reraise: tuple[type[BaseException], ...] = ()) -> bool:
    """Convert file `index` of a job and record its result. Safe to call again for the same
    file (a redelivery): a file that already has its result is skipped. Returns True when this
    call finished the job's last file, so the caller must run `finalize_job` once.

    A ServiceUnavailableError (storage or state down) propagates without recording anything,
    so the caller can retry later; so do the exception types in `reraise` (an executor's own
    time-limit signal). Every other failure becomes that file's error."""
    work = svc.jobs.start_file(job_id, index)
    if work is None:
        # Finished, cancelled, or this file was done before (a redelivered task): if the
        # job still waits for its finalisation, this caller owes it.
        return awaits_finalize(svc, job_id)
    webhooks.job_started(svc, work.tenant, job_id)
    result = _convert_job_file(svc, work, reraise)
    last = svc.jobs.record_file(result, job_id)
    if not last:
        webhooks.job_progress(svc, work.tenant, job_id)
    return last


class _ProgressReporter:
    """Passes a converter's progress to the job store, at most every PROGRESS_INTERVAL
    seconds; a state outage only loses progress updates, never the conversion."""

    def __init__(self, svc: Services, work: FileWork) -> None:
        self.svc, self.work = svc, work
        self.sent_at = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.sent_at < PROGRESS_INTERVAL or not 0.0 <= fraction < 1.0:
            return
        self.sent_at = now
        try:
            self.svc.jobs.set_progress(self.work.job_id, self.work.spec.index, fraction)
            webhooks.job_progress(self.svc, self.work.tenant, self.work.job_id)
        except ServiceUnavailableError:
            log.warning("progress of job %s not recorded: state unavailable", self.work.job_id)


def _convert_job_file(svc: Services, work: FileWork,
                      reraise: tuple[type[BaseException], ...]) -> FileResult:
    spec, tenant, job_id = work.spec, work.tenant, work.job_id
    src_key = source_key(tenant, job_id, spec)
    base = FileResult(index=spec.index, filename=spec.filename, status=FileStatus.FAILED)
    original_size = 0
    try:
        with file_workdir(svc) as workdir:
            src = workdir / "source"
            try:
                svc.storage.get_file(src_key, src)
            except FileNotFoundError:
                return replace(base, error="The uploaded source is missing from storage.",
                               error_code="SOURCE_MISSING")
            original_size = src.stat().st_size
            base = replace(base, original_size=original_size)
            out = convert_path(svc, src, spec, workdir, _ProgressReporter(svc, work))
            name = output_filename(spec.filename, out.format)
            key = f"{job_prefix(tenant, job_id)}/outputs/{spec.index}-{safe_name(name)}"
            size = svc.storage.put_file(key, Path(out.path), move=True)
        record = svc.files.add(
            StoredFile(
                id=new_file_id(), tenant=tenant, key=key, filename=name,
                mime_type=out.mime_type, size_bytes=size, width=out.width, height=out.height,
                job_id=job_id, created_at=time.time(),
            )
        )
    except ServiceUnavailableError:
        raise
    except ConvertlyError as exc:
        return replace(base, error=exc.message, error_code=exc.code)
    except reraise:
        raise
    except Exception:
        log.exception("job %s file %d failed unexpectedly", job_id, spec.index)
        return replace(base, error="The conversion failed unexpectedly; the error was logged.",
                       error_code="INTERNAL_ERROR")
    return FileResult(
        index=spec.index, filename=spec.filename, status=FileStatus.COMPLETED,
        format=out.format, original_size=original_size, final_size=size,
        mime_type=out.mime_type, applied_quality=out.applied_quality, output_key=key,
        output_filename=name, stored_file_id=record.id, width=out.width, height=out.height,
        notes=out.notes,
    )


def fail_file(svc: Services, job_id: str, index: int, message: str, code: str) -> bool:
    """Record that a file could not be processed at all (its worker crashed, ...)."""
    job = svc.jobs.get(job_id)
    if job is None or job.results[index].status is not FileStatus.PENDING:
        return False
    spec = job.specs[index]
    result = FileResult(index=index, filename=spec.filename, status=FileStatus.FAILED,
                        error=message, error_code=code)
    return svc.jobs.record_file(result, job_id)


def awaits_finalize(svc: Services, job_id: str) -> bool:
    """True when every file of the job has its result but the job is not finished."""
    job = svc.jobs.get(job_id)
    return (job is not None and not job.status.finished
            and all(r.status is not FileStatus.PENDING for r in job.results))


def finalize_job(svc: Services, job_id: str) -> Job:
    """Bundle outputs when asked and set the job's final status, then emit its final
    webhook event and wake the requests waiting for it. Idempotent."""
    job = _finalize_job(svc, job_id)
    webhooks.job_finished(svc, job)
    svc.events.finished(job.id)
    return job


def _finalize_job(svc: Services, job_id: str) -> Job:
    job = svc.jobs.get(job_id)
    if job is None:
        raise KeyError(job_id)
    if job.status.finished:
        return job
    done = [r for r in job.results if r.status is FileStatus.COMPLETED and r.output_key]
    if not done:
        return svc.jobs.finish(
            job_id, status=JobStatus.FAILED,
            error_message="The file failed; see its result's error." if job.total_files == 1
            else f"All {job.total_files} files failed; see each result's error.",
        )
    archive_key = archive_size = None
    if job.create_archive:
        try:
            archive_key, archive_size = _build_archive(svc, job, done)
        except ConvertlyError as exc:
            return svc.jobs.finish(job_id, status=JobStatus.FAILED, error_message=exc.message)
        except Exception:
            log.exception("archive for job %s failed", job_id)
            return svc.jobs.finish(job_id, status=JobStatus.FAILED,
                                   error_message="Building the archive failed; retry the job.")
    return svc.jobs.finish(job_id, status=JobStatus.COMPLETED, archive_key=archive_key,
                           archive_size=archive_size)


def unique_names(names: Iterable[str]) -> list[str]:
    """The names with ` (2)`, ` (3)`, ... added where they repeat."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = count
        if count > 1:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem} ({count}).{ext}" if dot else f"{name} ({count})"
        out.append(name)
    return out


def _build_archive(svc: Services, job: Job, done: list[FileResult]) -> tuple[str, int]:
    names = unique_names(r.output_filename or f"file-{r.index}" for r in done)
    with scratch_dir(svc, f"archive-{job.id[:8]}") as workdir:
        members = []
        for result, name in zip(done, names, strict=True):
            assert result.output_key is not None
            local = workdir / f"{result.index}"
            svc.storage.get_file(result.output_key, local)
            members.append((name, local))
        path = workdir / "archive"
        packing.pack(members, path, job.archive_format)
        key = f"{job_prefix(job.tenant, job.id)}/{archive_filename(job)}"
        size = svc.storage.put_file(key, path, move=True)
    return key, size


# --- submitting jobs --------------------------------------------------------------------


def task_family(path: Path, fmt: str | None, registry: Registry) -> str:
    """The queue a file's task goes to ("image", "media" or "archive"), as the registry's
    converters declare it for the file's content and target `fmt` (`Registry.queue_for`:
    unknown content and unconvertible pairs included). Reads only the file's first bytes."""
    with path.open("rb") as fh:
        kind = sniff_bytes(fh.read(HEAD_BYTES))
    return registry.queue_for(kind, OutputFormat(fmt) if fmt is not None else None).value


def new_job_id() -> str:
    return str(uuid.uuid4())


# --- sync conversions -------------------------------------------------------------------


def store_output(
    svc: Services, tenant: str, path: Path, out: ConvertedFile, name: str, *,
    temporary: bool,
) -> StoredFile:
    """Keep a sync output in storage, permanently or for `temporary_ttl` seconds."""
    file_id = new_file_id()
    folder = "tmp" if temporary else "files"
    key = f"tenants/{tenant}/{folder}/{file_id}/{safe_name(name)}"
    size = svc.storage.put_file(key, path, move=True)
    now = time.time()
    return svc.files.add(
        StoredFile(
            id=file_id, tenant=tenant, key=key, filename=name, mime_type=out.mime_type,
            size_bytes=size, width=out.width, height=out.height, temporary=temporary,
            created_at=now, expires_at=now + svc.settings.temporary_ttl if temporary else None,
        )
    )


def store_upload(svc: Services, tenant: str, path: Path, filename: str) -> StoredFile:
    """Keep an uploaded source in storage (sync requests with saveToStorage=true)."""
    file_id = new_file_id()
    key = f"tenants/{tenant}/files/{file_id}/{safe_name(filename)}"
    try:
        mime = sniff_file(path).mime_type
    except ConvertlyError:
        mime = "application/octet-stream"
    size = svc.storage.put_file(key, path, move=False)
    return svc.files.add(
        StoredFile(id=file_id, tenant=tenant, key=key, filename=filename, mime_type=mime,
                   size_bytes=size, created_at=time.time())
    )


def purge_expired(svc: Services) -> int:
    """Delete short-lived outputs whose time is up, and jobs (sources, outputs, archive,
    records) finished longer than CONVERTLY_JOB_RETENTION seconds ago; return how many."""
    now = time.time()
    count = 0
    for record in svc.files.expired(now):
        svc.storage.delete(record.key)
        svc.files.remove(record.id)
        count += 1
    if svc.settings.job_retention:
        for job in svc.jobs.finished_before(now - svc.settings.job_retention):
            svc.storage.delete_prefix(job_prefix(job.tenant, job.id))
            svc.files.remove_for_job(job.id)
            svc.jobs.delete(job)
            count += 1
    return count
