"""The tasks of distributed mode: thin shims over `convertly.pipeline`, registered under the
names `convertly.executors.celeryapp` declares (the API process sends them by those names).

`make_celery(settings)` builds the workers' app; `workers.celery_app:app` is the instance the
`celery` command line (and Flower) loads from the environment, and `convertly worker` runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from convertly import pipeline, priority, service
from convertly.errors import ConversionError, ConvertlyError, ServiceUnavailableError
from convertly.executors import libvips
from convertly.executors.celeryapp import CONVERT, FINALIZE, RUN_FILE, make_app
from convertly.executors.guard import TaskCancelled, TaskGuard, TaskLimitExceeded
from convertly.models import FileSpec
from convertly.settings import Settings
from convertly.state import redis as redisstate
from workers import brokerfix, leases

log = logging.getLogger("convertly.worker")

MAX_RETRIES = 12  # infrastructure outages: backoff 2, 4, ... 60 s, about ten minutes in all
# Publishing through a broker that is restarting: keep trying for about a minute.
PUBLISH_RETRY = {"max_retries": 30, "interval_start": 0.2, "interval_step": 0.5,
                 "interval_max": 2.0}
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
    return app


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


def services_for(task: Task) -> service.Services:
    return _process(task).services


def _guard() -> TaskGuard:
    return _processes[os.getpid()].guard


@contextlib.contextmanager
def _counted_delivery(svc: service.Services, name: str) -> Iterator[int]:
    """Yields how many earlier deliveries of this work died with their process; the count
    goes when the work ends in any way its process survives."""
    process = _processes[os.getpid()]
    if process.attempts is None:
        process.attempts = redisstate.connect(svc.settings.redis_state_url)
    client = process.attempts
    key = f"{redisstate.P}lost:{name}"
    ttl = 4 * svc.settings.task_time_limit + 3600

    def begin() -> int:
        with client.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, ttl)
            count, _ = pipe.execute()
        return int(count) - 1

    earlier = redisstate.guard(begin)
    try:
        yield earlier
    finally:
        with contextlib.suppress(ServiceUnavailableError):
            redisstate.guard(lambda: client.delete(key))


def _lost_message(deliveries: int) -> str:
    return (f"The conversion process died {deliveries} time(s) on this file (killed at a time "
            "or CPU limit, or crashed); it was not converted.")


def _register(app: Celery) -> None:
    @app.task(name=RUN_FILE, bind=True, max_retries=MAX_RETRIES, shared=False)
    def run_file(self: Task, job_id: str, index: int, finalize_queue: str) -> None:
        svc = services_for(self)
        try:
            with _counted_delivery(svc, f"{job_id}:{index}") as lost:
                if lost >= MAX_LOST_DELIVERIES:
                    last = pipeline.fail_file(svc, job_id, index, _lost_message(lost),
                                             "WORKER_CRASHED")
                else:
                    with _guard().task(stop_when=pipeline.cancel_check(svc, job_id)):
                        last = pipeline.run_file(svc, job_id, index,
                                                reraise=(SoftTimeLimitExceeded, MemoryError))
        except TaskCancelled:
            last = False  # the cancel recorded the job's end; this file reads as cancelled
        except TaskLimitExceeded as exc:
            last = pipeline.fail_file(svc, job_id, index, exc.error.message, exc.error.code)
        except SoftTimeLimitExceeded:
            last = pipeline.fail_file(
                svc, job_id, index,
                f"The conversion took longer than {svc.settings.task_soft_time_limit} s "
                "(CONVERTLY_TASK_SOFT_TIME_LIMIT) and was stopped.", "TIME_LIMIT",
            )
        except ServiceUnavailableError as exc:
            if self.request.retries < MAX_RETRIES:
                raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1)),
                                 retry_policy=PUBLISH_RETRY) from exc
            log.error("job %s file %d: giving up after %d retries: %s", job_id, index,
                      self.request.retries, exc.message)
            last = pipeline.fail_file(svc, job_id, index, exc.message, exc.code)
        # The join: the task that records a job's last result queues its finalisation (the
        # job store decides "last" atomically); a redelivered task whose file was done
        # before queues it again if the job still waits for it. Finalising is idempotent.
        if last:
            _queue_finalize(self, svc, job_id, finalize_queue)

    @app.task(name=FINALIZE, bind=True, max_retries=MAX_RETRIES, shared=False)
    def finalize(self: Task, job_id: str) -> None:
        try:
            pipeline.finalize_job(services_for(self), job_id)
        except ServiceUnavailableError as exc:
            raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1)),
                             retry_policy=PUBLISH_RETRY) from exc

    @app.task(name=CONVERT, bind=True, shared=False, ignore_result=True)
    def convert(self: Task, source_key: str, spec: dict[str, Any], output_prefix: str,
                reply_to: str) -> None:
        """A sync conversion; the outcome goes to the Redis list `reply_to`, where the API
        process that received the request waits for it."""
        svc = services_for(self)
        reply: list[Any]
        try:
            if not redisstate.start_reply(svc.settings.redis_state_url, reply_to):
                log.info("sync conversion %s: its request gave up waiting for a worker; "
                         "not converted", reply_to)
                return
            with _counted_delivery(svc, reply_to) as lost, \
                    service.scratch_dir(svc, "sync") as workdir:
                if lost:
                    raise ConversionError(_lost_message(lost))
                src = workdir / "source"
                svc.storage.get_file(source_key, src)
                with _guard().task():
                    out = pipeline.convert_path(svc, src, FileSpec.from_dict(spec), workdir)
                key = f"{output_prefix}/{Path(out.path).name}"
                svc.storage.put_file(key, Path(out.path), move=True)
            reply = ["ok", {**out.to_dict(), "path": key}]
        except ConvertlyError as exc:
            reply = ["error", exc.code, exc.message, exc.detail]
        except TaskLimitExceeded as exc:
            reply = ["error", exc.error.code, exc.error.message, exc.error.detail]
        except SoftTimeLimitExceeded:
            reply = ["error", "CONVERSION_FAILED",
                     f"The conversion took longer than {svc.settings.task_soft_time_limit} s "
                     "(CONVERTLY_TASK_SOFT_TIME_LIMIT) and was stopped.", {}]
        except Exception:
            # The API process waits for a reply until the task's time limit: always send one.
            log.exception("sync conversion %s failed unexpectedly", reply_to)
            error = ConvertlyError()
            reply = ["error", error.code, error.message, {}]
        redisstate.send_reply(svc.settings.redis_state_url, reply_to, reply)


def _queue_finalize(task: Task, svc: service.Services, job_id: str, queue: str) -> None:
    """Queue the job's finalisation; when the broker stays unreachable, finalise right here
    (it is idempotent). Should that fail too, the API's watchdog queues it later."""
    try:
        task.app.signature(FINALIZE, args=(job_id,), queue=queue,
                           priority=priority.URGENT).apply_async(
            retry=True, retry_policy=PUBLISH_RETRY)
        return
    except (kombu.exceptions.OperationalError, redis.RedisError) as exc:
        log.warning("job %s: could not queue its finalisation (%s); finalising here",
                    job_id, exc)
    try:
        pipeline.finalize_job(svc, job_id)
    except ServiceUnavailableError as exc:
        log.error("job %s: not finalised (%s); the API's watchdog will queue it",
                  job_id, exc.message)
