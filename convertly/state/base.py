"""Every state Protocol, one per kind of record, named `<Record>Store`; `sqlite/` and `redis/`
implement each of them once. The records they carry are in `convertly.state.records` (jobs in
`convertly.models`).

Shared contract, unless a method says otherwise:
- Every method is blocking (call it off the event loop) and atomic on its own: a concurrent
  caller sees the state before or after it, never half of it.
- Records are scoped to a tenant: asked with another tenant's id, a store answers as if the
  record did not exist.
- A store that cannot reach its engine (Redis down) raises StateUnavailableError, which the
  API answers with 503 and the executors retry later; SQLite waits for a busy database (up
  to 30 s) before failing.
- Stores hold records only: objects in storage (sources, outputs, archives) are the
  caller's to delete (`retention.purge_expired`).

    JobStore        jobs, their per-file results, and Idempotency-Keys (one transaction
                    with the job they map to, so they are not a store of their own)
    FileStore       stored-file records (outputs, uploads, sync results), searchable
    FolderStore     folders of stored files
    TaxonomyStore   each tenant's library taxonomy terms (slugs, labels, synonyms per locale)
    KeyStore        API key records and their hashes (the domain: `convertly.auth`), and
                    each tenant's own limits (the domain: `convertly.limits`)
    RateLimitStore  rate-limit buckets (the domain: `convertly.limits`): in Redis, shared
                    by every API process; in process memory in embedded mode
    WebhookStore    webhook endpoints, the delivery log and each job's event bookkeeping
                    (the domain: `convertly.webhooks`)
    FinishedChannel how a finished job's id reaches every API process (distributed mode;
                    with one process, `convertly.jobevents` needs none)
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from convertly.models import FileResult, FileWork, Job, JobStatus
from convertly.state.records import (
    ApiKey,
    Bucket,
    Delivery,
    EmitState,
    Endpoint,
    FileQuery,
    Folder,
    JobQuota,
    RateDecision,
    Shares,
    StoredFile,
    TaxonomyTerm,
    TenantLimits,
)


class JobStore(Protocol):
    """Durable job state: a job, its files' results and progress, and the Idempotency-Keys
    that map to it."""

    def create(self, job: Job, idempotency_key: str | None, ttl: int,
               quota: JobQuota | None = None) -> tuple[Job, bool]:
        """Store a new job and return (it, True); with an idempotency key seen for this
        tenant within `ttl` seconds, store nothing and return (the earlier job, False). The
        key and the job are stored together: two concurrent calls with one key store one
        job (SQLite), or at worst the later call takes the key over (Redis).

        With a `quota`, a new job is stored only if `quota.refusal` allows it, given the
        tenant's unfinished jobs and their files without a result, counted from the stored
        jobs in the same transaction (two concurrent calls cannot both take the last
        place); otherwise that error is raised and nothing is stored."""
        ...

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job, or None when it does not exist or belongs to another tenant (`tenant`
        None: any tenant, for the executors)."""
        ...

    def by_idempotency_key(self, tenant: str, key: str, ttl: int) -> Job | None:
        """The tenant's job created with this Idempotency-Key within `ttl` seconds, or
        None."""
        ...

    def list(
        self, tenant: str, *, limit: int, offset: int, status: JobStatus | None
    ) -> tuple[builtins.list[Job], int]:
        """A page of the tenant's jobs (with `status` only, when given), newest first, and
        how many there are in all."""
        ...

    def start_file(self, job_id: str, index: int) -> FileWork | None:
        """Mark the job processing (first file only) and return the file's work; None when
        the job does not exist, is finished or cancelled, or this file already has its
        result (a redelivery after completion). Costs the same whatever the job's size."""
        ...

    def cancelled(self, job_id: str) -> bool:
        """Whether the job was cancelled (False for an unknown job). Reads one small
        record whatever the job's size: a running file asks it every second or so."""
        ...

    def record_file(self, result: FileResult, job_id: str) -> bool:
        """Store one file's result (replacing an earlier one); return whether this call
        completed the last file of an unfinished job: exactly one caller gets True, so
        exactly one finalises the job. Raises KeyError for an unknown job."""
        ...

    def record_files(self, results: Sequence[FileResult], job_id: str) -> bool:
        """`record_file` for several files of one job at once (one transaction on SQLite):
        True when this call completed the last file of an unfinished job, exactly as if
        the results had been recorded one by one and any of those calls had said so."""
        ...

    def set_progress(self, job_id: str, index: int, fraction: float) -> None:
        """Note how far a pending file has got (0 to 1); ignored once the file has its
        result or when the job does not exist."""
        ...

    def finish(
        self,
        job_id: str,
        *,
        status: JobStatus,
        error_message: str | None = None,
        archive_key: str | None = None,
        archive_size: int | None = None,
    ) -> Job:
        """Set the job's final status (and its archive, when one was built), stamp its
        completion time and return it; a job cancelled meanwhile is returned unchanged
        (the cancel decided its end). Raises KeyError for an unknown job."""
        ...

    def cancel(self, job_id: str, tenant: str) -> Job | None:
        """Cancel the tenant's pending or processing job: it becomes failed and
        `cancelled`, its files without a result read as failed with CANCELLED, and
        `start_file` refuses them from then on. Return it, or None when it was already
        finished or is not the tenant's. Results of files done before stay as they are."""
        ...

    def unfinished(self) -> builtins.list[Job]:
        """Jobs neither completed nor failed, oldest first (to resume after a restart)."""
        ...

    def mark_queued(self, job_id: str) -> None:
        """Note that the job's tasks reached the broker (`extra["queued"]`); nothing for an
        unknown job."""
        ...

    def claim_watch(self, owner: str, ttl: float) -> bool:
        """Take the job watchdog's lease for `owner` (`convertly.watchdog`), or renew it when
        `owner` holds it, for `ttl` seconds from now; False while another owner's lease runs.
        Of two owners claiming at once, at most one gets True."""
        ...

    def note_watch(self, stuck: int, requeued: int) -> None:
        """Record what the watchdog's latest look found: `stuck` files lost (replacing the
        previous count), of which `requeued` were queued again (added to the total)."""
        ...

    def watch_report(self) -> tuple[int, int]:
        """(stuck files the watchdog's latest look found, files it requeued in all); (0, 0)
        before its first look."""
        ...

    def finished_before(self, cutoff: float) -> builtins.list[Job]:
        """Up to 1,000 completed or failed jobs that finished before `cutoff` (for
        retention)."""
        ...

    def delete(self, job: Job) -> None:
        """Forget the job and its results (its files in storage and its stored-file records
        are the caller's to delete)."""
        ...


class FileStore(Protocol):
    """Stored-file records: what `storedFileId` points at and what `/api/files` lists. A
    record is listed unless it is `temporary`; a record past its `expires_at` is gone for
    the API but kept until `expired` hands it to the caller to delete."""

    def add(self, record: StoredFile) -> StoredFile:
        """Store a new record (its id must be new) and return it; the caller sets
        `created_at` (SQLite stamps it when it is 0)."""
        ...

    def add_many(self, records: Sequence[StoredFile]) -> builtins.list[StoredFile]:
        """`add` for several new records at once (one transaction on SQLite), in order."""
        ...

    def get(self, file_id: str, tenant: str) -> StoredFile | None:
        """The tenant's live record, or None (missing, another tenant's, or expired).
        Temporary records are returned too; callers that list files skip them."""
        ...

    def search(self, tenant: str, query: FileQuery, *, limit: int,
               offset: int) -> tuple[builtins.list[StoredFile], int]:
        """The tenant's listed (non-temporary) records matching `query`, newest first
        (ties by id, descending), `limit` of them from `offset`, and how many match."""
        ...

    def facets(self, tenant: str, query: FileQuery, which: Iterable[str],
               limit: int) -> dict[str, builtins.list[tuple[str, int]]]:
        """For each facet named in `which` (`records.FACETS`), over every listed file `query`
        matches: (value, number of files), most files first then by value, at most `limit`
        of them; as `records.count_facets` counts."""
        ...

    def update(self, file_id: str, tenant: str, **changes: Any) -> StoredFile | None:
        """Set the given fields of the tenant's record at once and return the new record
        (expired or not); None when there is no such record. `id`, `tenant`, `key` and
        `job_id` never change: naming one raises ValueError."""
        ...

    def expired(self, now: float) -> builtins.list[StoredFile]:
        """Every record whose `expires_at` is before `now` (the caller deletes its object,
        then the record)."""
        ...

    def remove(self, file_id: str) -> None:
        """Forget the record, whoever's it is; a missing record is not an error. Its object
        in storage is the caller's to delete."""
        ...

    def remove_for_job(self, job_id: str) -> None:
        """Forget every record of the job's outputs (the objects go with the job's storage
        prefix, the caller's to delete)."""
        ...

    def stored_bytes(self, tenant: str) -> int:
        """The sum of `size_bytes` of the tenant's listed (non-temporary) records: what
        `/api/files` lists, job outputs included. Derived from the records (SQLite) or kept
        in the same transaction as every record change (Redis), so it cannot drift."""
        ...


class FolderStore(Protocol):
    """Folders of stored files, per tenant: a tree (each folder names at most one parent).
    Every call is scoped to one tenant: another tenant's folder does not exist for it. The
    tree's rules (no cycles, unique names, what a removal takes along) are the domain's
    (`convertly.library`)."""

    def add(self, folder: Folder) -> None:
        """Store a new folder (its id must be new)."""
        ...

    def get(self, folder_id: str, tenant: str) -> Folder | None:
        """The tenant's folder, or None."""
        ...

    def all(self, tenant: str) -> builtins.list[Folder]:
        """Every folder of the tenant, in no particular order."""
        ...

    def update(self, folder: Folder) -> bool:
        """Store new values for an existing folder; False (and nothing stored) when it was
        removed in the meantime."""
        ...

    def remove(self, folder_ids: Iterable[str], tenant: str) -> None:
        """Forget the tenant's folders with these ids (missing ones are skipped). Files
        filed in them keep their `folder_id`; moving them first is the caller's job."""
        ...


class TaxonomyStore(Protocol):
    """Each tenant's library taxonomy terms (the domain: `convertly.taxonomy`). A slug is
    unique per tenant and locale."""

    def add(self, term: TaxonomyTerm) -> bool:
        """Store a new term; False (storing nothing) when the tenant has a term of that slug
        in that locale."""
        ...

    def get(self, term_id: str, tenant: str) -> TaxonomyTerm | None:
        ...

    def all(self, tenant: str, locale: str | None = None) -> builtins.list[TaxonomyTerm]:
        """The tenant's terms (of one locale, when given), by slug."""
        ...

    def count(self, tenant: str) -> int:
        ...

    def update(self, term: TaxonomyTerm) -> str:
        """Replace the tenant's term of that id: "updated", "missing" (no such term) or
        "taken" (another term has that slug in that locale; nothing changed)."""
        ...

    def remove(self, term_id: str, tenant: str) -> bool:
        """Delete the tenant's term; False when there was none."""
        ...


class KeyStore(Protocol):
    """API key records, each with the SHA-256 hash of its key (never the key itself). Keys
    are global: a key's record names its tenant."""

    def insert(self, record: ApiKey, key_hash: str) -> None:
        """Store a new key; `record.prefix` must not be stored yet."""
        ...

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        """The record and the stored hash for a public prefix, or None."""
        ...

    def all(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        ...

    def update(self, record: ApiKey) -> None:
        """Store new `last_used_at` / `revoked_at` values for an existing key."""
        ...

    def limits(self, tenant: str) -> TenantLimits:
        """The tenant's own limits (all None when it has none)."""
        ...

    def set_limits(self, tenant: str, limits: TenantLimits) -> None:
        """Replace the tenant's own limits (all None: forget them)."""
        ...


class RateLimitStore(Protocol):
    """Rate-limit buckets by name, each checked with the generic cell rate algorithm
    (GCRA, `convertly.state.gcra`). A check is one atomic step on the engine (one Lua
    script on Redis, so every API process shares the buckets); a bucket is forgotten once
    it is full again."""

    def check(self, take: Bucket | None, guard: Bucket | None = None
              ) -> tuple[RateDecision | None, RateDecision | None]:
        """Count one request in `take` if it fits, unless `guard` is given and one more
        request would not fit `guard` (which is asked, never counted): then nothing is
        counted. Returns (take's decision, guard's decision); None for a bucket not given,
        and for `take` when `guard` refused."""
        ...


class WebhookStore(Protocol):
    """Webhook state: endpoints, the delivery log and what each job has emitted. Any process
    records events (API, pool workers, Celery workers); the API processes claim due
    deliveries and send them. Deliveries to one endpoint about one job form a stream that is
    sent in order: a delivery waits while an earlier one of its stream is still pending
    (retries included)."""

    def add_endpoint(self, endpoint: Endpoint, ttl: int) -> None:
        """Store a new endpoint; a job's callback (`job_id` set) is forgotten after `ttl`
        seconds, an account endpoint only by `remove_endpoint`."""
        ...

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint, whoever's it is, or None (the caller checks the tenant)."""
        ...

    def endpoints(self, tenant: str) -> builtins.list[Endpoint]:
        """The tenant's account endpoints (not job callbacks), oldest first."""
        ...

    def remove_endpoint(self, endpoint_id: str, tenant: str) -> bool:
        """Delete the tenant's account endpoint; False when there is none with that id. Its
        deliveries stay in the log until purged."""
        ...

    def targets(self, tenant: str, job_id: str) -> builtins.list[Endpoint]:
        """Every endpoint that may want the job's events: the tenant's and the job's own."""
        ...

    def emit_state(self, job_id: str) -> EmitState:
        """What the job has emitted so far (a fresh EmitState when nothing)."""
        ...

    def emit(self, job_id: str, kind: str, progress: int, now: float, interval: float,
             deliveries: builtins.list[Delivery], ttl: int) -> bool:
        """If `EmitState.after` allows it, update the job's state and queue `deliveries`
        (each at the end of its stream), all at once; return whether it happened. Of two
        processes emitting the same event, exactly one gets True."""
        ...

    def claim_due(self, now: float, limit: int, lease: float, shares: Shares
                  ) -> builtins.list[Delivery]:
        """Up to `limit` pending deliveries due by `now` that head their stream, each held
        for `lease` seconds (another claim skips it until then). Within `shares`: a tenant
        or an endpoint at its share is skipped (its deliveries wait for a later claim, and
        hold back no one else's), and the tenants with due deliveries take turns, one
        delivery each, while `limit` allows."""
        ...

    def record_attempt(self, delivery: Delivery) -> None:
        """Store a claimed delivery after an attempt: still pending (due again at its
        `next_attempt_at`), or finished, which lets the next one of its stream go."""
        ...

    def delivery(self, delivery_id: str, tenant: str) -> Delivery | None:
        """The tenant's delivery, or None."""
        ...

    def deliveries(self, tenant: str, *, job_id: str | None, limit: int, offset: int
                   ) -> tuple[builtins.list[Delivery], int]:
        """A page of the tenant's deliveries (of one job, when given), newest first, and
        how many there are."""
        ...

    def retry(self, delivery_id: str, tenant: str, now: float) -> Delivery | None:
        """Queue a finished delivery for one more attempt (at the end of its stream) and
        return it; None when it does not exist or is still pending."""
        ...

    def purge(self, before: float) -> int:
        """Forget deliveries finished before `before`, and job callbacks and event
        bookkeeping older than that with nothing pending; return how many deliveries."""
        ...


class FinishedListener(Protocol):
    """What a FinishedChannel wakes: a process's hub (`convertly.jobevents.JobEvents`)."""

    def notify(self, job_id: str) -> None:
        """Wake whoever waits on `job_id`."""
        ...

    def notify_all(self) -> None:
        """Wake every waiter, to read its job again (ids may have been lost)."""
        ...


class FinishedChannel(Protocol):
    """Carries the id of a job that just finished from the process that finished it to
    every API process, for the requests that wait on it (`GET /api/jobs/{id}?wait=`). Ids
    are hints, never the truth: one lost delays an answer by one recheck, no more."""

    def publish(self, job_id: str) -> None:
        """Tell every process listening now. Raises the engine's error when it cannot (the
        caller logs it and goes on)."""
        ...

    async def listen(self, listener: FinishedListener) -> None:
        """Until cancelled: hand each id heard to `listener.notify`, and call
        `listener.notify_all()` after each (re)subscription, since ids sent meanwhile are
        lost. Reconnects by itself; raises nothing but CancelledError."""
        ...
