"""The job store contract, on both engines: SQLite (embedded) and Redis (distributed)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from convertly.models import FileResult, FileSpec, FileStatus, Job, JobStatus, JobType
from convertly.state.base import JobStore
from convertly.state.redis.jobs import RedisJobStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.jobs import SqliteJobStore
from tests.state.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> JobStore:
    if request.param == "sqlite":
        return SqliteJobStore(Database(tmp_path / "jobs.db"))
    return RedisJobStore(request.getfixturevalue("redis_client"))


def new_job(files: int, *, archive: bool = False) -> Job:
    specs = tuple(FileSpec(index=i, filename=f"{i}.png") for i in range(files))
    return Job(
        id=f"job-{time.monotonic_ns()}", tenant="t1", job_type=JobType.CONVERT,
        status=JobStatus.PENDING, specs=specs,
        results=tuple(FileResult(index=s.index, filename=s.filename, status=FileStatus.PENDING)
                      for s in specs),
        create_archive=archive, created_at=time.time(),
    )


def done(index: int, **extra: object) -> FileResult:
    return FileResult(index=index, filename=f"{index}.png", status=FileStatus.COMPLETED,
                      format="png", **extra)  # type: ignore[arg-type]


def test_start_file_returns_the_work_and_marks_the_job_processing(store: JobStore) -> None:
    job, _ = store.create(new_job(3), None, 60)
    work = store.start_file(job.id, 2)
    assert work is not None
    assert (work.job_id, work.tenant, work.spec) == (job.id, "t1", job.specs[2])
    stored = store.get(job.id)
    assert stored is not None and stored.status is JobStatus.PROCESSING
    assert stored.started_at is not None
    jobs, total = store.list("t1", limit=10, offset=0, status=JobStatus.PROCESSING)
    assert [j.id for j in jobs] == [job.id] and total == 1


def test_a_file_with_its_result_is_not_started_again(store: JobStore) -> None:
    job, _ = store.create(new_job(2), None, 60)
    assert store.start_file(job.id, 0) is not None
    assert store.record_file(done(0), job.id) is False
    assert store.start_file(job.id, 0) is None
    assert store.start_file(job.id, 1) is not None


def test_exactly_one_recorder_completes_the_job(store: JobStore) -> None:
    files = 40
    job, _ = store.create(new_job(files), None, 60)
    lasts: list[bool] = []

    def worker(indexes: range) -> None:
        for i in indexes:
            assert store.start_file(job.id, i) is not None
            lasts.append(store.record_file(done(i), job.id))

    threads = [threading.Thread(target=worker, args=(range(k, files, 4),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lasts.count(True) == 1
    # A redelivered result replaces the first one but completes nothing again.
    assert store.record_file(done(0, width=7), job.id) is False
    stored = store.get(job.id)
    assert stored is not None and stored.results[0].width == 7
    assert stored.completed_files == files


def test_a_batch_of_results_is_recorded_at_once_and_completes_the_job_once(
        store: JobStore) -> None:
    job, _ = store.create(new_job(5), None, 60)
    for i in range(5):
        assert store.start_file(job.id, i) is not None
    assert store.record_files([done(0), done(1)], job.id) is False
    # A result recorded again beside a new one: the batch still completes nothing.
    assert store.record_files([done(1, width=3), done(2)], job.id) is False
    assert store.record_files([done(3), done(4)], job.id) is True
    assert store.record_files([done(4)], job.id) is False
    stored = store.get(job.id)
    assert stored is not None and stored.completed_files == 5
    assert stored.results[1].width == 3
    with pytest.raises(KeyError):
        store.record_files([done(0)], "no-such-job")


def test_no_file_completes_a_finished_job(store: JobStore) -> None:
    job, _ = store.create(new_job(1), None, 60)
    assert store.cancel(job.id, "t1") is not None
    assert store.start_file(job.id, 0) is None
    assert store.record_file(done(0), job.id) is False


def test_progress_of_pending_files_moves_the_job_bar(store: JobStore) -> None:
    job, _ = store.create(new_job(2, archive=True), None, 60)
    store.start_file(job.id, 0)
    store.set_progress(job.id, 0, 0.5)
    stored = store.get(job.id)
    assert stored is not None
    assert stored.results[0].progress == pytest.approx(0.5)
    assert stored.progress == 16  # half of one of three steps (two files and the archive)
    store.record_file(done(0), job.id)
    store.set_progress(job.id, 0, 0.25)  # late: the file has its result
    stored = store.get(job.id)
    assert stored is not None
    assert stored.results[0].status is FileStatus.COMPLETED
    assert stored.results[0].progress == 0.0
    assert stored.progress == 33


def test_results_keep_their_notes(store: JobStore) -> None:
    job, _ = store.create(new_job(1), None, 60)
    store.start_file(job.id, 0)
    store.record_file(done(0, notes=("traced at 800x600",)), job.id)
    stored = store.get(job.id)
    assert stored is not None and stored.results[0].notes == ("traced at 800x600",)


def test_recording_for_an_unknown_job_is_an_error(store: JobStore) -> None:
    with pytest.raises(KeyError):
        store.record_file(done(0), "no-such-job")
    assert store.start_file("no-such-job", 0) is None


def test_an_idempotency_key_replays_the_tenants_earlier_job(store: JobStore) -> None:
    first, created = store.create(new_job(1), "key-1", 60)
    assert created
    again, created = store.create(new_job(1), "key-1", 60)
    assert (again.id, created) == (first.id, False)
    found = store.by_idempotency_key("t1", "key-1", 60)
    assert found is not None and found.id == first.id
    assert store.by_idempotency_key("t2", "key-1", 60) is None
    assert store.by_idempotency_key("t1", "key-2", 60) is None
    theirs, created = store.create(replace(new_job(1), tenant="t2"), "key-1", 60)
    assert created and theirs.id != first.id
    assert store.list("t1", limit=10, offset=0, status=None)[1] == 1


def test_jobs_belong_to_their_tenant_and_list_newest_first(store: JobStore) -> None:
    older, _ = store.create(replace(new_job(1), created_at=1000.0), None, 60)
    newer, _ = store.create(replace(new_job(1), created_at=2000.0), None, 60)
    theirs, _ = store.create(replace(new_job(1), tenant="t2"), None, 60)
    assert store.get(older.id, "t2") is None and store.get(theirs.id, "t2") is not None
    jobs, total = store.list("t1", limit=1, offset=0, status=None)
    assert ([j.id for j in jobs], total) == ([newer.id], 2)
    jobs, total = store.list("t1", limit=10, offset=1, status=JobStatus.PENDING)
    assert ([j.id for j in jobs], total) == ([older.id], 2)
    assert store.list("t1", limit=10, offset=0, status=JobStatus.COMPLETED) == ([], 0)


def test_cancel_finish_and_retention(store: JobStore) -> None:
    cancelled, _ = store.create(replace(new_job(1), created_at=1000.0), None, 60)
    finished, _ = store.create(replace(new_job(1), created_at=2000.0), None, 60)
    running, _ = store.create(replace(new_job(1), created_at=3000.0), None, 60)
    assert [j.id for j in store.unfinished()] == [cancelled.id, finished.id, running.id]
    assert store.cancel(cancelled.id, "t2") is None
    gone = store.cancel(cancelled.id, "t1")
    assert gone is not None and gone.cancelled and gone.status is JobStatus.FAILED
    assert store.cancel(cancelled.id, "t1") is None
    store.start_file(finished.id, 0)
    store.record_file(done(0), finished.id)
    store.mark_queued(finished.id)
    done_job = store.finish(finished.id, status=JobStatus.COMPLETED, archive_key="a.zip",
                            archive_size=5)
    assert (done_job.status, done_job.archive_key, done_job.archive_size) == (
        JobStatus.COMPLETED, "a.zip", 5)
    assert done_job.completed_at is not None and done_job.extra["queued"] is True
    assert store.cancel(finished.id, "t1") is None
    assert [j.id for j in store.unfinished()] == [running.id]
    old = {j.id for j in store.finished_before(time.time() + 60)}
    assert old == {cancelled.id, finished.id}
    assert store.finished_before(0.0) == []
    store.delete(done_job)
    assert store.get(finished.id) is None
    assert store.list("t1", limit=10, offset=0, status=None)[1] == 2
    with pytest.raises(KeyError):
        store.finish("no-such-job", status=JobStatus.FAILED)


def test_one_owner_at_a_time_holds_the_watchdog_lease(store: JobStore) -> None:
    assert store.claim_watch("api-1", 0.5)
    assert not store.claim_watch("api-2", 0.5)
    assert store.claim_watch("api-1", 0.5)  # renewed by its holder
    time.sleep(0.7)
    assert store.claim_watch("api-2", 60)  # expired: another owner takes it
    assert not store.claim_watch("api-1", 60)


def test_concurrent_claims_of_the_watchdog_lease_give_it_to_one_owner(store: JobStore) -> None:
    won: list[str] = []
    barrier = threading.Barrier(6)

    def claim(owner: str) -> None:
        barrier.wait()
        if store.claim_watch(owner, 60):
            won.append(owner)

    threads = [threading.Thread(target=claim, args=(f"api-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_watch_report_keeps_the_latest_stuck_count_and_the_requeue_total(
        store: JobStore) -> None:
    assert store.watch_report() == (0, 0)
    store.note_watch(3, 2)
    store.note_watch(1, 1)
    assert store.watch_report() == (1, 3)
    store.note_watch(0, 0)
    assert store.watch_report() == (0, 3)


def test_a_processing_job_is_cancelled_keeping_its_finished_files(store: JobStore) -> None:
    job, _ = store.create(new_job(3), None, 60)
    assert not store.cancelled(job.id) and not store.cancelled("no-such-job")
    store.start_file(job.id, 0)
    store.record_file(done(0), job.id)
    assert store.start_file(job.id, 1) is not None  # converting when the cancel comes

    cancelled = store.cancel(job.id, "t1")

    assert cancelled is not None and store.cancelled(job.id)
    assert (cancelled.status, cancelled.cancelled) == (JobStatus.FAILED, True)
    assert cancelled.started_at is not None and cancelled.completed_at is not None
    first, running, queued = cancelled.results
    assert first == done(0)
    for result in (running, queued):
        assert (result.status, result.error_code) == (FileStatus.FAILED, "CANCELLED")
    assert store.get(job.id) == cancelled
    assert [j.id for j in store.unfinished()] == []
    assert store.list("t1", limit=10, offset=0, status=JobStatus.FAILED)[1] == 1
    assert store.list("t1", limit=10, offset=0, status=JobStatus.PROCESSING)[1] == 0
    # A queued file is refused; the running file's late result finishes nothing; a
    # finalisation already under way leaves the cancelled job as it is.
    assert store.start_file(job.id, 2) is None
    assert store.record_file(FileResult(index=2, filename="2.png", status=FileStatus.FAILED,
                                        error="x", error_code="X"), job.id) is False
    after = store.finish(job.id, status=JobStatus.COMPLETED, archive_key="a.zip",
                         archive_size=5)
    assert (after.status, after.cancelled, after.archive_key) == (JobStatus.FAILED, True, None)
    assert store.cancel(job.id, "t1") is None
