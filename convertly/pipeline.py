"""What happens to a file once it is queued, in both modes: executors (a pool process in
embedded mode, a Celery task in distributed mode) call `run_file` for each file of a job and
`finalize_job` once its last file has its result; a sync conversion calls `convert_path`.
`task_family` tells the Celery executor which queue a file goes to.

A file is sniffed, planned (`plan_conversion`: the converter and the settled target format),
converted in a private working directory, stored, and recorded; the job store answers which
call recorded the last file, and that caller finalises the job (the archive, the final
status, the final webhook event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar

from convertly import diskspace, fileinfo, filenames, later, logs, metrics, webhooks
from convertly.converters.archive import packing
from convertly.converters.base import Converter, ProgressFn, no_progress
from convertly.converters.registry import Registry
from convertly.converters.tools.base import Tool
from convertly.errors import (
    ConversionError,
    ConvertlyError,
    InvalidFieldError,
    ServiceUnavailableError,
    UnsupportedMediaError,
)
from convertly.models import (
    FORMAT_ALIASES,
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
from convertly.service import Services, file_workdir, job_prefix, scratch_dir, source_key
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes, sniff_file
from convertly.state.records import StoredFile, new_file_id
from convertly.storage.base import safe_name
from convertly.transforms.parse import parse
from convertly.views import archive_filename

log = logging.getLogger("convertly.pipeline")

PROGRESS_INTERVAL = 1.0  # seconds between progress updates of one file
# A file still converting START_MARK_DELAY seconds after a worker took it, with no progress
# reported yet, is given STARTED_PROGRESS (1 % on the wire), so a client tells a file being
# converted (progress > 0) from one still queued (0). Files done sooner cost no state write.
STARTED_PROGRESS = 0.01
START_MARK_DELAY = 0.5
OUTPUT_MISSING = "OUTPUT_MISSING"  # a result's errorCode: its output was gone at bundling

T = TypeVar("T")


class Persist(Protocol):
    """How `run_file` makes a converted file's storage and state writes: `persist(step)`
    runs `step` and returns its value. The default runs it once; distributed mode's
    tasks wait in place through an outage and try again, so that a file converted
    before Redis or S3 went away is recorded when they return, not converted again."""

    def __call__(self, step: Callable[[], T], /) -> T: ...


def once(step: Callable[[], T]) -> T:
    return step()


# Single-file compressors keep the whole original name: photo.jpg -> photo.jpg.gz.
_SUFFIX_FORMATS = frozenset({"gz", "bz2", "xz"})


def output_filename(original: str, fmt: str) -> str:
    stem = PurePosixPath(original.replace("\\", "/")).name
    if fmt in _SUFFIX_FORMATS and stem:
        return f"{stem}.{fmt}"
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    return f"{stem or 'file'}.{extension_for(fmt)}"


def convert_path(svc: Services, src: Path, spec: FileSpec, workdir: Path,
                 progress: ProgressFn = no_progress,
                 reraise: tuple[type[BaseException], ...] = (), *,
                 mode: str = "job") -> ConvertedFile:
    """Sniff `src`, pick the converter (or the media tool `spec.tool`) and run it inside
    `workdir` (pure CPU work, but for a tool's file options, read from storage).

    A converter that fails because `workdir`'s disk is full raises StorageFullError, not its
    own error: its cause carries ENOSPC (`diskspace.is_full`: libvips' errors included), or
    (ffmpeg reports a failed write only in its log) the failure left the disk with less than
    a megabyte free. An output written
    onto a disk left that full is not trusted either (libvips' PNG writer ignores a failed
    write and leaves a truncated file): StorageFullError too, and the file is tried again.

    Every call is counted in the conversion metrics under `mode` ("job" or "sync")."""
    planned = ["unknown", "unknown", spec.format.value if spec.format else "auto"]
    if spec.tool is not None:
        planned[2] = f"tool:{spec.tool}"
    with metrics.conversion(lambda: tuple(planned), mode):
        if spec.tool is not None:
            tool, source, options = plan_tool(svc, src, spec)
            planned[:2] = [Kind(source.kind).family, source.kind]
            return _guarded(svc, workdir, reraise, lambda: _run_tool(
                svc, tool, src, source, spec, options, workdir, progress))
        converter, source, spec = plan_conversion(svc, src, spec)
        planned[:] = [Kind(source.kind).family, source.kind,
                      spec.format.value if spec.format else "auto"]
        return _guarded(svc, workdir, reraise, lambda: converter.convert(
            src, source, spec, workdir, svc.settings, progress))


def _guarded(svc: Services, workdir: Path, reraise: tuple[type[BaseException], ...],
             convert: Callable[[], ConvertedFile]) -> ConvertedFile:
    limits: tuple[type[BaseException], ...] = (MemoryError, *reraise)  # reported as such
    try:
        out = convert()
    except ServiceUnavailableError:
        raise
    except limits:
        raise
    except Exception as exc:
        # Not only a converter's own errors: a library may fail on its truncated output.
        if diskspace.is_full(exc) or diskspace.nearly_full(workdir):
            raise diskspace.full(f"the scratch directory {svc.scratch_root}", exc) from exc
        raise
    if diskspace.nearly_full(workdir):
        raise diskspace.full(f"the scratch directory {svc.scratch_root} (after writing "
                             f"{out.format or 'the tool'}'s output)")
    return out


def plan_tool(svc: Services, src: Path, spec: FileSpec
              ) -> tuple[Tool, SourceInfo, dict[str, Any]]:
    """The media tool `spec.tool`, what `src` is, and the tool's options validated
    (`transforms.parse`). Reads only the file's first bytes; raises NotFoundError for an
    unknown tool, UnsupportedMediaError (415) for a source the tool does not take, and
    InvalidFieldError naming a bad option."""
    assert spec.tool is not None
    tool = svc.tools.get(spec.tool)
    source = sniff_file(src)
    kind = Kind(source.kind)
    if kind not in tool.sources:
        raise UnsupportedMediaError(
            f"The {tool.name} tool does not take {kind.label} files. It takes: "
            f"{', '.join(sorted(k.label for k in tool.sources))}.")
    options = parse(dict(spec.options), tool.params)
    return tool, source, options


def precheck(svc: Services, src: Path, spec: FileSpec) -> None:
    """Raise the client's error for a file (and spec) no worker could convert, from its
    first bytes only: an unknown or unsupported file, an unknown tool or a bad option."""
    if spec.tool is not None:
        plan_tool(svc, src, spec)
    else:
        plan_conversion(svc, src, spec)


def _run_tool(svc: Services, tool: Tool, src: Path, source: SourceInfo, spec: FileSpec,
              options: dict[str, Any], workdir: Path, progress: ProgressFn) -> ConvertedFile:
    """Run `tool` with its file options fetched into `workdir`; its one output described as
    a converter's would be (none for a tool that only reports facts)."""
    for number, (name, key) in enumerate(spec.inputs):
        local = workdir / f"input-{number}"
        try:
            svc.storage.get_file(key, local)
        except FileNotFoundError:
            raise InvalidFieldError(name, "names a file that is no longer in storage.") from None
        options[name] = local
    out = tool.run(src, source, options, workdir, svc.settings, progress)
    if len(out.files) > 1:
        raise ConversionError(f"The {tool.name} tool wrote {len(out.files)} files; a tool "
                              "answers with one at most.")
    if not out.files:
        return ConvertedFile(path="", format="", mime_type="", facts=out.facts)
    path = Path(out.files[0])
    info = fileinfo.describe_path(path, path.name)
    suffix = path.name.rsplit(".", 1)[-1].lower() if "." in path.name else ""
    return ConvertedFile(path=str(path), format=FORMAT_ALIASES.get(suffix, suffix),
                         mime_type=info.mime_type, width=info.width, height=info.height,
                         facts=out.facts)


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
             reraise: tuple[type[BaseException], ...] = (), persist: Persist = once) -> bool:
    """Convert file `index` of a job and record its result. Safe to call again for the same
    file (a redelivery): a file that already has its result is skipped. Returns True when this
    call finished the job's last file, so the caller must run `finalize_job` once.

    A ServiceUnavailableError (storage or state down) propagates without recording anything,
    so the caller can retry later; so do the exception types in `reraise` (an executor's own
    time-limit signal). Every other failure becomes that file's error. The writes after the
    conversion (its output, its stored-file record, its result) go through `persist`, each
    one idempotent, so a retried write never records the file twice."""
    batch = FileBatch(svc, job_id, persist)
    batch.run(index, reraise)
    return batch.flush()


class FileBatch:
    """Files of one job converted one after another by one task (`run` each), their
    stored-file records and results written together by `flush`: one state transaction
    (SQLite) or round trip (Redis) for the batch instead of two per file. Each file's
    output is stored as soon as it is converted. `run_file` is a batch of one.

    Until `flush`, nothing of the batch is recorded: a task that dies or raises before it
    leaves its files pending, to be converted again."""

    def __init__(self, svc: Services, job_id: str, persist: Persist = once) -> None:
        self.svc, self.job_id, self.persist = svc, job_id, persist
        self._results: list[FileResult] = []
        self._stored: list[StoredFile] = []
        self._tenant: str | None = None
        self._current: FileWork | None = None
        self._skipped = False

    def run(self, index: int, reraise: tuple[type[BaseException], ...] = ()) -> None:
        """Convert file `index` (skipped when it cannot start: done before, job finished or
        cancelled); its result waits for `flush`. Raises as `run_file` does."""
        self._current = None
        work = self.svc.jobs.start_file(self.job_id, index)
        if work is None:
            self._skipped = True
            return
        if self._tenant is None:
            self._tenant = work.tenant
            logs.bind(tenant=work.tenant, job_id=self.job_id)
            webhooks.job_started(self.svc, work.tenant, self.job_id)
        self._current = work
        reporter = _ProgressReporter(self.svc, work)
        mark = later.call_later(START_MARK_DELAY, reporter.mark_started)
        try:
            result, stored = _convert_job_file(self.svc, work, reporter, reraise,
                                               self.persist)
        finally:
            mark.cancel()
            reporter.close()
        self._results.append(result)
        if stored is not None:
            self._stored.append(stored)

    def fail(self, index: int, message: str, code: str) -> None:
        """File `index`, whose `run` was stopped (a resource limit), failed with `code`."""
        work = self._current
        if work is not None and work.spec.index == index:
            filename = work.spec.filename
        else:  # stopped before it started: its name from the job
            job = self.svc.jobs.get(self.job_id)
            if job is None:
                return
            filename = job.specs[index].filename
        self._results.append(FileResult(index=index, filename=filename,
                                        status=FileStatus.FAILED, error=message,
                                        error_code=code))

    def flush(self) -> bool:
        """Record what the batch converted; True when that completed the job's last file
        (or, when every file was skipped, when the job still waits for its finalisation),
        so the caller must run `finalize_job` once."""
        results, stored = self._results, self._stored
        self._results, self._stored = [], []
        if not results:
            # Finished, cancelled, or done before (a redelivered task): if the job still
            # waits for its finalisation, this caller owes it.
            return self._skipped and awaits_finalize(self.svc, self.job_id)
        if stored:
            self.persist(lambda: self.svc.files.add_many(stored))
            webhooks.files_stored(self.svc, stored)
        # Recorded again after a lost answer, a result is not counted twice, but "last" is
        # then False for every caller: the API's watchdog finalises such a job.
        last = self.persist(lambda: self.svc.jobs.record_files(results, self.job_id))
        if not last and self._tenant is not None:
            webhooks.job_progress(self.svc, self._tenant, self.job_id)
        return last


def cancel_check(svc: Services, job_id: str) -> Callable[[], bool]:
    """What a running file of the job asks (`TaskGuard.task(stop_when=...)`) to learn that
    its job was cancelled meanwhile; a queued file needs no check, `start_file` refuses
    it."""
    return lambda: svc.jobs.cancelled(job_id)


class _ProgressReporter:
    """Passes a converter's progress to the job store, at most every PROGRESS_INTERVAL
    seconds; a state outage only loses progress updates, never the conversion.
    `mark_started` (from `later`'s thread) records STARTED_PROGRESS unless some progress was
    sent already or the conversion is over (`close`)."""

    def __init__(self, svc: Services, work: FileWork) -> None:
        self.svc, self.work = svc, work
        self.sent_at = 0.0
        self._lock = threading.Lock()
        self._spoken = False  # something was sent, or the conversion is over

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self.sent_at < PROGRESS_INTERVAL or not 0.0 <= fraction < 1.0:
            return
        self.sent_at = now
        with self._lock:
            self._spoken = True
        self._send(max(fraction, STARTED_PROGRESS), event=True)

    def mark_started(self) -> None:
        with self._lock:
            if self._spoken:
                return
            self._spoken = True
            self._send(STARTED_PROGRESS, event=False)

    def close(self) -> None:
        with self._lock:
            self._spoken = True

    def _send(self, fraction: float, *, event: bool) -> None:
        try:
            self.svc.jobs.set_progress(self.work.job_id, self.work.spec.index, fraction)
            if event:
                webhooks.job_progress(self.svc, self.work.tenant, self.work.job_id)
        except ServiceUnavailableError:
            log.warning("progress of job %s not recorded: state unavailable", self.work.job_id)


def _convert_job_file(svc: Services, work: FileWork, progress: ProgressFn,
                      reraise: tuple[type[BaseException], ...], persist: Persist
                      ) -> tuple[FileResult, StoredFile | None]:
    """The file's result and, when it converted, the record of its stored output (for the
    caller to add); the output itself is in storage already."""
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
                               error_code="SOURCE_MISSING"), None
            original_size = src.stat().st_size
            base = replace(base, original_size=original_size)
            out = convert_path(svc, src, spec, workdir, progress, reraise)
            if not out.path:  # a tool that answers with facts alone
                return FileResult(index=spec.index, filename=spec.filename,
                                  status=FileStatus.COMPLETED, original_size=original_size,
                                  facts=out.facts), None
            name = output_filename(spec.filename, out.format)
            key = f"{job_prefix(tenant, job_id)}/outputs/{spec.index}-{safe_name(name)}"
            duration, pages = fileinfo.extent(Path(out.path), out.mime_type)
            size = persist(lambda: svc.storage.put_file(key, Path(out.path), move=True))
        stored = StoredFile(
            id=new_file_id(), tenant=tenant, key=key, filename=name,
            mime_type=out.mime_type, size_bytes=size, width=out.width, height=out.height,
            duration=duration, page_count=pages, job_id=job_id, created_at=time.time(),
        )
    except ServiceUnavailableError:
        raise
    except ConvertlyError as exc:
        return replace(base, error=exc.message, error_code=exc.code), None
    except reraise:
        raise
    except Exception as exc:
        if diskspace.is_full(exc):  # the source's copy into the scratch directory, ...
            raise diskspace.full(f"the scratch directory {svc.scratch_root}", exc) from exc
        log.exception("job %s file %d failed unexpectedly", job_id, spec.index)
        return replace(base, error="The conversion failed unexpectedly; the error was logged.",
                       error_code="INTERNAL_ERROR"), None
    return FileResult(
        index=spec.index, filename=spec.filename, status=FileStatus.COMPLETED,
        format=out.format, original_size=original_size, final_size=size,
        mime_type=out.mime_type, applied_quality=out.applied_quality, output_key=key,
        output_filename=name, stored_file_id=stored.id, width=out.width, height=out.height,
        notes=out.notes, facts=out.facts,
    ), stored


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
    # A tool may complete with facts and no output file (inspect).
    facts_only = any(r.status is FileStatus.COMPLETED and not r.output_key
                     for r in job.results)
    archive_key = archive_size = None
    if job.create_archive and done:
        try:
            archive_key, archive_size, done = _build_archive(svc, job, done)
        except ConvertlyError as exc:
            return svc.jobs.finish(job_id, status=JobStatus.FAILED, error_message=exc.message)
        except Exception:
            log.exception("archive for job %s failed", job_id)
            return svc.jobs.finish(job_id, status=JobStatus.FAILED,
                                   error_message="Building the archive failed; retry the job.")
    if not done and not facts_only:
        return svc.jobs.finish(
            job_id, status=JobStatus.FAILED,
            error_message="The file failed; see its result's error." if job.total_files == 1
            else f"All {job.total_files} files failed; see each result's error.",
        )
    return svc.jobs.finish(job_id, status=JobStatus.COMPLETED, archive_key=archive_key,
                           archive_size=archive_size)


def _build_archive(svc: Services, job: Job, done: list[FileResult]
                   ) -> tuple[str | None, int | None, list[FileResult]]:
    """Bundle the outputs of `done` that still exist, and return the archive's key and size
    (None when no output was left) and the results it holds. An output deleted before it
    was read (its stored file removed meanwhile) fails its file with OUTPUT_MISSING: the
    archive holds the rest."""
    with scratch_dir(svc, f"archive-{job.id[:8]}") as workdir:
        present = []
        for result in done:
            assert result.output_key is not None
            local = workdir / f"{result.index}"
            try:
                svc.storage.get_file(result.output_key, local)
            except FileNotFoundError:
                _output_missing(svc, job, result)
                continue
            present.append((result, local))
        if not present:
            return None, None, []
        names = filenames.bundle_names(r.output_filename or f"file-{r.index}"
                                       for r, _ in present)
        path = workdir / "archive"
        packing.pack([(name, local) for name, (_, local) in zip(names, present, strict=True)],
                     path, job.archive_format)
        key = f"{job_prefix(job.tenant, job.id)}/{archive_filename(job)}"
        size = svc.storage.put_file(key, path, move=True)
    return key, size, [r for r, _ in present]


def _output_missing(svc: Services, job: Job, result: FileResult) -> None:
    log.warning("job %s file %d: its output %s was gone when the archive was built; "
                "the archive is made without it", job.id, result.index, result.output_key)
    svc.jobs.record_file(FileResult(
        index=result.index, filename=result.filename, status=FileStatus.FAILED,
        original_size=result.original_size, error_code=OUTPUT_MISSING,
        error="Its output was deleted before the job's archive was built, so it is not in "
              "the archive.",
    ), job.id)


def task_family(path: Path, fmt: str | None, registry: Registry, head: bytes = b"") -> str:
    """The queue a file's task goes to ("image", "media" or "archive"), as the registry's
    converters declare it for the file's content and target `fmt` (`Registry.queue_for`:
    unknown content and unconvertible pairs included). Sniffs `head`, the file's first
    bytes, when given; else reads them from `path`."""
    if not head:
        with path.open("rb") as fh:
            head = fh.read(HEAD_BYTES)
    kind = sniff_bytes(head)
    return registry.queue_for(kind, OutputFormat(fmt) if fmt is not None else None).value
