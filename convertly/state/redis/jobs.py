"""Jobs on Redis (distributed mode), shared by every API and worker process on every host.
Status changes use WATCH/MULTI transactions and the per-file hot path (start, record) small
Lua scripts, so concurrent workers never lose an update and each step costs the same whatever
the job's size; with AOF on, a Redis restart loses nothing.

Layout (all keys under `cv:`):
    cv:job:{id}                   hash: `meta` (JSON), `total` and `done` (file counts),
                                  `s:{i}` (JSON spec), `r:{i}` (JSON result), `p:{i}`
                                  (progress of a pending file) per file
    cv:jobs:{tenant}              zset of job ids by creation time
    cv:jobs:{tenant}:{status}     the same, per status
    cv:unfinished                 set of job ids not yet completed or failed
    cv:finished                   zset of finished job ids by completion time (retention)
    cv:idem:{tenant}:{sha256}     job id for an Idempotency-Key (expires)
    cv:watchdog:lease             the API process that runs the job watchdog (expires)
    cv:watchdog                   hash: `stuck` (its latest look), `requeued` (in all)
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import redis

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
from convertly.state.redis.client import P, guard, transaction


def _meta(job: Job) -> str:
    return json.dumps({
        "tenant": job.tenant, "job_type": job.job_type.value, "status": job.status.value,
        "create_archive": job.create_archive, "archive_format": job.archive_format,
        "archive_key": job.archive_key, "archive_size": job.archive_size,
        "error_message": job.error_message, "cancelled": job.cancelled,
        "created_at": job.created_at, "started_at": job.started_at,
        "completed_at": job.completed_at, "extra": job.extra,
    })


def _job(job_id: str, data: dict[str, str]) -> Job | None:
    if "meta" not in data:
        return None
    meta = json.loads(data["meta"])
    specs = tuple(FileSpec.from_dict(json.loads(data[f"s:{i}"]))
                  for i in range(int(data.get("total", 0))))
    results = tuple(
        FileResult.from_dict(json.loads(data[f"r:{s.index}"])) if f"r:{s.index}" in data
        else FileResult(index=s.index, filename=s.filename, status=FileStatus.PENDING,
                        progress=float(data.get(f"p:{s.index}", 0.0)))
        for s in specs
    )
    return Job(
        id=job_id, tenant=meta["tenant"], job_type=JobType(meta["job_type"]),
        status=JobStatus(meta["status"]), specs=specs, results=results,
        create_archive=meta["create_archive"], archive_format=meta["archive_format"],
        archive_key=meta["archive_key"], archive_size=meta["archive_size"],
        error_message=meta["error_message"], cancelled=meta["cancelled"],
        created_at=meta["created_at"], started_at=meta["started_at"],
        completed_at=meta["completed_at"], extra=meta.get("extra", {}),
    )


def _with(job: Job, **changes: Any) -> Job:
    return replace(job, **changes)


# KEYS[1] the job hash; ARGV: result field, result JSON, progress field.
# Returns 1 when this result completed the last file of an unfinished job, -1 when the job
# does not exist.
_RECORD_FILE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local existed = redis.call('HEXISTS', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[3])
if existed == 1 then return 0 end
local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
if done < tonumber(redis.call('HGET', KEYS[1], 'total')) then return 0 end
local status = cjson.decode(redis.call('HGET', KEYS[1], 'meta'))['status']
if status == 'completed' or status == 'failed' then return 0 end
return 1
"""

# KEYS[1] the job hash; ARGV: result field, progress field, fraction.
_SET_PROGRESS = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
return 0
"""

# KEYS[1] the watchdog's lease; ARGV: owner, milliseconds. Takes a free lease or renews
# the owner's own.
_CLAIM_WATCH = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_FINISHED = frozenset({JobStatus.COMPLETED.value, JobStatus.FAILED.value})


class RedisJobStore:
    def __init__(self, client: redis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not follow decode_responses
        self._record = client.register_script(_RECORD_FILE)
        self._progress = client.register_script(_SET_PROGRESS)
        self._claim_watch = client.register_script(_CLAIM_WATCH)

    def _key(self, job_id: str) -> str:
        return f"{P}job:{job_id}"

    def _read(self, conn: Any, job_id: str) -> Job | None:
        return _job(job_id, conn.hgetall(self._key(job_id)))

    def _write_status(self, pipe: Any, before: Job, after: Job) -> None:
        pipe.hset(self._key(after.id), "meta", _meta(after))
        if before.status is not after.status:
            pipe.zrem(f"{P}jobs:{after.tenant}:{before.status.value}", after.id)
            pipe.zadd(f"{P}jobs:{after.tenant}:{after.status.value}",
                      {after.id: after.created_at})
        if after.status.finished:
            pipe.srem(f"{P}unfinished", after.id)
            pipe.zadd(f"{P}finished", {after.id: after.completed_at or time.time()})

    @staticmethod
    def _idem_key(tenant: str, key: str) -> str:
        return f"{P}idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"

    def by_idempotency_key(self, tenant: str, key: str, ttl: int) -> Job | None:
        job_id = guard(lambda: self.r.get(self._idem_key(tenant, key)))
        return None if job_id is None else self.get(job_id, tenant)

    def create(self, job: Job, idempotency_key: str | None, ttl: int,
               quota: JobQuota | None = None) -> tuple[Job, bool]:
        if idempotency_key is not None:
            idem = self._idem_key(job.tenant, idempotency_key)
            if not guard(lambda: self.r.set(idem, job.id, nx=True, ex=ttl)):
                earlier_id = guard(lambda: self.r.get(idem))
                earlier = self.get(earlier_id) if earlier_id else None
                if earlier is not None:
                    return earlier, False
                guard(lambda: self.r.set(idem, job.id, ex=ttl))

        def queue_writes(pipe: Any) -> None:
            key = self._key(job.id)
            pipe.hset(key, mapping={
                "meta": _meta(job), "total": job.total_files, "done": 0,
                **{f"s:{spec.index}": json.dumps(spec.to_dict()) for spec in job.specs},
            })
            pipe.zadd(f"{P}jobs:{job.tenant}", {job.id: job.created_at})
            pipe.zadd(f"{P}jobs:{job.tenant}:{job.status.value}", {job.id: job.created_at})
            pipe.sadd(f"{P}unfinished", job.id)

        def write() -> None:
            with self.r.pipeline() as pipe:
                queue_writes(pipe)
                pipe.execute()

        try:
            if quota is None or not (quota.concurrent_jobs or quota.queued_files):
                guard(write)
            else:
                guard(lambda: self._create_within(job, quota, queue_writes))
        except Exception:
            if idempotency_key is not None:
                self._release_idem(self._idem_key(job.tenant, idempotency_key), job.id)
            raise
        return job, True

    def _create_within(self, job: Job, quota: JobQuota,
                       queue_writes: Callable[[Any], None]) -> None:
        """Count the tenant's unfinished jobs and their pending files under WATCH of its
        pending and processing indexes, then store the job if `quota` allows it. Every
        status change of the tenant's jobs (and every other creation) touches one of those
        indexes, so a count that changed meanwhile makes EXEC fail and the check run again;
        a file finishing meanwhile only makes the count an overestimate."""
        indexes = [f"{P}jobs:{job.tenant}:{s.value}"
                   for s in (JobStatus.PENDING, JobStatus.PROCESSING)]
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*indexes)
                    ids = [i for index in indexes for i in pipe.zrange(index, 0, -1)]
                    with self.r.pipeline(transaction=False) as reads:
                        for job_id in ids:
                            reads.hmget(self._key(job_id), "total", "done")
                        counts = reads.execute()
                    queued = sum(max(0, int(total or 0) - int(done or 0))
                                 for total, done in counts)
                    refusal = quota.refusal(len(ids), queued, len(job.specs))
                    if refusal is not None:
                        pipe.unwatch()
                        raise refusal
                    pipe.multi()
                    queue_writes(pipe)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _release_idem(self, idem: str, job_id: str) -> None:
        """Forget an Idempotency-Key that still maps to `job_id` (a job that was refused)."""
        def run() -> None:
            with self.r.pipeline() as pipe:
                try:
                    pipe.watch(idem)
                    if pipe.get(idem) == job_id:
                        pipe.multi()
                        pipe.delete(idem)
                        pipe.execute()
                except redis.WatchError:
                    pass  # another request took the key over: it is not ours to delete
        with contextlib.suppress(Exception):
            guard(run)

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        job = guard(lambda: self._read(self.r, job_id))
        if job is None or (tenant is not None and job.tenant != tenant):
            return None
        return job

    def list(
        self, tenant: str, *, limit: int, offset: int, status: JobStatus | None
    ) -> tuple[builtins.list[Job], int]:
        index = f"{P}jobs:{tenant}" + (f":{status.value}" if status else "")

        def read() -> tuple[builtins.list[Job], int]:
            total = self.r.zcard(index)
            ids = self.r.zrevrange(index, offset, offset + limit - 1)
            with self.r.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self._key(job_id))
                rows = pipe.execute()
            jobs = [j for job_id, row in zip(ids, rows, strict=True)
                    if (j := _job(job_id, row)) is not None]
            return jobs, int(total)

        return guard(read)

    def start_file(self, job_id: str, index: int) -> FileWork | None:
        key = self._key(job_id)
        meta_raw, spec_raw, done = guard(
            lambda: self.r.hmget(key, "meta", f"s:{index}", f"r:{index}"))
        if meta_raw is None or spec_raw is None or done is not None:
            return None
        meta = json.loads(meta_raw)
        if meta["status"] in _FINISHED or meta["cancelled"]:
            return None
        if meta["status"] == JobStatus.PENDING.value and not self._mark_processing(job_id):
            return None
        return FileWork(job_id=job_id, tenant=meta["tenant"],
                        spec=FileSpec.from_dict(json.loads(spec_raw)))

    def cancelled(self, job_id: str) -> bool:
        meta_raw = guard(lambda: self.r.hget(self._key(job_id), "meta"))
        return meta_raw is not None and bool(json.loads(meta_raw)["cancelled"])

    def _mark_processing(self, job_id: str) -> bool:
        """Pending -> processing, once per job; False when it was finished or cancelled."""
        def body(pipe: Any) -> bool:
            meta_raw = pipe.hget(self._key(job_id), "meta")
            if meta_raw is None:
                pipe.unwatch()
                return False
            meta = json.loads(meta_raw)
            if meta["status"] in _FINISHED or meta["cancelled"]:
                pipe.unwatch()
                return False
            if meta["status"] != JobStatus.PENDING.value:
                pipe.unwatch()
                return True
            tenant = meta["tenant"]
            meta.update(status=JobStatus.PROCESSING.value, started_at=time.time())
            pipe.multi()
            pipe.hset(self._key(job_id), "meta", json.dumps(meta))
            pipe.zrem(f"{P}jobs:{tenant}:{JobStatus.PENDING.value}", job_id)
            pipe.zadd(f"{P}jobs:{tenant}:{JobStatus.PROCESSING.value}",
                      {job_id: meta["created_at"]})
            pipe.execute()
            return True

        return transaction(self.r, self._key(job_id), body)

    def record_file(self, result: FileResult, job_id: str) -> bool:
        last = guard(lambda: self._record(
            keys=[self._key(job_id)],
            args=[f"r:{result.index}", json.dumps(result.to_dict()), f"p:{result.index}"]))
        if last == -1:
            raise KeyError(job_id)
        return bool(last)

    def record_files(self, results: Sequence[FileResult], job_id: str) -> bool:
        # One round trip for the batch: the scripts run one after another in a pipeline,
        # each as atomic as `record_file`'s.
        def run() -> list[Any]:
            with self.r.pipeline(transaction=False) as pipe:
                for result in results:
                    self._record(keys=[self._key(job_id)],
                                 args=[f"r:{result.index}", json.dumps(result.to_dict()),
                                       f"p:{result.index}"], client=pipe)
                return list(pipe.execute())
        lasts = guard(run)
        if -1 in lasts:
            raise KeyError(job_id)
        return any(lasts)

    def set_progress(self, job_id: str, index: int, fraction: float) -> None:
        guard(lambda: self._progress(keys=[self._key(job_id)],
                                      args=[f"r:{index}", f"p:{index}", round(fraction, 4)]))

    def finish(
        self, job_id: str, *, status: JobStatus, error_message: str | None = None,
        archive_key: str | None = None, archive_size: int | None = None,
    ) -> Job:
        def body(pipe: Any) -> Job:
            before = self._read(pipe, job_id)
            if before is None:
                pipe.unwatch()
                raise KeyError(job_id)
            if before.cancelled:
                pipe.unwatch()
                return before
            after = _with(before, status=status, error_message=error_message,
                          archive_key=archive_key, archive_size=archive_size,
                          completed_at=time.time())
            pipe.multi()
            self._write_status(pipe, before, after)
            pipe.execute()
            return after

        return transaction(self.r, self._key(job_id), body)

    def cancel(self, job_id: str, tenant: str) -> Job | None:
        def body(pipe: Any) -> Job | None:
            before = self._read(pipe, job_id)
            if before is None or before.tenant != tenant or before.status.finished:
                pipe.unwatch()
                return None
            after = _with(before, status=JobStatus.FAILED, cancelled=True,
                          error_message=CANCELLED_MESSAGE,
                          completed_at=time.time())
            pipe.multi()
            self._write_status(pipe, before, after)
            pipe.execute()
            return after

        return transaction(self.r, self._key(job_id), body)

    def unfinished(self) -> builtins.list[Job]:
        ids = guard(lambda: sorted(self.r.smembers(f"{P}unfinished")))
        jobs = [j for job_id in ids if (j := self.get(job_id)) is not None]
        return sorted(jobs, key=lambda j: j.created_at)

    def mark_queued(self, job_id: str) -> None:
        def body(pipe: Any) -> None:
            job = self._read(pipe, job_id)
            if job is None:
                pipe.unwatch()
                return
            pipe.multi()
            pipe.hset(self._key(job_id), "meta",
                      _meta(_with(job, extra={**job.extra, "queued": True})))
            pipe.execute()

        transaction(self.r, self._key(job_id), body)

    def claim_watch(self, owner: str, ttl: float) -> bool:
        return bool(guard(lambda: self._claim_watch(
            keys=[f"{P}watchdog:lease"], args=[owner, max(1, round(ttl * 1000))])))

    def note_watch(self, stuck: int, requeued: int) -> None:
        def run() -> None:
            with self.r.pipeline() as pipe:
                pipe.hset(f"{P}watchdog", "stuck", stuck)
                pipe.hincrby(f"{P}watchdog", "requeued", requeued)
                pipe.execute()
        guard(run)

    def watch_report(self) -> tuple[int, int]:
        stuck, requeued = guard(lambda: self.r.hmget(f"{P}watchdog", "stuck", "requeued"))
        return int(stuck or 0), int(requeued or 0)

    def finished_before(self, cutoff: float) -> builtins.list[Job]:
        ids = guard(lambda: self.r.zrangebyscore(f"{P}finished", 0, cutoff, start=0,
                                                  num=1000))
        return [j for job_id in ids if (j := self.get(job_id)) is not None]

    def delete(self, job: Job) -> None:
        def run() -> None:
            with self.r.pipeline() as pipe:
                pipe.delete(self._key(job.id))
                pipe.zrem(f"{P}jobs:{job.tenant}", job.id)
                pipe.zrem(f"{P}jobs:{job.tenant}:{job.status.value}", job.id)
                pipe.srem(f"{P}unfinished", job.id)
                pipe.zrem(f"{P}finished", job.id)
                pipe.execute()
        guard(run)
