"""Retention: short-lived outputs deleted once they expire, and finished jobs (sources,
outputs, archive, records) once CONVERTLY_JOB_RETENTION has passed. The API process runs
`purge_expired` every minute (see `convertly.app`)."""

from __future__ import annotations

import time

from convertly.service import Services, job_prefix


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
