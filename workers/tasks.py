"""The tasks of distributed mode: thin shims over `convertly.pipeline`, registered under the
names `convertly.executors.celeryapp` declares (the API process sends them by those names).

`make_celery(settings)` builds the workers' app; `workers.celery_app:app` is the instance the
`celery` command line (and Flower) loads from the environment, and `convertly worker` runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import kombu.exceptions
import redis
from celery import Celery, Task, signals
from celery.exceptions import Reject, SoftTimeLimitExceeded

from convertly import logs, metrics, pipeline, priority, service, tracing, videostreams
from convertly.errors import ConversionError, ConvertlyError, ServiceUnavailableError
from convertly.executors import libvips
from convertly.executors.celeryapp import (
    CONVERT,
    FINALIZE,
    REQUEST_ID_HEADER,
    RUN_FILE,
    STREAM_PACKAGE,
    STREAM_RENDITION,
    make_app,
)
from convertly.executors.guard import TaskCancelled, TaskGuard, TaskLimitExceeded
from convertly.models import FileSpec
from convertly.settings import Settings
from convertly.state import redis as redisstate
from workers import brokerfix, leases

log = logging.getLogger("convertly.worker")
T = TypeVar("T")

# Through an outage of Redis (state or broker) or S3, a task waits in place and tries again,
# its message held unacknowledged under the worker's lease: nothing has to be published
# while the broker is away. Waits double from HOLD_FIRST up to HOLD_MAX seconds.
HOLD_FIRST = 0.5
HOLD_MAX = 2.0
# Publishing a finalisation: a short try; when the broker does not take it, the job is
# finalised in place instead.
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 1.0}
# Deliveries of one file whose worker process died mid-conversion (killed at the hard time
# limit or the CPU guard, or crashed) before the file is failed instead of tried again:
# task_reject_on_worker_lost requeues such a message, and a file that kills every process
# that takes it would otherwise go round for ever. A sync conversion is not tried again.
MAX_LOST_DELIVERIES = 2


@dataclass
class _Process:
    """What a worker pool process builds on its first task and keeps for the next ones."""

    services: service.Services
    guard: TaskGuard
    attempts: Any = None  # Redis client for the counts of lost deliveries, made on first use
    owed: set[str] = field(default_factory=set)  # counts to clear once Redis is back
    # Whether the running task has waited for an outage: its soft time limit then no longer
    # measures its own work, so reaching it sends the message back to its queue (a new
    # delivery has the whole time) instead of failing the file.
    waited: bool = False


# The per-process cache, keyed by pid: a pool child (forked from the worker's main process,
# and recycled after worker_max_tasks_per_child tasks) must not reuse its parent's
# connections, nor rely on a guard whose watchdog thread the fork did not copy, so each
# process builds its own once and keeps it for its lifetime.
_processes: dict[int, _Process] = {}


def make_celery(settings: Settings) -> Celery:
    """The workers' Celery app for these settings: the configuration both sides share
    (`convertly.executors.celeryapp`), every task registered under its name there, and the
    lease bootstep."""
    brokerfix.apply()
    app = make_app(settings)
    app.steps["worker"].add(leases.LeaseStep)
    _register(app)
    _register_streams(app)
    _observe(settings)
    return app


def _observe(settings: Settings) -> None:
    """The worker's log lines in the app's format, and its metrics: counted by every pool
    process in the worker's own metrics directory (the children inherit it at the fork)
    and served on CONVERTLY_WORKER_METRICS_PORT by the main process."""

    def setup_logging(**_: Any) -> None:  # connected: Celery leaves the root logger alone
        logs.configure(settings.log_level, settings.log_format)

    def worker_init(**_: Any) -> None:
        metrics.setup(settings.metrics_path, clean=True)
        if settings.worker_metrics_port:
            metrics.serve_worker_metrics(settings.worker_metrics_port)
            log.info("metrics served on port %d", settings.worker_metrics_port)

    def process_init(**_: Any) -> None:  # each pool process, after the fork
        metrics.reserve()
        if tracing.enabled(settings):
            tracing.instrument_celery(tracing.provider(settings))

    signals.setup_logging.connect(setup_logging, weak=False)
    signals.worker_init.connect(worker_init, weak=False)
    signals.worker_process_init.connect(process_init, weak=False)


def _process(task: Task) -> _Process:
    """This process's services and guard, built on its first task."""
    pid = os.getpid()
    process = _processes.get(pid)
    if process is None:
        settings: Settings = task.app.conf.convertly_settings
        libvips.configure(settings.worker_concurrency)
        svc = service.build_services(settings)
        guard = TaskGuard(cpu_seconds=settings.task_cpu_seconds,
                          memory_bytes=settings.task_max_memory)
        guard.install()
        process = _processes[pid] = _Process(svc, guard)
    return process


def _guard() -> TaskGuard:
    return _processes[os.getpid()].guard


class _Requeue(Exception):
    """The outage outlasted the task's time: its message goes back to its queue."""


def _begin_task(task: Task) -> service.Services:
    """This process's services, for a task that starts now (it has waited for nothing);
    its log lines carry the id of the request that queued it (a message header)."""
    logs.start(request_id=task.request.get(REQUEST_ID_HEADER)
               or (task.request.headers or {}).get(REQUEST_ID_HEADER))
    process = _process(task)
    process.waited = False
    return process.services


def _time_up(exc: SoftTimeLimitExceeded) -> None:
    """The soft time limit struck: requeue when an outage took part of the task's time."""
    if _processes[os.getpid()].waited:
        raise _Requeue("the task's soft time limit came after it waited for an outage") \
            from exc


def _hold(step: Callable[[], T], /) -> T:
    """`step()`, waited for in place through an outage of Redis or S3: tried again with
    backoff while the task's message stays unacknowledged (listed in the worker's lease),
    until the task's soft time limit, when `_Requeue` gives the message back to its queue.
    Every step given is idempotent."""
    delay, waited_since = HOLD_FIRST, None
    try:
        while True:
            try:
                value = step()
            except ServiceUnavailableError as exc:
                if waited_since is None:
                    waited_since = time.monotonic()
                    _processes[os.getpid()].waited = True
                    log.warning("waiting in place, the task's message held: %s", exc.message)
                time.sleep(delay)
                delay = min(2 * delay, HOLD_MAX)
                continue
            if waited_since is not None:
                log.warning("the outage ended after %.1f s; going on",
                            time.monotonic() - waited_since)
            return value
    except SoftTimeLimitExceeded as exc:
        if not _processes[os.getpid()].waited:
            raise
        raise _Requeue("the outage outlasted the task's soft time limit") from exc


@contextlib.contextmanager
def _counted_delivery(svc: service.Services, name: str) -> Iterator[int]:
    """Yields how many earlier deliveries of this work died with their process; the count
    goes when the work ends in any way its process survives (waiting for Redis to clear
    it, so that an outage is not taken for a death). It wraps the work's waits in place:
    trying again is not a new delivery."""
    process = _processes[os.getpid()]
    if process.attempts is None:
        process.attempts = redisstate.connect(svc.settings.redis_state_url)
    client = process.attempts
    key = f"{redisstate.P}lost:{name}"
    ttl = 4 * svc.settings.task_time_limit + 3600

    def begin() -> int:
        with client.pipeline() as pipe:
            if process.owed:  # counts of work requeued while Redis was away (see below)
                pipe.delete(*process.owed)
            pipe.incr(key)
            pipe.expire(key, ttl)
            *_, count, _ = pipe.execute()
        process.owed.clear()
        return int(count) - 1

    def end() -> None:
        redisstate.guard(lambda: client.delete(key))

    def settle(wait: bool) -> None:
        try:
            _hold(end) if wait else end()
        except (ServiceUnavailableError, _Requeue):
            # Redis is still away: this process clears the count with its next task's,
            # so that the outage is not taken for a death of this work.
            process.owed.add(key)
            raise

    earlier = _hold(lambda: redisstate.guard(begin))
    try:
        yield earlier
    except _Requeue:  # the soft time limit has struck: one try, no wait
        with contextlib.suppress(ServiceUnavailableError):
            settle(wait=False)
        raise
    except BaseException:
        with contextlib.suppress(_Requeue):
            settle(wait=True)
        raise
    settle(wait=True)


def _lost_message(deliveries: int) -> str:
    return (f"The conversion process died {deliveries} time(s) on this file (killed at a time "
            "or CPU limit, or crashed); it was not converted.")


def _requeued(exc: _Requeue) -> Reject:
    """What a task raises to give its message back to the front of its queue (a
    rejection with requeue; should the broker be away too, the message stays in its
    unacknowledged set and the lease sweep requeues it)."""
    log.warning("%s; the message goes back to its queue", exc)
    return Reject(str(exc), requeue=True)


def _run_file(svc: service.Services, job_id: str, index: int, lost: int) -> bool:
    """Convert and record one file of a job (`pipeline.run_file`), or record why it could
    not be; True when this finished the job's last file. A ServiceUnavailableError
    propagates only from steps that are safe to run again."""
    if lost >= MAX_LOST_DELIVERIES:
        return _hold(lambda: pipeline.fail_file(svc, job_id, index, _lost_message(lost),
                                                "WORKER_CRASHED"))
    try:
        with _guard().task(stop_when=pipeline.cancel_check(svc, job_id)):
            return pipeline.run_file(svc, job_id, index,
                                     reraise=(SoftTimeLimitExceeded, MemoryError, _Requeue),
                                     persist=_hold)
    except TaskCancelled:
        return False  # the cancel recorded the job's end; this file reads as cancelled
    except TaskLimitExceeded as exc:
        error = exc.error
        return _hold(lambda: pipeline.fail_file(svc, job_id, index, error.message,
                                                error.code))
    except SoftTimeLimitExceeded as exc:
        _time_up(exc)
        message = (f"The conversion took longer than {svc.settings.task_soft_time_limit}"
                   " s (CONVERTLY_TASK_SOFT_TIME_LIMIT) and was stopped.")
        return _hold(lambda: pipeline.fail_file(svc, job_id, index, message, "TIME_LIMIT"))


def _register(app: Celery) -> None:
    @app.task(name=RUN_FILE, bind=True, shared=False)
    def run_file(self: Task, job_id: str, index: int, finalize_queue: str) -> None:
        svc = _begin_task(self)
        try:
            with _counted_delivery(svc, f"{job_id}:{index}") as lost:
                last = _hold(lambda: _run_file(svc, job_id, index, lost))
                # The join: the task that records a job's last result queues its
                # finalisation (the job store decides "last" atomically); a redelivered
                # task whose file was done before queues it again if the job still waits
                # for it. Finalising is idempotent.
                if last:
                    _queue_finalize(self, svc, job_id, finalize_queue)
        except _Requeue as exc:
            raise _requeued(exc) from None

    @app.task(name=FINALIZE, bind=True, shared=False)
    def finalize(self: Task, job_id: str) -> None:
        svc = _begin_task(self)
        logs.bind(job_id=job_id)
        try:
            _hold(lambda: pipeline.finalize_job(svc, job_id))
        except _Requeue as exc:
            raise _requeued(exc) from None

    @app.task(name=CONVERT, bind=True, shared=False, ignore_result=True)
    def convert(self: Task, source_key: str, spec: dict[str, Any], output_prefix: str,
                reply_to: str) -> None:
        """A sync conversion; the outcome goes to the Redis list `reply_to`, where the API
        process that received the request waits for it."""
        svc = _begin_task(self)
        url = svc.settings.redis_state_url
        try:
            claim = _hold(lambda: redisstate.start_reply(url, reply_to))
            if claim == redisstate.ABANDONED:
                log.info("sync conversion %s: its request gave up waiting for a worker; "
                         "not converted", reply_to)
                return
            if claim == redisstate.REPLIED:
                log.info("sync conversion %s: answered before (a redelivery); not converted "
                         "again", reply_to)
                return
            with _counted_delivery(svc, reply_to) as lost:
                reply = _hold(lambda: _convert(svc, source_key, spec, output_prefix,
                                               reply_to, lost))
                _hold(lambda: redisstate.send_reply(url, reply_to, reply, final=True))
        except _Requeue as exc:
            raise _requeued(exc) from None


def _convert(svc: service.Services, source_key: str, spec: dict[str, Any],
             output_prefix: str, reply_to: str, lost: int) -> list[Any]:
    """One sync conversion: its reply. A ServiceUnavailableError propagates (the task waits
    for S3 or Redis and tries again); any other failure is the reply."""
    try:
        with service.scratch_dir(svc, "sync") as workdir:
            if lost:
                raise ConversionError(_lost_message(lost))
            src = workdir / "source"
            svc.storage.get_file(source_key, src)
            with _guard().task():
                out = pipeline.convert_path(svc, src, FileSpec.from_dict(spec), workdir,
                                            mode="sync")
            key = ""
            if out.path:  # a tool that answers with facts alone has no file
                key = f"{output_prefix}/{Path(out.path).name}"
                _hold(lambda: svc.storage.put_file(key, Path(out.path), move=True))
        return ["ok", {**out.to_dict(), "path": key}]
    except ServiceUnavailableError:
        raise
    except ConvertlyError as exc:
        return ["error", exc.code, exc.message, exc.detail]
    except TaskLimitExceeded as exc:
        return ["error", exc.error.code, exc.error.message, exc.error.detail]
    except SoftTimeLimitExceeded as exc:
        _time_up(exc)
        return ["error", "CONVERSION_FAILED",
                f"The conversion took longer than {svc.settings.task_soft_time_limit} s "
                "(CONVERTLY_TASK_SOFT_TIME_LIMIT) and was stopped.", {}]
    except _Requeue:
        raise
    except Exception:
        # The API process waits for a reply until the task's time limit: always send one.
        log.exception("sync conversion %s failed unexpectedly", reply_to)
        error = ConvertlyError()
        return ["error", error.code, error.message, {}]


def _register_streams(app: Celery) -> None:
    """The video stream tasks (`convertly.videostreams`): one per rendition, then the
    packaging, both on the media queue. A message whose process died goes back to the queue
    (task_reject_on_worker_lost, and the lease sweep when the whole worker went); after
    MAX_LOST_DELIVERIES such deaths the stream fails instead."""

    @app.task(name=STREAM_RENDITION, bind=True, shared=False)
    def stream_rendition(self: Task, stream_id: str, index: int) -> None:
        svc = _begin_task(self)
        logs.bind(stream_id=stream_id)
        try:
            with _counted_delivery(svc, f"{stream_id}:{index}") as lost:
                if lost >= MAX_LOST_DELIVERIES:
                    _hold(lambda: videostreams.fail(svc, stream_id, _lost_message(lost),
                                                    "WORKER_CRASHED"))
                    return
                # An outage anywhere in the step: waited out in place, the step run again
                # (it is idempotent).
                if _hold(lambda: _stream_step(svc, stream_id, lambda: videostreams.run_rendition(
                        svc, stream_id, index, persist=_hold))):
                    _send_package(self, svc, stream_id)
        except _Requeue as exc:
            raise _requeued(exc) from None

    @app.task(name=STREAM_PACKAGE, bind=True, shared=False)
    def stream_package(self: Task, stream_id: str) -> None:
        svc = _begin_task(self)
        logs.bind(stream_id=stream_id)
        try:
            with _counted_delivery(svc, f"{stream_id}:package") as lost:
                if lost >= MAX_LOST_DELIVERIES:
                    _hold(lambda: videostreams.fail(svc, stream_id, _lost_message(lost),
                                                    "WORKER_CRASHED"))
                    return
                _hold(lambda: _stream_step(svc, stream_id, lambda: videostreams.package_stream(
                    svc, stream_id, persist=_hold)))
        except _Requeue as exc:
            raise _requeued(exc) from None


def _stream_step(svc: service.Services, stream_id: str, step: Callable[[], T]) -> T | None:
    """Run a stream task's step under the task guard; a limit reached fails the stream."""
    try:
        with _guard().task():
            return step()
    except TaskLimitExceeded as exc:
        error = exc.error
        _hold(lambda: videostreams.fail(svc, stream_id, error.message, error.code))
    except SoftTimeLimitExceeded as exc:
        _time_up(exc)
        message = (f"The encoding took longer than {svc.settings.task_soft_time_limit}"
                   " s (CONVERTLY_TASK_SOFT_TIME_LIMIT) and was stopped.")
        _hold(lambda: videostreams.fail(svc, stream_id, message, "TIME_LIMIT"))
    return None


def _send_package(task: Task, svc: service.Services, stream_id: str) -> None:
    """Queue the stream's packaging; when the broker does not take it, package right here
    (it is idempotent)."""
    try:
        task.app.signature(STREAM_PACKAGE, args=(stream_id,),
                           queue=svc.settings.media_queue,
                           priority=priority.URGENT).apply_async(
            retry=True, retry_policy=PUBLISH_RETRY)
        return
    except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
        log.warning("stream %s: could not queue its packaging (%s); packaging here",
                    stream_id, exc)
    _stream_step(svc, stream_id, lambda: videostreams.package_stream(svc, stream_id,
                                                                     persist=_hold))


def _queue_finalize(task: Task, svc: service.Services, job_id: str, queue: str) -> None:
    """Queue the job's finalisation; when the broker does not take it, finalise right here
    (it is idempotent), waiting for the job state if it is away too."""
    try:
        request_id = logs.context().get("request_id")
        task.app.signature(FINALIZE, args=(job_id,), queue=queue,
                           priority=priority.URGENT).apply_async(
            retry=True, retry_policy=PUBLISH_RETRY,
            headers={REQUEST_ID_HEADER: request_id} if request_id else None)
        return
    except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
        log.warning("job %s: could not queue its finalisation (%s); finalising here",
                    job_id, exc)
    _hold(lambda: pipeline.finalize_job(svc, job_id))
