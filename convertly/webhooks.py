"""Webhooks: the events of a job's life (and of video streams and stored files), their
signature, and the sender.

Any process records events (`job_started`, `job_progress`, `job_finished`, `files_stored`:
the API, pool workers, Celery workers), as deliveries in the webhook store; recording never
raises, so a webhook can neither block nor fail a conversion. Every API process runs a
`Dispatcher` that claims due deliveries from the store and POSTs them, so they survive
restarts and any replica can send what another recorded.

Each request carries `convertly-signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`,
keyed with the endpoint's secret; the body is the event envelope
`{"id": "evt_…", "type": …, "created": <unix>, "data": <the job as GET /api/jobs/{id}>}`.
A delivery stores the job as it was at the event and the sender renders it, so download
links are signed by the API (whose secret and address they need) and fresh on each attempt.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from convertly import logs, metrics, outbound
from convertly.errors import ConflictError, InvalidFieldError
from convertly.fields import CALLBACK_SECRET_MAX, CALLBACK_SECRET_MIN
from convertly.models import FileResult, FileSpec, Job, JobStatus, JobType
from convertly.state.records import (
    COMPLETED,
    EVENT_TYPES,
    FAILED,
    FILE_UPLOADED,
    PROGRESS,
    STARTED,
    STREAM_EVENTS,
    STREAM_STARTED,
    TOOL_COMPLETED,
    TOOL_FAILED,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Shares,
    StoredFile,
    new_id,
)
from convertly.streams.model import VideoStream
from convertly.views import file_view, job_view, stream_view

if TYPE_CHECKING:
    from convertly.service import Services
    from convertly.settings import Settings

REQUEST_ID = "request_id"  # `Job.extra`'s request id (convertly.jobs sets it)

log = logging.getLogger("convertly.webhooks")

SIGNATURE_HEADER = "convertly-signature"
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 20  # account endpoints per tenant
POLL_INTERVAL = 0.5  # seconds between the dispatcher's looks for due deliveries
PURGE_INTERVAL = 60.0


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `convertly-signature` header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# --- endpoints ----------------------------------------------------------------------------


def _checked_url(settings: Settings, field: str, url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidFieldError(field, "an http:// or https:// URL is required.")
    try:
        outbound.check_url(url.strip(), allow_private=settings.webhook_allow_private)
    except outbound.RefusedURLError as exc:
        raise InvalidFieldError(field, str(exc)) from None
    return url.strip()


def parse_events(raw: Any) -> tuple[str, ...] | None:
    """An `events` filter: None (or ["*"]) for every event, else known event types."""
    if raw is None or raw == ["*"] or raw == "*":
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError:
                raise InvalidFieldError("events", "must be a JSON array of event types.") from None
        else:
            raw = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) for e in raw):
        raise InvalidFieldError("events", "must be a non-empty list of event types; leave it "
                                "out for all of them.")
    unknown = sorted(set(raw) - set(EVENT_TYPES))
    if unknown:
        raise InvalidFieldError("events", f"unknown event type {unknown[0]!r}; use "
                                f"{', '.join(EVENT_TYPES)}.")
    return tuple(e for e in EVENT_TYPES if e in raw)


def create_endpoint(svc: Services, tenant: str, url: Any, events: Any,
                    base_url: str) -> Endpoint:
    """A new account endpoint with a fresh `whsec_` secret."""
    checked = _checked_url(svc.settings, "url", url)
    wanted = parse_events(events)
    if len(svc.webhooks.endpoints(tenant)) >= MAX_ENDPOINTS:
        raise ConflictError(f"This account has {MAX_ENDPOINTS} webhook endpoints already; "
                            "delete one first.")
    endpoint = Endpoint(id=new_id("we"), tenant=tenant, url=checked, secret=new_secret(),
                        events=wanted, base_url=base_url, created_at=time.time())
    svc.webhooks.add_endpoint(endpoint, svc.settings.webhook_log_retention)
    return endpoint


@dataclass(frozen=True)
class Callback:
    """A job's own webhook endpoint, from its `callbackUrl` and `callbackSecret` fields."""

    url: str
    secret: str


def parse_callback(settings: Settings, url: str | None, secret: str | None
                   ) -> Callback | None:
    """The job's own callback from the `callbackUrl` and `callbackSecret` fields."""
    if url is None and secret is None:
        return None
    if url is None:
        raise InvalidFieldError("callbackUrl", "is required with callbackSecret.")
    checked = _checked_url(settings, "callbackUrl", url)
    if secret is None:
        raise InvalidFieldError("callbackSecret", "is required with callbackUrl: the events "
                                "are signed with it (for example a whsec_ value of your own).")
    if not CALLBACK_SECRET_MIN <= len(secret) <= CALLBACK_SECRET_MAX or not secret.isprintable():
        raise InvalidFieldError("callbackSecret", f"must be {CALLBACK_SECRET_MIN} to "
                                f"{CALLBACK_SECRET_MAX} printable characters.")
    return Callback(checked, secret)


def add_callback(svc: Services, tenant: str, job_id: str, callback: Callback,
                 base_url: str) -> None:
    """Record job `job_id`'s callback endpoint. Call it before the job's first file is
    queued: no event of the job can be emitted before its callback exists."""
    endpoint = Endpoint(id=new_id("we"), tenant=tenant, url=callback.url,
                        secret=callback.secret, events=None, base_url=base_url,
                        created_at=time.time(), job_id=job_id)
    svc.webhooks.add_endpoint(endpoint, svc.settings.webhook_log_retention)


# --- events -------------------------------------------------------------------------------


def job_started(svc: Services, tenant: str, job_id: str) -> None:
    """The job's first file started (emitted once, whoever calls first)."""
    _safely(svc, tenant, job_id, "started", None)


def job_progress(svc: Services, tenant: str, job_id: str) -> None:
    """The job went forward; emitted at most every CONVERTLY_WEBHOOK_PROGRESS_INTERVAL."""
    _safely(svc, tenant, job_id, "progress", None)


def job_finished(svc: Services, job: Job) -> None:
    """The job completed or failed (emitted once)."""
    if job.status.finished:
        _safely(svc, job.tenant, job.id, "terminal", job)


def _safely(svc: Services, tenant: str, job_id: str, kind: str, job: Job | None) -> None:
    try:
        _emit(svc, tenant, job_id, kind, job)
    except Exception as exc:
        log.warning("job %s: the %s webhook event was not recorded: %r", job_id, kind, exc)


def _emit(svc: Services, tenant: str, job_id: str, kind: str, job: Job | None) -> None:
    store = svc.webhooks
    if kind == "terminal":  # once per job: read afresh
        targets = store.targets(tenant, job_id)
    else:
        targets = svc.webhook_targets.get((tenant, job_id),
                                          lambda: store.targets(tenant, job_id))
    if not targets:
        return
    now = time.time()
    interval = svc.settings.webhook_progress_interval
    if store.emit_state(job_id).after(kind, 100, now, interval) is None:
        return  # the usual case for progress: too soon; checked again atomically below
    job = job or svc.jobs.get(job_id)
    if job is None:
        return
    if kind == "progress" and (job.status is not JobStatus.PROCESSING or job.progress >= 100):
        return
    event_type = event_for(job, kind)
    if event_type is None:
        return
    deliveries = _deliveries(svc, tenant, job_id, event_type, job_snapshot(job),
                             [e for e in targets if e.wants(event_type)], now)
    store.emit(job_id, kind, job.progress, now, interval, deliveries,
               svc.settings.webhook_log_retention)


def _deliveries(svc: Services, tenant: str, subject_id: str, event_type: str, snapshot: str,
                endpoints: Sequence[Endpoint], now: float) -> list[Delivery]:
    """One event (one id, one snapshot) of `subject_id` (a job, stream or file) as a delivery
    to each of `endpoints`, due now."""
    event_id = new_id("evt")
    return [Delivery(id=new_id("wd"), tenant=tenant, endpoint_id=endpoint.id,
                     job_id=subject_id, event_id=event_id, event_type=event_type,
                     url=endpoint.url, snapshot=snapshot,
                     max_attempts=svc.settings.webhook_max_attempts,
                     next_attempt_at=now, created_at=now)
            for endpoint in endpoints]


def stream_event(svc: Services, stream: VideoStream, event_type: str) -> None:
    """A video stream started encoding, became ready or failed: one event for each of the
    tenant's endpoints that wants it (`started` once, then one terminal event). Recording
    never raises."""
    kind = "started" if event_type == STREAM_STARTED else "terminal"
    try:
        targets = svc.webhooks.targets(stream.tenant, stream.id)
        if not targets:
            return
        now = time.time()
        deliveries = _deliveries(svc, stream.tenant, stream.id, event_type,
                                 json.dumps(stream.to_dict()),
                                 [e for e in targets if e.wants(event_type)], now)
        svc.webhooks.emit(stream.id, kind, 0, now, 0.0, deliveries,
                          svc.settings.webhook_log_retention)
    except Exception as exc:
        log.warning("stream %s: the %s webhook event was not recorded: %r", stream.id,
                    event_type, exc)


def files_stored(svc: Services, records: Sequence[StoredFile]) -> None:
    """Files were added to a tenant's storage: one file.uploaded event per listed file for
    each of the tenant's endpoints that wants it (once per file, whoever calls). Call it
    after the records are stored. Recording never raises: the files stay stored whatever
    happens to their events."""
    listed = [record for record in records if not record.temporary]
    if not listed:
        return
    try:
        targets = [endpoint for endpoint in svc.webhooks.targets(listed[0].tenant, listed[0].id)
                   if endpoint.job_id is None and endpoint.wants(FILE_UPLOADED)]
    except Exception as exc:
        log.warning("file %s: the file.uploaded webhook events were not recorded: %r",
                    listed[0].id, exc)
        return
    if not targets:
        return
    for record in listed:
        try:
            now = time.time()
            deliveries = _deliveries(svc, record.tenant, record.id, FILE_UPLOADED,
                                     json.dumps(record.to_dict()),
                                     [e for e in targets if e.tenant == record.tenant], now)
            svc.webhooks.emit(record.id, "terminal", 0, now, 0.0, deliveries,
                              svc.settings.webhook_log_retention)
        except Exception as exc:
            log.warning("file %s: the file.uploaded webhook event was not recorded: %r",
                        record.id, exc)


def file_stored(svc: Services, record: StoredFile) -> StoredFile:
    """`files_stored` for one file; returns it."""
    files_stored(svc, [record])
    return record


def event_for(job: Job, kind: str) -> str | None:
    """The event type of `job`'s `kind` of moment ("started", "progress", "terminal"): a
    media tool's job has only its end, media.tool.completed or media.tool.failed."""
    if job.job_type is JobType.TOOL:
        if kind != "terminal":
            return None
        return TOOL_COMPLETED if job.status is JobStatus.COMPLETED else TOOL_FAILED
    return {"started": STARTED, "progress": PROGRESS}.get(
        kind, COMPLETED if job.status is JobStatus.COMPLETED else FAILED)


def job_snapshot(job: Job) -> str:
    """The job as stored, as JSON (what an event's `data` is rendered from)."""
    return json.dumps({**dataclasses.asdict(job), "extra": {
        name: job.extra[name] for name in (REQUEST_ID,) if name in job.extra}})


def job_from_snapshot(snapshot: str) -> Job:
    data = json.loads(snapshot)
    return Job(**{
        **data, "job_type": JobType(data["job_type"]), "status": JobStatus(data["status"]),
        "specs": tuple(FileSpec.from_dict(s) for s in data["specs"]),
        "results": tuple(FileResult.from_dict(r) for r in data["results"]),
    })


def envelope(svc: Services, base_url: str, delivery: Delivery) -> bytes:
    """The body of a delivery: its event, with the job rendered as GET /api/jobs/{id}
    answers it, the video stream as GET /api/video/streams/{id} does, or the file as
    GET /api/files/{id} does (links signed now, under `base_url`)."""
    if delivery.event_type in STREAM_EVENTS:
        stream = VideoStream.from_dict(json.loads(delivery.snapshot))
        data = stream_view(svc, base_url, stream)
    elif delivery.event_type == FILE_UPLOADED:
        data = file_view(svc, base_url, StoredFile.from_dict(json.loads(delivery.snapshot)))
    else:
        data = job_view(svc, base_url, job_from_snapshot(delivery.snapshot))
    return json.dumps({"id": delivery.event_id, "type": delivery.event_type,
                       "created": int(delivery.created_at), "data": data},
                      separators=(",", ":")).encode()


# --- sending ------------------------------------------------------------------------------


Post = Callable[..., outbound.Answer]


def backoff(svc: Services, attempts: int) -> float:
    """Seconds before the attempt after `attempts` failed ones: doubling from
    CONVERTLY_WEBHOOK_RETRY_DELAY, capped, with a little jitter so retries spread out."""
    settings = svc.settings
    delay = settings.webhook_retry_delay * 2.0 ** min(attempts - 1, 60)
    return min(settings.webhook_retry_max_delay, delay * random.uniform(1.0, 1.2))


def attempt(svc: Services, delivery: Delivery, post: Post = outbound.post) -> Delivery:
    """Send a claimed delivery once and record how it went; return it as recorded."""
    started = time.time()
    code: int | None = None
    excerpt: str | None = None
    error: str | None = "the webhook endpoint was deleted"
    permanent = True
    endpoint = svc.webhooks.endpoint(delivery.endpoint_id)
    if endpoint is not None:
        code, excerpt, error, permanent = _send(svc, delivery, endpoint, post, started)
    now = time.time()
    attempts = delivery.attempts + 1
    if error is None:
        status, next_at, finished = DeliveryStatus.SUCCEEDED, None, now
    elif permanent or attempts >= delivery.max_attempts:
        status, next_at, finished = DeliveryStatus.FAILED, None, now
        log.warning("webhook delivery %s to %s failed after %d attempts: %s", delivery.id,
                    delivery.url, attempts, error)
    else:
        status, next_at, finished = (DeliveryStatus.PENDING, now + backoff(svc, attempts),
                                     None)
    metrics.WEBHOOK_DELIVERIES.labels(
        "succeeded" if status is DeliveryStatus.SUCCEEDED
        else "failed" if status is DeliveryStatus.FAILED else "retrying").inc()
    recorded = replace(delivery, status=status, attempts=attempts, response_code=code,
                       response_excerpt=excerpt, last_error=error, next_attempt_at=next_at,
                       last_attempt_at=started, finished_at=finished)
    svc.webhooks.record_attempt(recorded)
    return recorded


def _send(svc: Services, delivery: Delivery, endpoint: Endpoint, post: Post, started: float
          ) -> tuple[int | None, str | None, str | None, bool]:
    """POST the delivery's event: (status, answer excerpt, error, whether the error is
    permanent)."""
    settings = svc.settings
    try:
        body = envelope(svc, (settings.public_url or endpoint.base_url).rstrip("/"), delivery)
    except (ValueError, TypeError, KeyError) as exc:  # a snapshot we cannot read
        log.error("webhook delivery %s: the event could not be rendered: %r", delivery.id, exc)
        return None, None, "the event could not be rendered; the error was logged", True
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: sign(endpoint.secret, body, int(started)),
               # What receivers route and check the signature's age on, without parsing it.
               "convertly-event": delivery.event_type,
               "convertly-timestamp": str(int(started)),
               "convertly-event-id": delivery.event_id,
               "convertly-delivery-id": delivery.id}
    request_id = json.loads(delivery.snapshot).get("extra", {}).get(REQUEST_ID)
    if isinstance(request_id, str):  # the request that created the job
        headers[logs.REQUEST_ID_HEADER] = request_id
    try:
        answer = post(delivery.url, body, headers, timeout=settings.webhook_timeout,
                      allow_private=settings.webhook_allow_private,
                      proxy=outbound.proxy_from(settings))
    except outbound.RefusedURLError as exc:
        return None, None, f"refused: {exc}", True
    except outbound.DeliveryFailed as exc:
        return None, None, exc.message, exc.permanent
    error = None if 200 <= answer.status < 300 else f"HTTP {answer.status}"
    return answer.status, answer.excerpt, error, False


class Dispatcher:
    """Sends due deliveries from an API process: claims them from the store (held for a
    lease, so several API processes share the work and a crash only delays a delivery),
    POSTs each from a small thread pool of its own and records the outcome. `run()` is the
    task; after `stop()` it ends once the requests in flight (at most the timeout) are
    recorded.

    The pool is shared fairly: a claim skips the tenants that have
    CONVERTLY_WEBHOOK_TENANT_CONCURRENCY deliveries in flight here, and the endpoints that
    have CONVERTLY_WEBHOOK_ENDPOINT_CONCURRENCY, and the other tenants take turns; so one
    tenant's slow receivers (each attempt ends at CONVERTLY_WEBHOOK_TIMEOUT) hold a few
    threads, never all of them."""

    def __init__(self, svc: Services, post: Post = outbound.post) -> None:
        self.svc = svc
        self.post = post
        settings = svc.settings
        self.concurrency = settings.webhook_concurrency
        self.per_tenant = min(settings.webhook_tenant_concurrency, self.concurrency)
        self.per_endpoint = settings.webhook_endpoint_concurrency
        self.lease = 2 * settings.webhook_timeout + 30
        self._in_flight = 0
        self._tenants: collections.Counter[str] = collections.Counter()
        self._endpoints: collections.Counter[str] = collections.Counter()
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look for due deliveries now (something was just queued)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _done(self, delivery: Delivery, future: concurrent.futures.Future[Any]) -> None:
        self._in_flight -= 1
        for counts, key in ((self._tenants, delivery.tenant),
                            (self._endpoints, delivery.endpoint_id)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]
        if self._wake is not None:
            self._wake.set()
        exc = future.exception()
        if exc is not None:
            log.warning("a webhook attempt was not recorded (retried after its lease): %r",
                        exc)

    def _on_done(self, loop: asyncio.AbstractEventLoop, delivery: Delivery
                 ) -> Callable[[concurrent.futures.Future[Any]], None]:
        """The sending thread's callback: `_done` on the loop."""
        def done(future: concurrent.futures.Future[Any]) -> None:
            loop.call_soon_threadsafe(self._done, delivery, future)
        return done

    async def run(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        pool = concurrent.futures.ThreadPoolExecutor(self.concurrency,
                                                     thread_name_prefix="webhook")
        purged_at = 0.0
        try:
            while not self._stopping:
                self._wake.clear()
                free = self.concurrency - self._in_flight
                if free > 0:
                    for delivery in await self._claim(free):
                        self._in_flight += 1
                        self._tenants[delivery.tenant] += 1
                        self._endpoints[delivery.endpoint_id] += 1
                        future = pool.submit(attempt, self.svc, delivery, self.post)
                        future.add_done_callback(self._on_done(loop, delivery))
                if time.monotonic() - purged_at > PURGE_INTERVAL:
                    purged_at = time.monotonic()
                    await self._purge()
                # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that
                # arrives as the event is set, and the loop would never end.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_INTERVAL):
                        await self._wake.wait()
        finally:
            await asyncio.to_thread(pool.shutdown, wait=True)

    def stop(self) -> None:
        """Make `run()` return after its current step (it then waits for the requests in
        flight). Call it from the loop that runs `run()`."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def _claim(self, limit: int) -> list[Delivery]:
        shares = Shares(self.per_tenant, self.per_endpoint, dict(self._tenants),
                        dict(self._endpoints))
        try:
            return await asyncio.to_thread(self.svc.webhooks.claim_due, time.time(), limit,
                                           self.lease, shares)
        except Exception as exc:
            log.warning("webhook deliveries not claimed: %r", exc)
            return []

    async def _purge(self) -> None:
        before = time.time() - self.svc.settings.webhook_log_retention
        try:
            removed = await asyncio.to_thread(self.svc.webhooks.purge, before)
        except Exception as exc:
            log.warning("webhook delivery log not purged: %r", exc)
            return
        if removed:
            log.info("removed %d old webhook deliveries from the log", removed)
