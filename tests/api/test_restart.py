"""Jobs survive a restart: what was accepted is finished by the next start on the same data."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from convertly import pipeline
from convertly.models import FileStatus, JobStatus
from convertly.settings import Settings
from tests import images
from tests.api.support import (
    create_job,
    deployed,
    download,
    running_app,
    services_for,
    store_job,
    wait_for_job,
)


def test_unfinished_jobs_complete_after_a_restart(mode: str, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    settings, cluster = deployed(mode, Settings(data_dir=tmp_path / "data", workers=1),
                                 request)

    # 1. A job accepted over HTTP, then the server stops with its files still queued.
    with running_app(mode, settings, cluster) as env:
        tenant = env.new_tenant()
        uploads = [(f"{i}.jpg", images.jpeg(480, 360, seed=i)) for i in range(6)]
        interrupted = create_job(env.client, tenant, uploads, format="avif")

    # 2. While no server runs: a job stored but never queued, and a job whose files all
    #    have results but which was never finalised (the process died just before).
    svc = services_for(mode, settings)
    # (Usually some of its files are still pending here; either way it must end completed.)
    assert svc.jobs.get(interrupted) is not None
    queued = store_job(svc, tenant, [("a.jpg", images.jpeg(120, 90)),
                                     ("b.png", images.png(90, 120))], tmp_path / "spool-1")
    unfinalised = store_job(svc, tenant, [("c.jpg", images.jpeg(100, 80)),
                                          ("d.jpg", images.jpeg(80, 100))],
                            tmp_path / "spool-2", create_archive=True)
    assert pipeline.run_file(svc, unfinalised.id, 0) is False
    assert pipeline.run_file(svc, unfinalised.id, 1) is True  # the caller should finalise...
    stalled = svc.jobs.get(unfinalised.id)
    assert stalled is not None
    assert stalled.status is JobStatus.PROCESSING  # ...but never did
    assert all(r.status is FileStatus.COMPLETED for r in stalled.results)

    # 3. The next start finishes all three.
    with running_app(mode, settings, cluster) as env:
        first = wait_for_job(env.client, tenant, interrupted)
        assert first["status"] == "completed", first
        assert first["completedFiles"] == 6
        for result in first["results"]:
            out = images.decode(download(env.client, result["downloadUrl"]).content)
            assert (out.format, out.size) == ("AVIF", (480, 360))

        second = wait_for_job(env.client, tenant, queued.id)
        assert second["status"] == "completed", second
        sizes = [images.decode(download(env.client, r["downloadUrl"]).content).size
                 for r in second["results"]]
        assert sizes == [(120, 90), (90, 120)]

        third = wait_for_job(env.client, tenant, unfinalised.id)
        assert third["status"] == "completed", third
        assert third["progress"] == 100
        archive = download(env.client, third["archive"]["downloadUrl"]).content
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            assert sorted(zf.namelist()) == ["c.png", "d.png"]
            assert images.decode(zf.read("d.png")).size == (80, 100)
