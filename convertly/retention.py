"""Retention: short-lived outputs deleted once they expire, and finished jobs once
CONVERTLY_JOB_RETENTION (default 24 h) has passed: their record, sources and archive, and their
outputs unless the job was sent with saveToStorage=true (then the outputs stay as stored
files, listed in /api/files until deleted). The API process runs `purge_expired` every minute
(see `convertly.app`)."""

from __future__ import annotations

import time

from convertly.jobs import SAVED
from convertly.models import Job
from convertly.service import Services, job_prefix


def purge_expired(svc: Services) -> int:
    """Delete short-lived outputs whose time is up, and jobs finished longer than
    CONVERTLY_JOB_RETENTION seconds ago; return how many."""
    now = time.time()
    count = 0
    for record in svc.files.expired(now):
        svc.storage.delete(record.key)
        svc.files.remove(record.id)
        count += 1
    if svc.settings.job_retention:
        for job in svc.jobs.finished_before(now - svc.settings.job_retention):
            _delete_job(svc, job)
            count += 1
    return count


def _delete_job(svc: Services, job: Job) -> None:
    prefix = job_prefix(job.tenant, job.id)
    if job.extra.get(SAVED):
        # The outputs (and their file records) stay: only what was the job's own goes.
        svc.storage.delete_prefix(f"{prefix}/sources")
        if job.archive_key:
            svc.storage.delete(job.archive_key)
    else:
        svc.storage.delete_prefix(prefix)
        svc.files.remove_for_job(job.id)
    svc.jobs.delete(job)
