"""CONVERTLY_JOB_RETENTION: finished jobs older than the retention lose their files and
records; newer ones keep everything."""

from __future__ import annotations

import dataclasses
import math
import time

from starlette.testclient import TestClient

from convertly import retention, service
from tests import images
from tests.api.support import AppEnv, Tenant, create_job, wait_for_job


def test_expired_jobs_are_removed_with_their_files(app_env: AppEnv, client: TestClient,
                                                   tenant: Tenant) -> None:
    old = wait_for_job(client, tenant, create_job(
        client, tenant, [("a.jpg", images.jpeg(80, 60)), ("b.png", images.png(60, 80))],
        format="webp", createArchive=True))
    assert old["status"] == "completed"
    time.sleep(2.0)
    fresh = wait_for_job(client, tenant, create_job(
        client, tenant, [("c.jpg", images.jpeg(40, 30))], format="png"))
    svc = app_env.services
    prefix = service.job_prefix(tenant.tenant, old["jobId"])
    assert list(svc.storage.list_prefix(prefix))

    old_done = svc.jobs.get(old["jobId"]).completed_at  # type: ignore[union-attr]
    assert old_done is not None
    # A retention whose cutoff falls after the old job finished and before the fresh one:
    # at least two seconds separate them.
    kept_for = math.floor(time.time() - old_done)
    keeping = dataclasses.replace(svc, settings=svc.settings.replace(job_retention=kept_for))
    assert retention.purge_expired(keeping) >= 1

    assert client.get(f"/api/jobs/{old['jobId']}", headers=tenant.headers).status_code == 404
    assert list(svc.storage.list_prefix(prefix)) == []
    assert client.get(old["results"][0]["downloadUrl"]).status_code == 404
    assert client.get(old["archive"]["downloadUrl"]).status_code == 404
    stored = old["results"][0]["storedFileId"]
    assert svc.files.get(stored, tenant.tenant) is None
    # The newer job is untouched.
    again = client.get(f"/api/jobs/{fresh['jobId']}", headers=tenant.headers).json()
    assert again["status"] == "completed"
    assert client.get(again["results"][0]["downloadUrl"]).status_code == 200
