"""CONVERTLY_JOB_RETENTION (a day by default): finished jobs older than the retention lose
their files and records, except the outputs of jobs sent with saveToStorage=true and the
files uploaded to storage; newer jobs keep everything."""

from __future__ import annotations

import dataclasses
import math
import time

from starlette.testclient import TestClient

from convertly import retention, service
from convertly.settings import Settings
from tests import images
from tests.api.library_support import fetch, upload
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


def test_outputs_of_a_saved_job_outlive_it_and_stored_files_stay(
        app_env: AppEnv, client: TestClient, tenant: Tenant) -> None:
    assert Settings().job_retention == 86_400  # on by default: a day
    photo = images.jpeg(30, 20)
    uploaded = upload(client, tenant, "kept.jpg", photo)
    saved = wait_for_job(client, tenant, create_job(
        client, tenant, [("s.jpg", images.jpeg(80, 60))], format="png", createArchive=True,
        saveToStorage=True))
    unsaved = wait_for_job(client, tenant, create_job(
        client, tenant, [("u.jpg", images.jpeg(60, 80))], format="png", createArchive=True))
    assert saved["status"] == unsaved["status"] == "completed"
    time.sleep(1.1)  # both finished over a second ago
    svc = app_env.services
    keeping = dataclasses.replace(svc, settings=svc.settings.replace(job_retention=1))
    assert retention.purge_expired(keeping) >= 2

    for job in (saved, unsaved):
        assert client.get(f"/api/jobs/{job['jobId']}", headers=tenant.headers).status_code == 404
        assert client.get(job["archive"]["downloadUrl"]).status_code == 404
    # The job sent without saveToStorage: its outputs are gone, bytes and records.
    assert list(svc.storage.list_prefix(service.job_prefix(tenant.tenant,
                                                           unsaved["jobId"]))) == []
    assert svc.files.get(unsaved["results"][0]["storedFileId"], tenant.tenant) is None
    assert client.get(unsaved["results"][0]["downloadUrl"]).status_code == 404
    # The one sent with it: sources and archive gone, the output kept as a stored file.
    left = list(svc.storage.list_prefix(service.job_prefix(tenant.tenant, saved["jobId"])))
    assert len(left) == 1 and "/outputs/" in left[0]
    kept = client.get(f"/api/files/{saved['results'][0]['storedFileId']}", headers={
        **tenant.headers, "Accept": "application/json"})
    assert kept.status_code == 200
    assert images.decode(fetch(client, kept.json()["file"]["download_url"]).content
                         ).size == (80, 60)
    assert images.decode(fetch(client, saved["results"][0]["downloadUrl"]).content
                         ).size == (80, 60)
    # An uploaded file is never the retention's.
    assert fetch(client, uploaded["download_url"]).content == photo
