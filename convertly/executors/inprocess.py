"""The embedded executor: a pool of worker processes on this machine, sized to its cores.

Conversions are CPU-bound native code, so they run in separate processes (spawned, recycled
after `_TASKS_PER_CHILD` tasks because native libraries fragment memory). Job state lives in
the job store, not here: a restart finds unfinished jobs there and queues their files again.

A process that dies breaks the whole pool (every task in it fails with BrokenProcessPool), so
a new pool replaces it and the files that were in it are queued again; each death counts as
an attempt against those files, up to `_MAX_ATTEMPTS`, unless the pool held a file of a
cancelled job: then the death is the cancel's doing (`executors.guard` kills a cancelled task
that does not stop), and counts against no file.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import heapq
import itertools
import logging
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from convertly import logs, metrics, pipeline, priority, service, videostreams
from convertly.errors import (
    ConversionError,
    ServiceUnavailableError,
    from_code,
)
from convertly.executors.base import ensure_capacity
from convertly.executors.pool import (
    convert_file,
    finalize,
    init_worker,
    run_files,
    stream_package,
    stream_rendition,
    warm,
)
from convertly.models import ConvertedFile, FileSpec, FileStatus, Job, JobType
from convertly.settings import Settings

log = logging.getLogger("convertly.executor")

# A new process costs ~1 s of CPU (spawn, imports), ~2 ms per task when it came every 500
# small files. Measured: a process's RSS stays flat over 2,000 small conversions and levels
# off near 160 MB after a hundred 12 MP ones.
_TASKS_PER_CHILD = 2000
_MAX_ATTEMPTS = 3  # a file whose worker process dies this often is failed, not retried

# A task takes as many files of a job as its last task converted in CHUNK_SECONDS, up to
# MAX_CHUNK: one round trip through the pool and one state transaction for them all. A sync
# conversion submitted meanwhile waits for the tasks ahead of it, each about that long.
CHUNK_SECONDS = 0.05
MAX_CHUNK = 32


def chunk_size(pace: float | None, waiting: int, workers: int) -> int:
    """How many of a job's `waiting` files one task takes, given the seconds per file its
    last task took (`pace`; None before the first): one until the pace is known, and never
    so many that a worker would be left without a task while files wait."""
    if pace is None:
        return 1
    share = waiting // (workers * 2)  # the queue is deep: every worker has two tasks' worth
    return max(1, min(MAX_CHUNK, int(CHUNK_SECONDS / max(pace, 1e-4)), share))


class InProcessExecutor:
    def __init__(self, settings: Settings, services: service.Services | None = None) -> None:
        self.settings = settings
        self._services = services
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # (level, arrival, job id, file index): the most urgent level first, then the oldest
        # (convertly.priority).
        self._backlog: list[tuple[int, int, str, int]] = []
        self._arrivals = itertools.count()
        self._in_pool = 0  # job files handed to the pool (or waiting there for a retry)
        self._tasks = 0  # the pool tasks that hold them
        # job id -> seconds per file its last task took, for `chunk_size`
        self._pace: dict[str, float] = {}
        # (job id, file index) -> how often it is in the pool or waits for a retry: with the
        # backlog, what `held_files` accounts for.
        self._holding: collections.Counter[tuple[str, int]] = collections.Counter()
        # Jobs whose files were all submitted (or resumed); the files of any other
        # unfinished job are still being stored and submitted by a request.
        self._known: set[str] = set()
        self._known_before: set[str] = set()
        self._attempts: dict[tuple[str, int], int] = {}
        # The job files each pool was given and has not answered yet, and for a broken pool
        # whether a cancel broke it (decided once, when its first task reports the break).
        self._flights: dict[concurrent.futures.ProcessPoolExecutor, set[tuple[str, int]]] = {}
        self._broken_by_cancel: dict[concurrent.futures.ProcessPoolExecutor, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        # job id -> the id of the request that created it, passed to its tasks' log lines
        self._request_ids: dict[str, str] = {}

    @property
    def services(self) -> service.Services:
        if self._services is None:
            self._services = service.build_services(self.settings)
        return self._services

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.settings.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.settings, str(metrics.directory() or self.settings.metrics_path)),
            max_tasks_per_child=_TASKS_PER_CHILD,
        )

    def _pool_or_new(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool()
        return self._pool

    def _replace_broken(self, broken: concurrent.futures.ProcessPoolExecutor) -> bool:
        """Replace the broken pool (once) and return whether a cancel broke it."""
        by_cancel = self._broken_by_cancel.get(broken)
        if by_cancel is None:
            by_cancel = self._broken_by_cancel[broken] = self._held_cancelled(broken)
            if len(self._broken_by_cancel) > 8:  # a verdict is needed for a moment only
                del self._broken_by_cancel[next(iter(self._broken_by_cancel))]
        if self._pool is broken:
            if by_cancel:
                log.info("a conversion process was killed to stop a cancelled job; "
                         "starting a new pool")
            else:
                log.error("a conversion process died; starting a new pool")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return by_cancel

    def _held_cancelled(self, pool: concurrent.futures.ProcessPoolExecutor) -> bool:
        """Whether `pool` was given a file of a job that is cancelled now."""
        jobs = {job_id for job_id, _ in self._flights.get(pool, ())}
        try:
            return any(self.services.jobs.cancelled(job_id) for job_id in jobs)
        except ServiceUnavailableError:
            return False

    def cancel(self, job_id: str) -> None:
        self._pace.pop(job_id, None)
        self._backlog = [entry for entry in self._backlog if entry[2] != job_id]
        heapq.heapify(self._backlog)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        pool = self._pool_or_new()
        # Start the workers now, so the first request does not pay for their imports.
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(warm))
                               for _ in range(self.settings.workers)))
        jobs = await asyncio.to_thread(self.services.jobs.unfinished)
        for job in jobs:
            if job.job_type is JobType.TRANSFER:
                continue  # fetched by the API process that took it, not a worker
            log.info("resuming job %s (%d files left)", job.id,
                     sum(r.status is FileStatus.PENDING for r in job.results))
            self.submit(job)
        for stream in await asyncio.to_thread(self.services.streams.unfinished):
            log.info("resuming video stream %s", stream.id)
            self.submit_stream(stream.id)

    async def stop(self) -> None:
        self._stopping = True
        self._backlog.clear()  # still pending in the job store; resumed at the next start
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    def queued_files(self) -> int:
        return len(self._backlog) + self._in_pool

    def queue_depth(self) -> dict[tuple[str, str], int]:
        """This process's backlog by level (queue "local"); files handed to the pool are
        under "running"."""
        depth: collections.Counter[tuple[str, str]] = collections.Counter(
            ("local", priority.LEVEL_NAMES[level]) for level, _, _, _ in self._backlog)
        depth[("local", "running")] = self._in_pool
        return dict(depth)

    def workers(self) -> dict[str, int] | None:
        return None

    async def held_files(self, jobs: list[Job]) -> set[tuple[str, int]]:
        unfinished = {job.id for job in jobs}
        # Forget jobs that finished elsewhere (cancelled, deleted); only those known at the
        # previous call, since one submitted after `jobs` was read is not in it yet.
        self._known -= self._known_before - unfinished
        self._known_before = set(self._known)
        held = {(job_id, index) for _, _, job_id, index in self._backlog}
        held.update(key for key, count in self._holding.items() if count > 0)
        held.update((job.id, r.index) for job in jobs if job.id not in self._known
                    for r in job.results)
        return held

    async def requeue_file(self, job: Job, index: int) -> None:
        self._known.add(job.id)
        self._push(job, index)
        self._pump()

    def check_capacity(self, files: int) -> None:
        ensure_capacity(self.queued_files(), files, self.settings.max_queued_files)

    def _note_request(self, job: Job) -> None:
        request_id = logs.context().get("request_id")
        if request_id:
            self._request_ids[job.id] = request_id

    def submit(self, job: Job) -> None:
        self._note_request(job)
        self._known.add(job.id)
        pending = [r.index for r in job.results if r.status is FileStatus.PENDING]
        if not pending:
            self._submit_finalize(job.id)
            return
        for index in pending:
            self._push(job, index)
        self._pump()

    def submit_file(self, job: Job, index: int) -> None:
        self._note_request(job)
        self._call_in_loop(self._enqueue, job, index)

    def submitted(self, job: Job) -> None:
        """An embedded restart resumes every unfinished job, so only the watchdog needs to
        know that the job's files are all in the backlog now."""
        self._known.add(job.id)

    def _enqueue(self, job: Job, index: int) -> None:
        self._push(job, index)
        self._pump()

    def _push(self, job: Job, index: int) -> None:
        heapq.heappush(self._backlog, (priority.file_level(index, job.priority),
                                       next(self._arrivals), job.id, index))

    def _pump(self) -> None:
        # Only a few tasks sit in the pool's own queue at a time, so a sync conversion (sent
        # to the pool directly) or a more urgent file submitted meanwhile waits for at most
        # one round of tasks, not for a whole batch. A task takes several files of a job
        # when its files are quick and many wait (`chunk_size`).
        while self._backlog and self._tasks < self.settings.workers * 2:
            _, _, job_id, index = heapq.heappop(self._backlog)
            indices = [index]
            size = chunk_size(self._pace.get(job_id), len(self._backlog) + 1,
                              self.settings.workers)
            while (len(indices) < size and self._backlog
                   and self._backlog[0][2] == job_id):
                indices.append(heapq.heappop(self._backlog)[3])
            self._submit_files(job_id, tuple(indices))

    def _submit_files(self, job_id: str, indices: tuple[int, ...]) -> None:
        pool = self._pool_or_new()
        future = pool.submit(run_files, job_id, indices, self._request_ids.get(job_id))
        self._hold(job_id, indices)
        flights = self._flights.setdefault(pool, set())
        flights.update((job_id, index) for index in indices)
        future.add_done_callback(lambda f: self._call_in_loop(self._files_done, job_id,
                                                              indices, pool, f))

    def _hold(self, job_id: str, indices: tuple[int, ...]) -> None:
        self._tasks += 1
        self._in_pool += len(indices)
        for index in indices:
            self._holding[(job_id, index)] += 1

    def _release(self, job_id: str, indices: tuple[int, ...]) -> None:
        self._tasks -= 1
        self._in_pool -= len(indices)
        for index in indices:
            self._holding[(job_id, index)] -= 1
            if self._holding[(job_id, index)] <= 0:
                del self._holding[(job_id, index)]

    def _retry_files(self, job_id: str, indices: tuple[int, ...]) -> None:
        self._release(job_id, indices)
        if not self._stopping:
            self._submit_files(job_id, indices)

    def _submit_finalize(self, job_id: str) -> None:
        pool = self._pool_or_new()
        future = pool.submit(finalize, job_id, self._request_ids.get(job_id))
        future.add_done_callback(lambda f: self._call_in_loop(self._finalize_done, job_id,
                                                              pool, f))

    def _call_in_loop(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _files_done(self, job_id: str, indices: tuple[int, ...],
                    pool: concurrent.futures.ProcessPoolExecutor,
                    future: concurrent.futures.Future[tuple[bool, float]]) -> None:
        self._release(job_id, indices)
        exc = None if future.cancelled() else future.exception()
        by_cancel = isinstance(exc, BrokenProcessPool) and self._replace_broken(pool)
        flights = self._flights.get(pool, set())
        flights.difference_update((job_id, index) for index in indices)
        if not flights:
            self._flights.pop(pool, None)
        if future.cancelled() or self._stopping:
            return  # left pending in the job store; resumed at the next start
        if exc is None:
            last, pace = future.result()
            self._pace[job_id] = pace
            for index in indices:
                self._attempts.pop((job_id, index), None)
            self._pump()
            if last:
                self._submit_finalize(job_id)
            return
        self._pump()
        if isinstance(exc, BrokenProcessPool):
            if by_cancel and self._job_cancelled(job_id):
                for index in indices:
                    self._attempts.pop((job_id, index), None)
                return  # stopped by its job's cancel, which recorded everything
            # Each file again on its own, so that only the file that kills its process
            # runs out of attempts.
            failed = []
            for index in indices:
                attempts = self._attempts.get((job_id, index), 0) + (0 if by_cancel else 1)
                self._attempts[(job_id, index)] = attempts
                if attempts < _MAX_ATTEMPTS:
                    self._submit_files(job_id, (index,))
                else:
                    self._attempts.pop((job_id, index), None)
                    failed.append(index)
            message = "The converter process crashed on this file; it was not converted."
        elif isinstance(exc, ServiceUnavailableError):
            # Storage or state is down: nothing was recorded; try the files again later.
            log.warning("job %s files %s: %s; retrying in %d s", job_id, list(indices), exc,
                        exc.retry_after)
            self._hold(job_id, indices)  # still owed to the pool, so capacity stays honest
            assert self._loop is not None
            self._loop.call_later(exc.retry_after, self._retry_files, job_id, indices)
            return
        elif len(indices) > 1:
            log.error("job %s files %s: %r; trying each on its own", job_id, list(indices),
                      exc)
            for index in indices:
                self._submit_files(job_id, (index,))
            return
        else:
            log.error("job %s file %d: %r", job_id, indices[0], exc)
            failed = list(indices)
            message = "The conversion failed unexpectedly; the error was logged."
        finishes = [pipeline.fail_file(self.services, job_id, index, message, "WORKER_CRASHED")
                    for index in failed]
        if any(finishes):
            self._submit_finalize(job_id)

    def _job_cancelled(self, job_id: str) -> bool:
        try:
            return self.services.jobs.cancelled(job_id)
        except ServiceUnavailableError:
            return False  # tried again; a cancelled job's file is refused then

    def _finalize_done(self, job_id: str, pool: concurrent.futures.ProcessPoolExecutor,
                       future: concurrent.futures.Future[None]) -> None:
        if future.cancelled() or self._stopping:
            return
        exc = future.exception()
        if exc is None:
            self._known.discard(job_id)
            self._request_ids.pop(job_id, None)
            self._pace.pop(job_id, None)
            # Finalised in a pool process, whose hub nobody waits on: wake this one's.
            self.services.events.notify(job_id)
            return
        if isinstance(exc, BrokenProcessPool):
            self._replace_broken(pool)
            self._submit_finalize(job_id)
            return
        log.error("finalising job %s failed: %r", job_id, exc)

    # --- video streams: their renditions and packaging go to the pool directly (each is
    # one long media task); a pool broken under one is replaced and the task sent again.

    def submit_stream(self, stream_id: str) -> None:
        stream = self.services.streams.get(stream_id)
        if stream is None or stream.status.finished:
            return
        pending = [r.index for r in stream.renditions if not r.done]
        if not pending:
            self._stream_task(stream_id, None)
        for index in pending:
            self._stream_task(stream_id, index)

    def _stream_task(self, stream_id: str, index: int | None) -> None:
        """Send rendition `index` of the stream to the pool (None: its packaging)."""
        if self._stopping:
            return
        pool = self._pool_or_new()
        future: concurrent.futures.Future[Any] = (
            pool.submit(stream_package, stream_id) if index is None
            else pool.submit(stream_rendition, stream_id, index))
        future.add_done_callback(lambda f: self._call_in_loop(
            self._stream_done, stream_id, index, pool, f))

    def _stream_done(self, stream_id: str, index: int | None,
                     pool: concurrent.futures.ProcessPoolExecutor,
                     future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled() or self._stopping:
            return  # resumed at the next start
        exc = future.exception()
        if exc is None:
            self._attempts.pop((stream_id, -1 if index is None else index), None)
            if index is not None and future.result():
                self._stream_task(stream_id, None)
            return
        if isinstance(exc, BrokenProcessPool):
            self._replace_broken(pool)
            key = (stream_id, -1 if index is None else index)
            attempts = self._attempts[key] = self._attempts.get(key, 0) + 1
            if attempts < _MAX_ATTEMPTS:
                log.warning("video stream %s: its worker process died; sending the task "
                            "again", stream_id)
                self._stream_task(stream_id, index)
                return
            self._attempts.pop(key, None)
            message = "The encoder process died on this stream; it was not encoded."
        elif isinstance(exc, ServiceUnavailableError):
            assert self._loop is not None
            self._loop.call_later(exc.retry_after, self._stream_task, stream_id, index)
            return
        else:
            log.error("video stream %s: %r", stream_id, exc)
            message = "The encoding failed unexpectedly; the error was logged."
        videostreams.fail(self.services, stream_id, message, "WORKER_CRASHED")

    async def convert(self, src: Path, spec: FileSpec, workdir: Path) -> ConvertedFile:
        while True:
            pool = self._pool_or_new()
            try:
                status, payload = await asyncio.wrap_future(
                    pool.submit(convert_file, str(src), spec.to_dict(), str(workdir),
                                logs.context())
                )
                break
            except BrokenProcessPool:
                if not self._replace_broken(pool):
                    raise ConversionError(
                        "The converter process crashed on this file; it was not converted."
                    ) from None
                # Another job's cancel broke the pool: this conversion is not to blame.
        if status == "error":
            code, message, detail = payload
            err = from_code(code, message)
            err.detail = detail
            raise err
        return ConvertedFile(**{**payload, "notes": tuple(payload.get("notes", ()))})
