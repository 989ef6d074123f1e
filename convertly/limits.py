"""Rate limits and quotas: what one API key, one client address and one tenant may do.

    per API key         requests a second (CONVERTLY_RATE_LIMIT, CONVERTLY_RATE_BURST):
                        429 RATE_LIMITED
    per client address  failed authentications (CONVERTLY_AUTH_FAILURE_LIMIT per
                        CONVERTLY_AUTH_FAILURE_WINDOW): then every request from it gets
                        429 AUTH_THROTTLED, a right key too
    per tenant          unfinished jobs and their files not yet finished
                        (CONVERTLY_TENANT_MAX_JOBS, CONVERTLY_TENANT_MAX_QUEUED_FILES): 429
                        CONCURRENT_JOBS_LIMIT / QUEUED_FILES_LIMIT, checked in the
                        transaction that stores the job; stored bytes
                        (CONVERTLY_TENANT_MAX_STORED_BYTES): 403 STORAGE_LIMIT

A tenant's own limits (`convertly keys limits`, kept in the key store) override the
settings one by one; 0 turns a limit off. Rates are GCRA buckets in the state's
`RateLimitStore` (Redis in distributed mode, shared by every API process; process memory in
embedded mode); an authenticated request costs one step of it (its key's bucket taken and
its address's asked at once). Stored bytes are what `/api/files` lists, job outputs
included: a job that is running is never failed for its outputs, but while a tenant is at
or over its limit it can store nothing new and start no job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convertly.errors import AuthThrottledError, RateLimitError, StorageLimitError
from convertly.service import Services
from convertly.settings import Settings
from convertly.state.records import ApiKey, Bucket, JobQuota, RateDecision, TenantLimits


@dataclass(frozen=True)
class Effective:
    """The limits that apply to one tenant: its own where set, else the settings."""

    rate: float
    burst: int
    concurrent_jobs: int
    queued_files: int
    stored_bytes: int

    @property
    def job_quota(self) -> JobQuota:
        return JobQuota(concurrent_jobs=self.concurrent_jobs, queued_files=self.queued_files)


def effective(s: Settings, own: TenantLimits) -> Effective:

    def pick(value: int | float | None, default: int | float) -> int | float:
        return default if value is None else value

    return Effective(
        rate=float(pick(own.rate, s.rate_limit)), burst=int(pick(own.burst, s.rate_burst)),
        concurrent_jobs=int(pick(own.concurrent_jobs, s.tenant_max_jobs)),
        queued_files=int(pick(own.queued_files, s.tenant_max_queued_files)),
        stored_bytes=int(pick(own.stored_bytes, s.tenant_max_stored_bytes)))


def for_tenant(svc: Services, tenant: str) -> Effective:
    return effective(svc.settings, svc.keys.limits(tenant))


def headers(decision: RateDecision) -> dict[str, str]:
    """The IETF draft's RateLimit-* fields for a decision (seconds rounded up)."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset)),
        "RateLimit-Policy": f"{decision.limit};w={max(1, math.ceil(decision.window))}",
    }


def _auth_bucket(svc: Services, address: str) -> Bucket | None:
    limit = svc.settings.auth_failure_limit
    if limit <= 0:
        return None
    return Bucket(f"auth:{address}", limit / svc.settings.auth_failure_window, limit)


def _throttled(svc: Services, decision: RateDecision) -> AuthThrottledError:
    return AuthThrottledError(
        f"Too many requests with a wrong API key from this address (limit: "
        f"{svc.settings.auth_failure_limit} every {svc.settings.auth_failure_window:g} "
        "seconds); retry after Retry-After seconds with a valid key.",
        retry_after=math.ceil(decision.retry_after), headers=headers(decision))


def check_request(svc: Services, key: ApiKey, address: str) -> RateDecision | None:
    """Count one request of `key` from `address`, in one step of the rate store: its
    decision (None when its rate is off). AuthThrottledError when the address has used up
    its failed authentications (a right key from there waits too: a guess that is right
    must not learn it), RateLimitError when the key is over its rate; both carry
    Retry-After and the RateLimit-* headers, and neither is counted."""
    limits = for_tenant(svc, key.tenant)
    take = (Bucket(f"key:{key.prefix}", limits.rate, limits.burst)
            if limits.rate > 0 and limits.burst > 0 else None)
    taken, guarded = svc.rates.check(take, _auth_bucket(svc, address))
    if guarded is not None and not guarded.allowed:
        raise _throttled(svc, guarded)
    if taken is not None and not taken.allowed:
        raise RateLimitError(
            f"Too many requests for this API key: its limit is {limits.rate:g} a second "
            f"(bursts of {limits.burst}); retry after Retry-After seconds.",
            retry_after=math.ceil(taken.retry_after), headers=headers(taken),
            detail={"limit": limits.burst, "rate": limits.rate})
    return taken


def check_playback_event(svc: Services, address: str) -> None:
    """Count one playback event from `address` (the route takes no key, so the address is
    what is limited); RateLimitError when it is over CONVERTLY_PLAYBACK_EVENT_RATE."""
    rate, burst = svc.settings.playback_event_rate, svc.settings.playback_event_burst
    if rate <= 0:
        return
    taken, _ = svc.rates.check(Bucket(f"playback:{address}", rate, burst))
    if taken is not None and not taken.allowed:
        raise RateLimitError(
            f"Too many playback events from this address: the limit is {rate:g} a second "
            f"(bursts of {burst}); retry after Retry-After seconds.",
            retry_after=math.ceil(taken.retry_after), headers=headers(taken))


def note_auth_failure(svc: Services, address: str) -> None:
    """Count one failed authentication of `address`; AuthThrottledError when it has used
    them all up (the request is then answered 429, not 401)."""
    bucket = _auth_bucket(svc, address)
    if bucket is None:
        return
    taken, _ = svc.rates.check(bucket)
    if taken is not None and not taken.allowed:
        raise _throttled(svc, taken)


def require_storage(svc: Services, tenant: str, adding: int) -> None:
    """Raise StorageLimitError when storing `adding` more bytes would take the tenant over
    its stored-bytes limit (with `adding` 0: when it is at or over it already)."""
    limit = for_tenant(svc, tenant).stored_bytes
    if limit <= 0:
        return
    used = svc.files.stored_bytes(tenant)
    if used + adding > limit or (adding == 0 and used >= limit):
        raise StorageLimitError(
            f"This account stores {used} bytes; {adding} more would pass its storage limit "
            f"of {limit} bytes. Delete stored files (DELETE /api/files/{{id}}) first."
            if adding else
            f"This account stores {used} bytes, its storage limit of {limit} bytes; delete "
            "stored files (DELETE /api/files/{id}) before starting more jobs.",
            detail={"limit": limit, "used": used})
