"""The state behind rate limits and quotas, on both engines: rate buckets, job quotas checked
in the transaction that stores the job, stored bytes that follow every record change, and a
tenant's own limits."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from convertly.errors import ConcurrentJobsLimitError, QueuedFilesLimitError
from convertly.models import FileResult, FileStatus, JobStatus
from convertly.state.base import FileStore, JobStore, KeyStore, RateLimitStore
from convertly.state.inprocess import InProcessRateLimitStore
from convertly.state.records import (
    Bucket,
    JobQuota,
    StoredFile,
    TenantLimits,
    new_file_id,
)
from convertly.state.redis.files import RedisFileStore
from convertly.state.redis.jobs import RedisJobStore
from convertly.state.redis.keys import RedisKeyStore
from convertly.state.redis.rates import RedisRateLimitStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.files import SqliteFileStore
from convertly.state.sqlite.jobs import SqliteJobStore
from convertly.state.sqlite.keys import SqliteKeyStore
from tests.state.conftest import ENGINES
from tests.state.test_jobs import new_job


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    if request.param == "sqlite":
        db = Database(tmp_path / "state.db")
        return {"jobs": SqliteJobStore(db), "files": SqliteFileStore(db),
                "keys": SqliteKeyStore(db), "rates": InProcessRateLimitStore()}
    client = request.getfixturevalue("redis_client")
    return {"jobs": RedisJobStore(client), "files": RedisFileStore(client),
            "keys": RedisKeyStore(client), "rates": RedisRateLimitStore(client)}


def test_a_bucket_passes_its_burst_then_refuses_until_it_refills(engine: dict) -> None:
    rates: RateLimitStore = engine["rates"]
    a, b = Bucket("key:a", 10.0, 5), Bucket("key:b", 10.0, 5)
    first, none = rates.check(a)
    assert first is not None and none is None
    assert (first.allowed, first.limit, first.remaining) == (True, 5, 4)
    assert 0.09 <= first.reset <= 0.11 and first.window == 0.5
    for left in (3, 2, 1, 0):
        decision = rates.check(a)[0]
        assert decision is not None and decision.allowed and decision.remaining == left
    refused = rates.check(a)[0]
    assert refused is not None and not refused.allowed and refused.remaining == 0
    assert 0 < refused.retry_after <= 0.11
    assert rates.check(b)[0].allowed  # type: ignore[union-attr]  # buckets are separate
    time.sleep(refused.retry_after + 0.02)
    assert rates.check(a)[0].allowed  # type: ignore[union-attr]
    assert not rates.check(a)[0].allowed  # type: ignore[union-attr]


def test_a_full_guard_stops_the_take_and_is_never_counted(engine: dict) -> None:
    rates: RateLimitStore = engine["rates"]
    guard, take = Bucket("auth:x", 1.0, 2), Bucket("key:c", 1.0, 6)
    for _ in range(5):  # asked, not counted: it never fills
        taken, guarded = rates.check(take, guard)
        assert taken is not None and taken.allowed
        assert guarded is not None and guarded.allowed and guarded.remaining == 1
    rates.check(guard)
    rates.check(guard)
    taken, guarded = rates.check(take, guard)
    assert taken is None and guarded is not None and not guarded.allowed
    assert 0 < guarded.retry_after <= 1.01
    # The request the guard refused took nothing: the sixth place is still there.
    last = rates.check(take)[0]
    assert last is not None and last.allowed and last.remaining == 0
    assert rates.check(None) == (None, None)


def test_concurrent_creations_never_pass_the_job_quota(engine: dict) -> None:
    jobs: JobStore = engine["jobs"]
    quota = JobQuota(concurrent_jobs=3)
    outcomes: list[object] = []

    def create() -> None:
        try:
            outcomes.append(jobs.create(new_job(1), None, 60, quota))
        except ConcurrentJobsLimitError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [o for o in outcomes if isinstance(o, tuple)]
    assert len(created) == 3 and len(outcomes) == 8
    refused = next(o for o in outcomes if isinstance(o, ConcurrentJobsLimitError))
    assert refused.retry_after >= 1 and refused.headers["RateLimit-Limit"] == "3"
    assert "concurrent jobs: 3" in refused.message
    # A finished job frees its place: the count is read from the jobs, not kept aside.
    job = created[0][0]
    jobs.finish(job.id, status=JobStatus.COMPLETED)
    assert jobs.create(new_job(1), None, 60, quota)[1]


def test_queued_files_count_only_files_without_a_result(engine: dict) -> None:
    jobs: JobStore = engine["jobs"]
    quota = JobQuota(queued_files=4)
    job, _ = jobs.create(new_job(3), None, 60, quota)
    with pytest.raises(QueuedFilesLimitError, match="queued files: 4"):
        jobs.create(new_job(2), None, 60, quota)
    # A refused job with an Idempotency-Key leaves the key free for the retry.
    with pytest.raises(QueuedFilesLimitError):
        jobs.create(new_job(2), "retry-me", 60, quota)
    jobs.start_file(job.id, 0)
    jobs.record_file(FileResult(index=0, filename="0.png", status=FileStatus.COMPLETED,
                                format="png"), job.id)
    again, created = jobs.create(new_job(2), "retry-me", 60, quota)
    assert created
    # Cancelled jobs hold nothing.
    jobs.cancel(job.id, "t1")
    jobs.cancel(again.id, "t1")
    assert jobs.create(new_job(4), None, 60, quota)[1]


def _file(size: int, *, temporary: bool = False, tenant: str = "t1") -> StoredFile:
    return StoredFile(id=new_file_id(), tenant=tenant, key=f"k/{size}", filename="a.png",
                      mime_type="image/png", size_bytes=size, temporary=temporary,
                      created_at=time.time())


def test_stored_bytes_follow_every_record_change(engine: dict) -> None:
    files: FileStore = engine["files"]
    a = files.add(_file(100))
    assert files.stored_bytes("t1") == 100  # computed from the records the first time
    b = files.add(_file(50))
    upload = files.add(_file(70, temporary=True))  # a direct upload not complete yet
    files.add(_file(999, tenant="t2"))
    assert files.stored_bytes("t1") == 150
    files.update(upload.id, "t1", temporary=False, size_bytes=80)
    assert files.stored_bytes("t1") == 230
    files.update(a.id, "t1", filename="renamed.png")
    assert files.stored_bytes("t1") == 230
    files.remove(b.id)
    files.remove(b.id)  # twice: no change
    assert files.stored_bytes("t1") == 180
    assert files.stored_bytes("t2") == 999
    assert files.stored_bytes("nobody") == 0


def test_tenant_limits_are_kept_per_tenant(engine: dict) -> None:
    keys: KeyStore = engine["keys"]
    assert keys.limits("t1") == TenantLimits()
    own = TenantLimits(rate=2.5, burst=10, stored_bytes=0)
    keys.set_limits("t1", own)
    assert keys.limits("t1") == own and keys.limits("t2") == TenantLimits()
    keys.set_limits("t1", replace(own, rate=None))
    assert keys.limits("t1") == TenantLimits(burst=10, stored_bytes=0)
    keys.set_limits("t1", TenantLimits())
    assert keys.limits("t1") == TenantLimits()
