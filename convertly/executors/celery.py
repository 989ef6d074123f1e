"""The distributed executor: one Celery task per file, routed by media family; the task that
records a job's last result queues the task that finalises it (bundling the outputs when
asked) — a chord whose join is the job store's atomic "last file" answer, so it needs no
result backend and survives redelivery. Job state lives in Redis and files in shared storage,
so any worker on any host can take any task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis

from convertly import diskspace, logs, pipeline, priority, service
from convertly.errors import (
    BrokerUnavailableError,
    ConversionError,
    QueueTimeoutError,
    ServiceUnavailableError,
    from_code,
)
from convertly.executors import leases
from convertly.executors.base import ensure_capacity
from convertly.executors.celeryapp import (
    CONVERT,
    FINALIZE,
    REQUEST_ID_HEADER,
    RUN_FILE,
    STREAM_PACKAGE,
    STREAM_RENDITION,
    make_app,
    queue_keys,
    run_file_target,
)
from convertly.models import ConvertedFile, FileSpec, FileStatus, Job, JobStatus
from convertly.settings import Settings
from convertly.state import redis as redisstate

log = logging.getLogger("convertly.executor")

WATCH_INTERVAL = 15.0  # seconds between the watchdog's looks at unfinished jobs
REPLY_WAITERS = 64  # sync conversions one API process waits on at once (more wait for a thread)


def _unqueued(exc: Exception) -> ServiceUnavailableError:
    """The error for a task the broker did not take: its Redis over `maxmemory` is full
    storage (507), anything else an unavailable broker."""
    if isinstance(exc, redis.OutOfMemoryError):
        return diskspace.full("the broker's Redis memory (maxmemory, with a noeviction policy)",
                              exc)
    return BrokerUnavailableError()


class CeleryExecutor:
    def __init__(self, settings: Settings, services: service.Services) -> None:
        self.settings = settings
        self.services = services
        self.app = make_app(settings)  # sends tasks by name; workers.tasks runs them
        self._redis: Any = redis.Redis.from_url(settings.broker_url, socket_timeout=5,
                                                socket_connect_timeout=3)
        # Waits for sync replies block for minutes: a client without a read timeout (redis-py
        # 8 reads with a 5 s timeout by default, which failed every sync conversion longer
        # than that with 503 STATE_UNAVAILABLE).
        self._state: Any = redis.Redis.from_url(settings.redis_state_url,
                                                socket_connect_timeout=3, socket_timeout=None)
        self._watchdog: asyncio.Task[None] | None = None
        # A sync conversion's wait for its reply lasts as long as the conversion: on threads
        # of its own, never the event loop's default executor, which the other routes use
        # for their quick disk and database work (a few slow conversions would stall them).
        self._waits = concurrent.futures.ThreadPoolExecutor(REPLY_WAITERS,
                                                            thread_name_prefix="sync-reply")
        # job id -> when the watchdog may queue its finalisation (again)
        self._owed: dict[str, float] = {}
        self._sweeping = threading.Lock()

    def cancel(self, job_id: str) -> None:
        """Nothing to do here: a cancelled job's messages stay in the broker until a worker
        takes them and finds the job cancelled (`start_file` refuses its files)."""

    def queue_for(self, family: str) -> str:
        if family in ("media", "video", "audio"):
            return self.settings.media_queue
        if family == "archive":
            return self.settings.archive_queue
        return self.settings.image_queue

    @property
    def queues(self) -> list[str]:
        return list(dict.fromkeys([self.settings.image_queue, self.settings.media_queue,
                                   self.settings.archive_queue]))

    async def start(self) -> None:
        """Queue the jobs that were stored but never reached the broker (the API stopped in
        between). Jobs whose tasks are queued wait in the broker across API restarts."""
        jobs = await asyncio.to_thread(self.services.jobs.unfinished)
        for job in jobs:
            if not job.extra.get("queued"):
                log.info("queueing job %s, stored before the last stop but never queued", job.id)
                await asyncio.to_thread(self.submit, job)
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        self._waits.shutdown(wait=False, cancel_futures=True)
        self._redis.close()
        self._state.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                await asyncio.to_thread(self.sweep)
            except (ServiceUnavailableError, kombu.exceptions.OperationalError,
                    redis.RedisError) as exc:
                log.warning("watchdog: %s", exc)
            except Exception:
                log.exception("watchdog failed")

    def sweep(self, now: float | None = None) -> list[str]:
        """Queue the finalisation of jobs whose files all have results but which are still
        unfinished one watch interval later: the worker that recorded the last file could
        not queue it (a broker outage) nor finalise the job itself. Finalising is
        idempotent, so a job is queued again only after a task's time limit. Returns the
        ids queued."""
        now = time.monotonic() if now is None else now
        with self._sweeping:
            return self._sweep(now)

    def _sweep(self, now: float) -> list[str]:
        owed: dict[str, float] = {}
        queued = []
        for job in self.services.jobs.unfinished():
            if any(r.status is FileStatus.PENDING for r in job.results):
                continue
            due = self._owed.get(job.id, now + WATCH_INTERVAL)
            if now >= due:
                log.warning("job %s: every file is done but it was never finalised; "
                            "queueing its finalisation", job.id)
                self._send(FINALIZE, (job.id,), queue=self.settings.archive_queue,
                           priority=priority.URGENT)
                queued.append(job.id)
                due = now + self.settings.task_time_limit + 60
            owed[job.id] = due
        self._owed = owed
        return queued

    def queued_files(self) -> int:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                return int(sum(pipe.execute()))
        except redis.RedisError as exc:
            raise BrokerUnavailableError() from exc

    def queue_depth(self) -> dict[tuple[str, str], int]:
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                counts = iter(pipe.execute())
        except redis.RedisError as exc:
            raise BrokerUnavailableError() from exc
        return {(queue, priority.LEVEL_NAMES[level]): int(next(counts))
                for queue in self.queues for level in priority.LEVELS}

    def workers(self) -> dict[str, int] | None:
        """Live workers (their leases in the broker's Redis) per queue."""
        try:
            return leases.workers_by_queue(self._redis, self.queues)
        except redis.RedisError as exc:
            raise BrokerUnavailableError() from exc

    async def held_files(self, jobs: list[Job]) -> set[tuple[str, int]]:
        """The files of jobs not yet wholly queued (`extra["queued"]`: the API storing them
        queues the rest), and those named by a message waiting in a queue or delivered and
        not yet acknowledged: held by a live worker, or by a vanished one, whose files the
        workers' lease sweep puts back in their queues (`workers.leases`)."""
        return await asyncio.to_thread(self._held_files, jobs)

    def _held_files(self, jobs: list[Job]) -> set[tuple[str, int]]:
        held = {(job.id, r.index) for job in jobs if not job.extra.get("queued")
                for r in job.results}
        try:
            # One MULTI: queues and deliveries as of one instant. Kombu moves a message from
            # its queue to the unacknowledged ones in two steps, so for a moment it is on
            # neither side; the watchdog waits CONVERTLY_WATCHDOG_STALE before it believes a
            # file lost.
            with self._redis.pipeline(transaction=True) as pipe:
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.lrange(key, 0, -1)
                pipe.hvals(leases.UNACKED)
                *waiting, delivered = pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailableError() from exc
        messages = [json.loads(raw) for entries in waiting for raw in entries]
        for raw in delivered:
            entry = json.loads(raw)
            if isinstance(entry, list) and entry:
                messages.append(entry[0])
        for message in messages:
            target = run_file_target(message)
            if target is not None:
                held.add(target)
        return held

    async def requeue_file(self, job: Job, index: int) -> None:
        try:
            await asyncio.to_thread(self._send_file, job, index)
        except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
            raise BrokerUnavailableError() from exc

    def check_capacity(self, files: int) -> None:
        ensure_capacity(self.queued_files(), files, self.settings.max_queued_files)

    def submit(self, job: Job) -> None:
        pending = [r.index for r in job.results if r.status is FileStatus.PENDING]
        with self._queueing(job):
            if not pending:
                self._send(FINALIZE, (job.id,), queue=self.settings.archive_queue,
                           priority=priority.URGENT)
            for index in pending:
                self._send_file(job, index)
            self.services.jobs.mark_queued(job.id)

    def submit_file(self, job: Job, index: int) -> None:
        with self._queueing(job):
            self._send_file(job, index)

    def submitted(self, job: Job) -> None:
        with self._queueing(job):
            self.services.jobs.mark_queued(job.id)

    def submit_stream(self, stream_id: str) -> None:
        """A task per rendition still to encode on the media queue; the worker that records
        the last one sends the packaging (`workers.tasks`)."""
        stream = self.services.streams.get(stream_id)
        if stream is None or stream.status.finished:
            return
        pending = [r.index for r in stream.renditions if not r.done]
        try:
            if not pending:
                self._send(STREAM_PACKAGE, (stream_id,), queue=self.settings.media_queue,
                           priority=priority.URGENT)
            for index in pending:
                self._send(STREAM_RENDITION, (stream_id, index),
                           queue=self.settings.media_queue, priority=priority.file_level(0))
        except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
            log.error("could not queue video stream %s: %s", stream_id, exc)
            raise _unqueued(exc) from exc

    def _send_file(self, job: Job, index: int) -> None:
        families = job.extra.get("families") or ["image"] * job.total_files
        self._send(RUN_FILE, (job.id, index, self.settings.archive_queue),
                   queue=self.queue_for(families[index]),
                   priority=priority.file_level(index, job.priority))

    def _send(self, name: str, args: tuple[Any, ...], *, queue: str, priority: int) -> None:
        """Send task `name`. The message carries this process's time limits, as a message
        sent through the registered task did: the API sizes its waits for a sync reply and
        for a finalisation from the same settings, so the worker must apply them too."""
        request_id = logs.context().get("request_id")
        self.app.send_task(name, args=args, queue=queue, priority=priority,
                           time_limit=self.settings.task_time_limit,
                           soft_time_limit=self.settings.task_soft_time_limit,
                           ignore_result=True,
                           headers={REQUEST_ID_HEADER: request_id} if request_id else None)

    @contextmanager
    def _queueing(self, job: Job) -> Iterator[None]:
        try:
            yield
        except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
            log.error("could not queue job %s: %s", job.id, exc)
            self.services.jobs.finish(job.id, status=JobStatus.FAILED,
                                      error_message="The job could not be queued; send it "
                                      "again.")
            raise _unqueued(exc) from exc

    def _await_reply(self, reply_to: str) -> Any:
        """The outcome a worker sends to `reply_to`. A conversion no worker took within
        CONVERTLY_SYNC_QUEUE_TIMEOUT is given up (QueueTimeoutError) unless a worker claims
        it first; one that started gets the task's time limit to finish."""
        reply = redisstate.wait_reply(self._state, reply_to, self.settings.sync_queue_timeout)
        if reply is None and redisstate.claim_reply(
                self._state, reply_to, redisstate.ABANDONED) == redisstate.ABANDONED:
            raise QueueTimeoutError()
        while reply is None or reply == [redisstate.STARTED]:
            reply = redisstate.wait_reply(self._state, reply_to,
                                          self.settings.task_time_limit + 60)
            if reply is None:
                raise ConversionError("No worker finished this conversion in time; retry later.")
        return reply

    async def convert(self, src: Path, spec: FileSpec, workdir: Path) -> ConvertedFile:
        storage = self.services.storage
        # A file no worker could convert is answered here and now: queued, it would wait
        # for a worker of its target's family, which may not be running at all.
        await asyncio.to_thread(pipeline.precheck, self.services, src, spec)
        prefix = f"sync/{uuid.uuid4()}"
        source_key = f"{prefix}/source"
        try:
            await asyncio.to_thread(storage.put_file, source_key, src)
            queue = self.queue_for(pipeline.task_family(
                src, spec.format.value if spec.format else None, self.services.registry))
            reply_to = f"cv:reply:{uuid.uuid4()}"
            try:
                self._send(CONVERT, (source_key, spec.to_dict(), prefix, reply_to),
                           queue=queue, priority=priority.URGENT)
            except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
                raise _unqueued(exc) from exc
            reply = await asyncio.get_running_loop().run_in_executor(
                self._waits, self._await_reply, reply_to)
            status, *payload = reply
            if status == "error":
                code, message, detail = payload
                err = from_code(code, message)
                err.detail = detail
                raise err
            out: dict[str, Any] = payload[0]
            local = ""
            if out["path"]:  # a tool that answers with facts alone has no file
                local = str(workdir / Path(out["path"]).name)
                await asyncio.to_thread(storage.get_file, out["path"], Path(local))
            return ConvertedFile(**{**out, "path": local,
                                    "notes": tuple(out.get("notes", ()))})
        finally:
            with contextlib.suppress(ServiceUnavailableError):
                await asyncio.to_thread(storage.delete_prefix, prefix)
