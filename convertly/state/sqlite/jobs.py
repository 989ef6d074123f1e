"""Jobs on SQLite (embedded mode): `SqliteJobStore`, safe across the API process and pool
workers, and the idempotency keys that map to them."""

from __future__ import annotations

import builtins
import collections
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from convertly.models import (
    CANCELLED_MESSAGE,
    FileResult,
    FileSpec,
    FileStatus,
    FileWork,
    Job,
    JobStatus,
    JobType,
)
from convertly.state.records import JobQuota
from convertly.state.sqlite.database import Database


def _now() -> float:
    return time.time()


SPECS_CACHED = 32  # jobs whose parsed specs a process keeps


class SqliteJobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # A job's specs never change once it is stored, so each process parses them once:
        # a 1,000-file job's specs are ~300 KB of JSON, ~1 ms to parse for every file.
        self._specs: collections.OrderedDict[str, tuple[FileSpec, ...]] = (
            collections.OrderedDict())
        self._specs_lock = threading.Lock()

    def _parsed_specs(self, job_id: str, raw: str) -> tuple[FileSpec, ...]:
        with self._specs_lock:
            specs = self._specs.get(job_id)
            if specs is not None:
                self._specs.move_to_end(job_id)
                return specs
        specs = tuple(FileSpec.from_dict(s) for s in json.loads(raw))
        with self._specs_lock:
            self._specs[job_id] = specs
            while len(self._specs) > SPECS_CACHED:
                self._specs.popitem(last=False)
        return specs

    def _spec(self, conn: Any, job_id: str, index: int) -> FileSpec:
        with self._specs_lock:
            specs = self._specs.get(job_id)
        if specs is None:
            row = conn.execute("SELECT specs FROM jobs WHERE id = ?", (job_id,)).fetchone()
            specs = self._parsed_specs(job_id, row["specs"])
        return specs[index]

    def _load(self, row: Any, file_rows: list[Any]) -> Job:
        specs = self._parsed_specs(row["id"], row["specs"])
        by_index = {r["idx"]: FileResult.from_dict(json.loads(r["result"])) for r in file_rows}
        results = tuple(
            by_index.get(
                s.index,
                FileResult(index=s.index, filename=s.filename, status=FileStatus.PENDING),
            )
            for s in specs
        )
        return Job(
            id=row["id"],
            tenant=row["tenant"],
            job_type=JobType(row["job_type"]),
            status=JobStatus(row["status"]),
            specs=specs,
            results=results,
            create_archive=bool(row["create_archive"]),
            archive_format=row["archive_format"],
            archive_key=row["archive_key"],
            archive_size=row["archive_size"],
            error_message=row["error_message"],
            cancelled=bool(row["cancelled"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            extra=json.loads(row["extra"]),
        )

    def _get(self, conn: Any, job_id: str) -> Job | None:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        files = conn.execute("SELECT idx, result FROM job_files WHERE job_id = ?", (job_id,))
        return self._load(row, files.fetchall())

    def create(self, job: Job, idempotency_key: str | None, ttl: int,
               quota: JobQuota | None = None) -> tuple[Job, bool]:
        with self.db.transaction() as conn:
            if idempotency_key is not None:
                conn.execute("DELETE FROM idempotency WHERE created_at < ?", (_now() - ttl,))
                row = conn.execute(
                    "SELECT job_id FROM idempotency WHERE tenant = ? AND key = ?",
                    (job.tenant, idempotency_key),
                ).fetchone()
                if row is not None:
                    earlier = self._get(conn, row["job_id"])
                    if earlier is not None:
                        return earlier, False
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?)",
                    (job.tenant, idempotency_key, job.id, _now()),
                )
            if quota is not None:
                # Raising rolls the transaction back, the idempotency key with it.
                self._check_quota(conn, job, quota)
            conn.execute(
                "INSERT INTO jobs (id, tenant, job_type, status, create_archive, archive_format,"
                " created_at, specs, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.tenant,
                    job.job_type.value,
                    job.status.value,
                    int(job.create_archive),
                    job.archive_format,
                    job.created_at,
                    json.dumps([s.to_dict() for s in job.specs]),
                    json.dumps(job.extra),
                ),
            )
            conn.executemany(
                "INSERT INTO job_files (job_id, idx, status, result) VALUES (?, ?, ?, ?)",
                [(job.id, r.index, r.status.value, json.dumps(r.to_dict())) for r in job.results],
            )
        return job, True

    @staticmethod
    def _check_quota(conn: Any, job: Job, quota: JobQuota) -> None:
        unfinished = ("SELECT id FROM jobs WHERE tenant = ? AND status IN (?, ?)")
        statuses = (JobStatus.PENDING.value, JobStatus.PROCESSING.value)
        jobs = conn.execute(f"SELECT COUNT(*) FROM ({unfinished})",
                            (job.tenant, *statuses)).fetchone()[0]
        files = conn.execute(
            f"SELECT COUNT(*) FROM job_files WHERE job_id IN ({unfinished}) AND status = ?",
            (job.tenant, *statuses, FileStatus.PENDING.value)).fetchone()[0]
        refusal = quota.refusal(int(jobs), int(files), len(job.specs))
        if refusal is not None:
            raise refusal

    def by_idempotency_key(self, tenant: str, key: str, ttl: int) -> Job | None:
        conn = self.db.read()
        row = conn.execute(
            "SELECT job_id FROM idempotency WHERE tenant = ? AND key = ? AND created_at >= ?",
            (tenant, key, _now() - ttl),
        ).fetchone()
        return None if row is None else self._get(conn, row["job_id"])

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        job = self._get(self.db.read(), job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            return None
        return job

    def list(
        self, tenant: str, *, limit: int, offset: int, status: JobStatus | None
    ) -> tuple[builtins.list[Job], int]:
        conn = self.db.read()
        where, args = "tenant = ?", [tenant]
        if status is not None:
            where += " AND status = ?"
            args.append(status.value)
        total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT id FROM jobs WHERE {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        jobs = [j for r in rows if (j := self._get(conn, r["id"])) is not None]
        return jobs, int(total)

    def start_file(self, job_id: str, index: int) -> FileWork | None:
        # Once the job is processing, starting a file changes nothing: a plain read (WAL
        # readers never wait for the writer), no write transaction per file.
        found = self._startable(self.db.read(), job_id, index)
        if found is None:
            return None
        if found["status"] == JobStatus.PENDING.value:
            with self.db.transaction() as conn:
                found = self._startable(conn, job_id, index)
                if found is None:
                    return None
                if found["status"] == JobStatus.PENDING.value:
                    conn.execute(
                        "UPDATE jobs SET status = ?, started_at = ? WHERE id = ?",
                        (JobStatus.PROCESSING.value, _now(), job_id),
                    )
        return FileWork(job_id=job_id, tenant=found["tenant"],
                        spec=self._spec(self.db.read(), job_id, index))

    def cancelled(self, job_id: str) -> bool:
        row = self.db.read().execute("SELECT cancelled FROM jobs WHERE id = ?",
                                     (job_id,)).fetchone()
        return row is not None and bool(row["cancelled"])

    def _startable(self, conn: Any, job_id: str, index: int) -> Any:
        """The job's row when file `index` can start (job neither finished nor cancelled,
        file still pending), else None."""
        row = conn.execute(
            "SELECT j.tenant, j.status, j.cancelled, f.status AS file_status"
            " FROM jobs j JOIN job_files f ON f.job_id = j.id"
            " WHERE j.id = ? AND f.idx = ?", (job_id, index),
        ).fetchone()
        if row is None or row["cancelled"] or JobStatus(row["status"]).finished:
            return None
        if row["file_status"] != FileStatus.PENDING.value:
            return None
        return row

    def record_file(self, result: FileResult, job_id: str) -> bool:
        return self.record_files((result,), job_id)

    def record_files(self, results: Sequence[FileResult], job_id: str) -> bool:
        # One write transaction for the whole batch: a transaction (lock, WAL append) costs
        # more than the rows it writes for a small file.
        with self.db.transaction() as conn:
            job = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if job is None:
                raise KeyError(job_id)
            completed_one = False
            for result in results:
                row = conn.execute(
                    "SELECT status FROM job_files WHERE job_id = ? AND idx = ?",
                    (job_id, result.index),
                ).fetchone()
                if row is None:
                    raise KeyError(job_id)
                conn.execute(
                    "UPDATE job_files SET status = ?, result = ? WHERE job_id = ? AND idx = ?",
                    (result.status.value, json.dumps(result.to_dict()), job_id, result.index),
                )
                completed_one |= (row["status"] == FileStatus.PENDING.value
                                  and result.status is not FileStatus.PENDING)
            if not completed_one or JobStatus(job["status"]).finished:
                return False
            # One index probe (job_files_status), not a count of the job's files: a count
            # made recording the files of a 1,000-file job quadratic.
            pending = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM job_files WHERE job_id = ? AND status = ?)",
                (job_id, FileStatus.PENDING.value),
            ).fetchone()[0]
            return not pending

    def set_progress(self, job_id: str, index: int, fraction: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE job_files SET result = json_set(result, '$.progress', ?)"
                " WHERE job_id = ? AND idx = ? AND status = ?",
                (fraction, job_id, index, FileStatus.PENDING.value),
            )

    def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        error_message: str | None = None,
        archive_key: str | None = None,
        archive_size: int | None = None,
    ) -> Job:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = ?, error_message = ?, archive_key = ?,"
                " archive_size = ?, completed_at = ? WHERE id = ? AND cancelled = 0",
                (status.value, error_message, archive_key, archive_size, _now(), job_id),
            )
            job = self._get(conn, job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def cancel(self, job_id: str, tenant: str) -> Job | None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, cancelled = 1, error_message = ?, completed_at = ?"
                " WHERE id = ? AND tenant = ? AND status IN (?, ?)",
                (
                    JobStatus.FAILED.value,
                    CANCELLED_MESSAGE,
                    _now(),
                    job_id,
                    tenant,
                    JobStatus.PENDING.value,
                    JobStatus.PROCESSING.value,
                ),
            )
            if cur.rowcount == 0:
                return None
            return self._get(conn, job_id)

    def mark_queued(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE jobs SET extra = json_set(extra, '$.queued', json('true'))"
                         " WHERE id = ?", (job_id,))

    def claim_watch(self, owner: str, ttl: float) -> bool:
        now = _now()
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO watchdog (id) VALUES (1)")
            cur = conn.execute(
                "UPDATE watchdog SET owner = ?, expires_at = ?"
                " WHERE id = 1 AND (owner IS NULL OR owner = ? OR expires_at <= ?)",
                (owner, now + ttl, owner, now),
            )
            return cur.rowcount == 1

    def note_watch(self, stuck: int, requeued: int) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO watchdog (id) VALUES (1)")
            conn.execute("UPDATE watchdog SET stuck = ?, requeued = requeued + ? WHERE id = 1",
                         (stuck, requeued))

    def watch_report(self) -> tuple[int, int]:
        row = self.db.read().execute(
            "SELECT stuck, requeued FROM watchdog WHERE id = 1").fetchone()
        return (0, 0) if row is None else (int(row["stuck"]), int(row["requeued"]))

    def finished_before(self, cutoff: float) -> builtins.list[Job]:
        conn = self.db.read()
        rows = conn.execute(
            "SELECT id FROM jobs WHERE status IN (?, ?) AND completed_at < ? LIMIT 1000",
            (JobStatus.COMPLETED.value, JobStatus.FAILED.value, cutoff),
        ).fetchall()
        return [j for r in rows if (j := self._get(conn, r["id"])) is not None]

    def delete(self, job: Job) -> None:
        with self._specs_lock:
            self._specs.pop(job.id, None)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM job_files WHERE job_id = ?", (job.id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job.id,))

    def unfinished(self) -> builtins.list[Job]:
        conn = self.db.read()
        rows = conn.execute(
            "SELECT id FROM jobs WHERE status IN (?, ?) ORDER BY created_at",
            (JobStatus.PENDING.value, JobStatus.PROCESSING.value),
        ).fetchall()
        return [j for r in rows if (j := self._get(conn, r["id"])) is not None]
