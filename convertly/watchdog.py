"""The job watchdog: finds the files of unfinished jobs that are pending with no queue entry,
no live holder and no recent progress (lost, whatever lost them), queues them again and
reports them, in both modes.

Every API process runs one (`Watchdog.run`, started with the app); one at a time looks, the
holder of a lease in the job store (`JobStore.claim_watch`), so two replicas never queue one
file twice. Each look, every CONVERTLY_WATCHDOG_INTERVAL seconds:

1. reads the pending files of the unfinished jobs from the job store;
2. asks the executor which of them it accounts for (`Executor.held_files`: waiting in a
   queue, running or held by a worker, waiting for a retry, or of a job whose upload is
   still being queued);
3. notes each of the others with its progress. A file seen unaccounted for and with the
   same progress for CONVERTLY_WATCHDOG_STALE seconds is lost: a WARNING names its job and
   file, the executor queues it again (`Executor.requeue_file`), and it is counted.

Queueing a file again is safe even if it was in fact still on its way: `pipeline.run_file`
skips a file that has its result. A lost file is queued again within STALE plus two
intervals of its loss, so no job stays `processing` longer than that plus its files' time
limits without progressing. `/healthz` shows what the latest look found (`report`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass

from convertly import transfers
from convertly.errors import ServiceUnavailableError
from convertly.executors.base import Executor
from convertly.models import FileStatus, Job, JobType
from convertly.service import Services

log = logging.getLogger("convertly.watchdog")

FileKey = tuple[str, int]  # (job id, file index)
ORPHAN_MARGIN = 60.0  # seconds past its download's deadline a queued transfer is orphaned


@dataclass(frozen=True)
class Report:
    """What `/healthz` shows: the lost files the latest look found (across the API
    processes), and how many files were queued again in all."""

    stuck_files: int
    requeued: int


def report(svc: Services) -> Report:
    stuck, requeued = svc.jobs.watch_report()
    return Report(stuck_files=stuck, requeued=requeued)


class Watchdog:
    def __init__(self, svc: Services, executor: Executor, owner: str | None = None) -> None:
        self.svc, self.executor = svc, executor
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.interval = svc.settings.watchdog_interval
        self.stale = svc.settings.watchdog_stale
        # A lost file -> (when this process first saw it so, its progress then).
        self._seen: dict[FileKey, tuple[float, float]] = {}

    @property
    def lease(self) -> float:
        """How long the lease lasts: a few looks, so that its holder keeps it while it
        lives and another process takes over soon after it is gone."""
        return 3 * self.interval

    async def run(self) -> None:
        """Look every interval until cancelled; an outage skips a look, nothing more."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.look()
            except ServiceUnavailableError as exc:
                log.warning("watchdog: %s", exc.message)
            except Exception:
                log.exception("watchdog failed")

    async def _orphaned_transfers(self, jobs: list[Job]) -> None:
        """A queued transfer's download runs in the API process that took it, within
        CONVERTLY_FETCH_TIMEOUT; one unfinished long after that lost its process (a restart,
        a crash): fail it, so that its client stops waiting and sends it again."""
        cutoff = time.time() - self.svc.settings.fetch_timeout - self.stale - ORPHAN_MARGIN
        for job in jobs:
            if job.job_type is JobType.TRANSFER and job.created_at < cutoff:
                log.warning("transfer job %s: unfinished %.0f s after it was queued; its "
                            "process went away, failing it", job.id,
                            time.time() - job.created_at)
                await asyncio.to_thread(
                    transfers.fail, self.svc, job.id, transfers.INTERRUPTED,
                    transfers.INTERRUPTED_CODE)

    async def look(self, now: float | None = None) -> list[FileKey]:
        """One look (when this process holds the lease): returns the files queued again."""
        if not await asyncio.to_thread(self.svc.jobs.claim_watch, self.owner, self.lease):
            self._seen.clear()  # another process looks; start afresh should it stop
            return []
        jobs = await asyncio.to_thread(self.svc.jobs.unfinished)
        await self._orphaned_transfers(jobs)
        # A transfer's file is fetched by the API process that took it, never queued.
        pending = {(job.id, r.index): r.progress for job in jobs
                   if not job.cancelled and job.job_type is not JobType.TRANSFER
                   for r in job.results if r.status is FileStatus.PENDING}
        held = await self.executor.held_files(jobs) if pending else set()
        now = time.monotonic() if now is None else now
        seen: dict[FileKey, tuple[float, float]] = {}
        lost: list[FileKey] = []
        for key, progress in pending.items():
            if key in held:
                continue
            since, before = self._seen.get(key, (now, progress))
            if before != progress:  # it moved: not lost (yet)
                since = now
            seen[key] = (since, progress)
            if now - since >= self.stale:
                lost.append(key)
        by_id = {job.id: job for job in jobs}
        requeued: list[FileKey] = []
        for job_id, index in lost:
            log.warning("job %s file %d: not queued, not held by any worker and no progress "
                        "for %.0f s; queueing it again", job_id, index,
                        now - seen[(job_id, index)][0])
            try:
                await self.executor.requeue_file(by_id[job_id], index)
            except ServiceUnavailableError:
                break  # seen again at the next look
            requeued.append((job_id, index))
            del seen[(job_id, index)]
        self._seen = seen
        await asyncio.to_thread(self.svc.jobs.note_watch, len(seen) + len(requeued),
                                len(requeued))
        return requeued
