"""The records the state stores carry (jobs, `Job` and its parts, are in `convertly.models`):
frozen dataclasses, the same on both engines.

    StoredFile, FileQuery   what `storedFileId` points at and what `/api/files` lists
    Folder                  folders of stored files, per tenant
    ApiKey                  an API key's record
    TenantLimits            a tenant's own limits (`convertly keys limits`)
    JobQuota                what a tenant may have in flight, checked as a job is stored
    Bucket, RateDecision    a rate-limit bucket, and what one check of it answered
    Endpoint, Delivery, EmitState   webhooks: where events go, each event sent to one
                            endpoint, and what a job has emitted so far
    Shares                  the fair shares a claim of due deliveries keeps to
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from convertly.errors import (
    ConcurrentJobsLimitError,
    ConvertlyError,
    QueuedFilesLimitError,
)


@dataclass(frozen=True)
class ApiKey:
    """An API key's record; the key itself is never stored, only its hash (`convertly.auth`).
    `prefix` is the key's public beginning, by which it is looked up."""

    prefix: str
    name: str
    tenant: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's own limits, each overriding the setting of the same meaning; None keeps
    the setting, 0 turns the limit off for the tenant. `rate` is requests per second per API
    key, `burst` how many may come at once; the rest are per tenant (`convertly.limits`)."""

    rate: float | None = None
    burst: int | None = None
    concurrent_jobs: int | None = None
    queued_files: int | None = None
    stored_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantLimits:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class JobQuota:
    """What a tenant may have in flight when it creates a job (0: no limit): unfinished
    jobs, and files not yet finished across them. The job stores check it in the
    transaction that stores the job, from the jobs they hold (no counter to drift)."""

    concurrent_jobs: int = 0
    queued_files: int = 0

    def refusal(self, unfinished_jobs: int, queued_files: int,
                adding_files: int) -> ConvertlyError | None:
        """The error refusing a job of `adding_files` files when the tenant already has
        `unfinished_jobs` jobs and `queued_files` files in flight, or None."""
        if self.concurrent_jobs and unfinished_jobs + 1 > self.concurrent_jobs:
            return ConcurrentJobsLimitError(
                f"This account has {unfinished_jobs} unfinished jobs, its limit "
                f"(concurrent jobs: {self.concurrent_jobs}); retry once one has finished.",
                retry_after=QUOTA_RETRY_AFTER, headers=_quota_headers(self.concurrent_jobs),
                detail={"limit": self.concurrent_jobs, "current": unfinished_jobs})
        if self.queued_files and queued_files + adding_files > self.queued_files:
            return QueuedFilesLimitError(
                f"This account has {queued_files} files waiting to convert; {adding_files} "
                f"more would pass its limit (queued files: {self.queued_files}). Retry once "
                "some have finished, or send fewer files.",
                retry_after=QUOTA_RETRY_AFTER, headers=_quota_headers(self.queued_files),
                detail={"limit": self.queued_files, "current": queued_files})
        return None


# Seconds a refused job is told to wait: jobs end at their own pace, so this is a polling hint.
QUOTA_RETRY_AFTER = 5


def _quota_headers(limit: int) -> dict[str, str]:
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(QUOTA_RETRY_AFTER)}


@dataclass(frozen=True)
class Bucket:
    """A rate-limit bucket: `burst` requests at once, refilled at `rate` a second."""

    name: str
    rate: float
    burst: int


@dataclass(frozen=True)
class RateDecision:
    """One rate-limit check (a GCRA bucket of `limit` requests refilled at `limit` per
    `window` seconds): whether it passed, how many more would pass now (`remaining`), the
    seconds until the bucket is full again (`reset`) and, when refused, until one more would
    pass (`retry_after`)."""

    allowed: bool
    limit: int
    remaining: int
    reset: float
    retry_after: float
    window: float


# --- stored files -----------------------------------------------------------------------
# A record is *listed* unless it is temporary: a short-lived sync output, a zip of files, or
# a direct upload that is not complete yet.


@dataclass(frozen=True)
class StoredFile:
    id: str
    tenant: str
    key: str
    filename: str
    mime_type: str
    size_bytes: int
    width: int | None = None  # as displayed: EXIF orientation, video rotation applied
    height: int | None = None
    job_id: str | None = None
    temporary: bool = False
    created_at: float = 0.0
    expires_at: float | None = None
    folder_id: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    duration: float | None = None  # seconds, audio and video
    page_count: int | None = None  # PDF

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredFile:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["tags"] = tuple(values.get("tags") or ())
        values["temporary"] = bool(values.get("temporary", False))
        return cls(**values)


def new_file_id() -> str:
    return "file_" + secrets.token_hex(12)


ORIENTATIONS = ("vertical", "horizontal", "square")


@dataclass(frozen=True)
class FileQuery:
    """Which of a tenant's listed files a search returns. Empty fields do not filter.

    `folder_id` with `root_only=False`: files in that folder; `root_only=True`: files in no
    folder. `text`: a case-insensitive substring of the filename. `tags`: one group of forms
    per tag asked for (the tag, and the slug, label and synonyms of the taxonomy term it
    names); files carrying a form of any of them (of all of them with `all_tags`), compared
    case-insensitively. `orientation`: vertical, horizontal or square, from the recorded
    width and height."""

    folder_id: str | None = None
    root_only: bool = False
    text: str | None = None
    mime_prefix: str | None = None
    tags: tuple[tuple[str, ...], ...] = ()
    all_tags: bool = False
    orientation: str | None = None

    @property
    def scans(self) -> bool:
        """True when the query filters on more than the folder (a search must read records)."""
        return bool(self.text or self.mime_prefix or self.tags or self.orientation)

    def matches(self, record: StoredFile) -> bool:
        if record.temporary:
            return False
        if self.root_only and record.folder_id is not None:
            return False
        if self.folder_id is not None and record.folder_id != self.folder_id:
            return False
        if self.text and self.text.casefold() not in record.filename.casefold():
            return False
        if self.mime_prefix and not record.mime_type.lower().startswith(
                self.mime_prefix.lower()):
            return False
        if self.tags:
            have = {t.casefold() for t in record.tags}
            hits = [any(t.casefold() in have for t in forms) for forms in self.tags]
            if not (all(hits) if self.all_tags else any(hits)):
                return False
        return not self.orientation or orientation(record) == self.orientation


def orientation(record: StoredFile) -> str | None:
    """vertical, horizontal or square, from the width and height as displayed; None for a
    file with no dimensions."""
    if record.width is None or record.height is None:
        return None
    return ("square" if record.width == record.height
            else "vertical" if record.height > record.width else "horizontal")


# Search facets (`GET /api/files/search?facets=`): what each counts the files of.
FACETS = ("tags", "orientation", "mimeType")


def count_facets(records: Iterable[StoredFile], which: Iterable[str],
                 limit: int) -> dict[str, list[tuple[str, int]]]:
    """For each facet in `which`, (value, number of files) by count then value, at most
    `limit`. Tags are counted case-insensitively (shown in their least form: `min`), mime types in
    lower case; files with no dimensions have no orientation."""
    wanted = list(which)
    counts: dict[str, dict[str, int]] = {name: {} for name in wanted}
    shown: dict[str, str] = {}
    for record in records:
        if "tags" in counts:
            forms: dict[str, str] = {}
            for tag in record.tags:
                key = tag.casefold()
                forms[key] = min(forms.get(key, tag), tag)
            for key, tag in forms.items():
                shown[key] = min(shown.get(key, tag), tag)
                counts["tags"][key] = counts["tags"].get(key, 0) + 1
        if "orientation" in counts and (shape := orientation(record)) is not None:
            counts["orientation"][shape] = counts["orientation"].get(shape, 0) + 1
        if "mimeType" in counts:
            mime = record.mime_type.lower()
            counts["mimeType"][mime] = counts["mimeType"].get(mime, 0) + 1
    return {name: sorted(((shown.get(v, v) if name == "tags" else v, n)
                          for v, n in counts[name].items()),
                         key=lambda vn: (-vn[1], vn[0]))[:limit]
            for name in wanted}


# --- folders ----------------------------------------------------------------------------
# A tree per tenant: each folder has at most one parent.

DEFAULT_COLOR = "#64748b"


@dataclass(frozen=True)
class Folder:
    id: str
    tenant: str
    name: str
    color: str
    parent_id: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def new_folder_id() -> str:
    return "fld_" + secrets.token_hex(12)


# --- library taxonomy -------------------------------------------------------------------


@dataclass(frozen=True)
class TaxonomyTerm:
    """One term of a tenant's controlled vocabulary (`convertly.taxonomy`): a canonical
    `slug`, unique per tenant and locale, its `label`, and the `synonyms` that resolve to it."""

    id: str
    tenant: str
    slug: str
    label: str
    locale: str
    group_name: str | None
    synonyms: tuple[str, ...]
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["synonyms"] = list(self.synonyms)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaxonomyTerm:
        return cls(**{**data, "synonyms": tuple(data.get("synonyms") or ())})


def new_term_id() -> str:
    return "tax_" + secrets.token_hex(12)


# --- webhooks ---------------------------------------------------------------------------

STARTED = "conversion.started"
PROGRESS = "conversion.progress"
COMPLETED = "conversion.completed"
FAILED = "conversion.failed"
# A file record was added to the tenant's storage (listed: never a temporary one); its
# `data` is the file.
FILE_UPLOADED = "file.uploaded"
# A video stream's events (`convertly.videostreams`); their `data` is the stream.
STREAM_STARTED = "video.stream.started"
STREAM_READY = "video.stream.ready"
STREAM_FAILED = "video.stream.failed"
STREAM_EVENTS = (STREAM_STARTED, STREAM_READY, STREAM_FAILED)
# A media tool's job ends with one of these instead (it sends no started or progress event).
TOOL_COMPLETED = "media.tool.completed"
TOOL_FAILED = "media.tool.failed"
EVENT_TYPES = (STARTED, PROGRESS, COMPLETED, FAILED, FILE_UPLOADED, TOOL_COMPLETED, TOOL_FAILED,
               *STREAM_EVENTS)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Endpoint:
    """Where events go. An account endpoint (POST /api/webhooks) gets the tenant's events
    that `events` names (None: all); a job's callback (`job_id` set, from callbackUrl) gets
    every event of that job. `base_url` is the API's address when it was created, for the
    download links in events when CONVERTLY_PUBLIC_URL is not set."""

    id: str
    tenant: str
    url: str
    secret: str
    events: tuple[str, ...] | None
    base_url: str
    created_at: float
    job_id: str | None = None

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        events = data.get("events")
        return cls(**{**data, "events": None if events is None else tuple(events)})


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    """One event for one endpoint, and how sending it went. `snapshot` is the job as it was
    when the event happened (JSON); each attempt renders it, with fresh download links, into
    the body it signs."""

    id: str
    tenant: str
    endpoint_id: str
    job_id: str
    event_id: str
    event_type: str
    url: str
    snapshot: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    max_attempts: int = 1
    response_code: int | None = None
    response_excerpt: str | None = None
    last_error: str | None = None
    next_attempt_at: float | None = None
    last_attempt_at: float | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def stream(self) -> str:
        return f"{self.endpoint_id}:{self.job_id}"

    def meta(self) -> dict[str, Any]:
        """Every field but the snapshot."""
        data = asdict(self)
        del data["snapshot"]
        return data

    @classmethod
    def from_meta(cls, meta: dict[str, Any], snapshot: str) -> Delivery:
        return cls(**{**meta, "status": DeliveryStatus(meta["status"]), "snapshot": snapshot})

    def retried(self, now: float) -> Delivery:
        """Pending again for one more attempt, now."""
        return replace(self, status=DeliveryStatus.PENDING, max_attempts=self.attempts + 1,
                       next_attempt_at=now, finished_at=None)


@dataclass(frozen=True)
class Shares:
    """The fair shares a claim of due deliveries keeps to: at most `per_tenant` deliveries
    of one tenant and `per_endpoint` to one endpoint in flight, counting those the claimer
    has in flight already (`tenants` and `endpoints`: counts by tenant and endpoint id)."""

    per_tenant: int
    per_endpoint: int
    tenants: Mapping[str, int] = field(default_factory=dict)
    endpoints: Mapping[str, int] = field(default_factory=dict)

    def full(self) -> tuple[list[str], list[str]]:
        """The tenants and the endpoints that are at their share already."""
        return ([t for t, n in self.tenants.items() if n >= self.per_tenant],
                [e for e, n in self.endpoints.items() if n >= self.per_endpoint])


@dataclass(frozen=True)
class EmitState:
    """What a job has emitted so far: `progress` is the last percentage sent (-1: none)."""

    started: bool = False
    terminal: bool = False
    progress: int = -1
    progress_at: float = 0.0

    def after(self, kind: str, progress: int, now: float, interval: float) -> EmitState | None:
        """The state once `kind` ("started", "progress" or "terminal") is emitted, or None
        when it must not be: after the terminal event nothing; `started` once; progress
        only forward and at most every `interval` seconds."""
        if self.terminal:
            return None
        if kind == "started":
            return None if self.started else replace(self, started=True)
        if kind == "progress":
            if progress <= self.progress or now - self.progress_at < interval:
                return None
            return replace(self, progress=progress, progress_at=now)
        return replace(self, terminal=True)
