"""The embedded pool's child entry point: task shims run inside the worker processes of
`InProcessExecutor`'s process pool.

Each process builds its own `Services` once (the pool initialiser) and every task is a thin
call into `convertly.pipeline`; the Celery tasks (`workers.tasks`) call the same pipeline
functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from convertly import logs, metrics, pipeline, service, videostreams
from convertly.errors import ConvertlyError
from convertly.executors import libvips
from convertly.executors.guard import TaskCancelled, TaskGuard, TaskLimitExceeded
from convertly.models import FileSpec
from convertly.settings import Settings

# Per-process state: one Services and one TaskGuard per pool process, set by the pool
# initialiser. A process pool passes nothing else to its tasks, and each process must own its
# connections and its signal handlers, so per-process is right; the parent never sets them.
_worker_services: service.Services | None = None
_guard: TaskGuard | None = None


def init_worker(settings: Settings, metrics_dir: str) -> None:
    global _worker_services, _guard
    # The parent's directory: the API process that scrapes it may have chosen it for an
    # earlier app (`metrics.setup`: one per process).
    metrics.setup(Path(metrics_dir))
    _guard = TaskGuard(cpu_seconds=settings.task_cpu_seconds,
                       memory_bytes=settings.task_max_memory)
    _guard.install()
    logs.configure(settings.log_level, settings.log_format)
    libvips.configure(settings.workers)
    _worker_services = service.build_services(settings)


def _services() -> service.Services:
    assert _worker_services is not None, "pool worker not initialised"
    return _worker_services


def warm() -> None:
    _services()


def _task_guard() -> TaskGuard:
    assert _guard is not None, "pool worker not initialised"
    return _guard


def run_files(job_id: str, indices: tuple[int, ...],
              request_id: str | None = None) -> tuple[bool, float]:
    """Convert files `indices` of a job one after another, each under the task guard, and
    record them together (`pipeline.FileBatch`). Returns whether that finished the job's
    last file (the caller then finalises it) and the wall-clock seconds per file, which
    tell the executor how many of the job's files to hand over at once."""
    logs.start(request_id=request_id, job_id=job_id)
    svc = _services()
    guard = _task_guard()
    stop_when = pipeline.cancel_check(svc, job_id)
    started = time.monotonic()
    batch = pipeline.FileBatch(svc, job_id)
    for index in indices:
        try:
            with guard.task(stop_when=stop_when):
                batch.run(index, reraise=(MemoryError,))
        except TaskLimitExceeded as exc:
            batch.fail(index, exc.error.message, exc.error.code)
        except TaskCancelled:
            # The cancel recorded the job's end; these files read as cancelled.
            return False, (time.monotonic() - started) / len(indices)
    return batch.flush(), (time.monotonic() - started) / len(indices)


def finalize(job_id: str, request_id: str | None = None) -> None:
    logs.start(request_id=request_id, job_id=job_id)
    pipeline.finalize_job(_services(), job_id)


def stream_rendition(stream_id: str, index: int) -> bool:
    """Encode one rendition of a video stream; True when the packaging is owed now."""
    logs.start()
    svc = _services()
    try:
        with _task_guard().task():
            return videostreams.run_rendition(svc, stream_id, index)
    except TaskLimitExceeded as exc:
        videostreams.fail(svc, stream_id, exc.error.message, exc.error.code)
        return False


def stream_package(stream_id: str) -> None:
    logs.start()
    svc = _services()
    try:
        with _task_guard().task():
            videostreams.package_stream(svc, stream_id)
    except TaskLimitExceeded as exc:
        videostreams.fail(svc, stream_id, exc.error.message, exc.error.code)


def convert_file(src: str, spec: dict[str, Any], workdir: str,
                 context: dict[str, str] | None = None) -> tuple[str, Any]:
    logs.start(**(context or {}))
    # ConvertlyError subclasses have their own __init__ signatures and do not unpickle
    # reliably, so errors cross the process boundary as (code, message, detail).
    try:
        with _task_guard().task():
            out = pipeline.convert_path(_services(), Path(src), FileSpec.from_dict(spec),
                                        Path(workdir), mode="sync")
    except ConvertlyError as exc:
        return "error", (exc.code, exc.message, exc.detail)
    except TaskLimitExceeded as exc:
        return "error", (exc.error.code, exc.error.message, exc.error.detail)
    return "ok", out.to_dict()
