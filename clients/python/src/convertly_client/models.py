"""The server's answers as frozen dataclasses, and the per-file options of a request.

Each model is built from the JSON the server sent (`from_wire`) and keeps it whole in `raw`,
so fields this version does not know yet are still at hand. Field names are the wire names
in snake case; timestamps are timezone-aware datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

FINISHED = ("completed", "failed")


class FileOptions(TypedDict, total=False):
    """The per-file options of convert, compress and jobs (the README's field table). Given
    as keyword arguments they apply to every file; `per_file=[...]` gives one set per file."""

    format: str
    compression: int
    resize: str
    resize_width: int | None
    resize_height: int | None
    auto_orient: bool
    mono: bool
    page: int
    mode: str
    target_bytes: int
    lossless: bool
    strip_metadata: bool


# Option name -> (singular wire field, per-file array wire field).
OPTION_FIELDS: dict[str, tuple[str, str]] = {
    "format": ("format", "formats"),
    "compression": ("compression", "compressions"),
    "resize": ("resize", "resizes"),
    "resize_width": ("resizeWidth", "resizeWidths"),
    "resize_height": ("resizeHeight", "resizeHeights"),
    "auto_orient": ("autoOrient", "autoOrients"),
    "mono": ("mono", "monos"),
    "page": ("page", "pages"),
    "mode": ("mode", "modes"),
    "target_bytes": ("targetBytes", "targetByteValues"),
    "lossless": ("lossless", "losslessValues"),
    "strip_metadata": ("stripMetadata", "stripMetadataValues"),
}


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _notes(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int
    total: int
    has_more: bool

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Pagination:
        return cls(limit=int(data.get("limit") or 0), offset=int(data.get("offset") or 0),
                   total=int(data.get("total") or 0), has_more=bool(data.get("hasMore")))


# --- sync conversions (POST /api/convert, /api/compress) ---------------------------------


@dataclass(frozen=True)
class ConvertedFile:
    """One output of a sync conversion. `download_url` is a `data:` URL or a signed link:
    `Client.read(url)` or `Client.save(url, path)` fetch either."""

    filename: str
    original_filename: str | None
    original_size: int | None
    final_size: int | None
    saved_percent: float | None
    mime_type: str | None
    format: str | None
    width: int | None
    height: int | None
    download_url: str
    applied_quality: int | None
    stored_file_id: str | None
    notes: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ConvertedFile:
        saved = data.get("savedPercent")
        return cls(
            filename=str(data.get("filename") or "output"),
            original_filename=_str(data.get("originalFilename")),
            original_size=_int(data.get("originalSize")),
            final_size=_int(data.get("finalSize")),
            saved_percent=float(saved) if isinstance(saved, int | float) else None,
            mime_type=_str(data.get("mimeType")),
            format=_str(data.get("format")),
            width=_int(data.get("width")),
            height=_int(data.get("height")),
            download_url=str(data.get("downloadUrl") or ""),
            applied_quality=_int(data.get("appliedQuality")),
            stored_file_id=_str(data.get("storedFileId")),
            notes=_notes(data.get("notes")),
            raw=data,
        )


@dataclass(frozen=True)
class Conversion:
    """The answer of a sync conversion: its outputs, and whether they were stored."""

    files: tuple[ConvertedFile, ...]
    saved: bool
    notice: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Conversion:
        storage = data.get("storage") or {}
        return cls(files=tuple(ConvertedFile.from_wire(f) for f in data.get("files") or []),
                   saved=bool(storage.get("saved")), notice=_str(storage.get("notice")),
                   raw=data)


# --- jobs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    """One file of a job: `status` pending, processing, completed or failed."""

    index: int
    filename: str
    status: str
    format: str | None
    output_filename: str | None
    original_size: int | None
    final_size: int | None
    mime_type: str | None
    applied_quality: int | None
    width: int | None
    height: int | None
    download_url: str | None
    stored_file_id: str | None
    error: str | None
    error_code: str | None
    notes: tuple[str, ...]
    progress: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> FileResult:
        return cls(
            index=int(data.get("index") or 0), filename=str(data.get("filename") or ""),
            status=str(data.get("status") or ""), format=_str(data.get("format")),
            output_filename=_str(data.get("outputFilename")),
            original_size=_int(data.get("originalSize")),
            final_size=_int(data.get("finalSize")), mime_type=_str(data.get("mimeType")),
            applied_quality=_int(data.get("appliedQuality")), width=_int(data.get("width")),
            height=_int(data.get("height")), download_url=_str(data.get("downloadUrl")),
            stored_file_id=_str(data.get("storedFileId")), error=_str(data.get("error")),
            error_code=_str(data.get("errorCode")), notes=_notes(data.get("notes")),
            progress=int(data.get("progress") or 0), raw=data,
        )


@dataclass(frozen=True)
class Archive:
    """A job's bundle of outputs (createArchive=true); `download_url` once it is built."""

    filename: str
    format: str | None
    size: int | None
    download_url: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Archive:
        return cls(filename=str(data.get("filename") or "convertly.zip"),
                   format=_str(data.get("format")), size=_int(data.get("size")),
                   download_url=_str(data.get("downloadUrl")), raw=data)


@dataclass(frozen=True)
class Job:
    """A job as GET /api/jobs/{id} answers it (and webhook events carry it)."""

    job_id: str
    job_type: str
    status: str
    priority: str | None
    total_files: int
    completed_files: int
    failed_files: int
    progress: float
    error_message: str | None
    cancelled: bool
    results: tuple[FileResult, ...]
    archive: Archive | None
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """Completed or failed (a cancelled job is failed, with `cancelled`)."""
        return self.status in FINISHED

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Job:
        archive = data.get("archive")
        return cls(
            job_id=str(data.get("jobId") or ""), job_type=str(data.get("jobType") or ""),
            status=str(data.get("status") or ""), priority=_str(data.get("priority")),
            total_files=int(data.get("totalFiles") or 0),
            completed_files=int(data.get("completedFiles") or 0),
            failed_files=int(data.get("failedFiles") or 0),
            progress=float(data.get("progress") or 0),
            error_message=_str(data.get("errorMessage")),
            cancelled=bool(data.get("cancelled")),
            results=tuple(FileResult.from_wire(r) for r in data.get("results") or []),
            archive=Archive.from_wire(archive) if isinstance(archive, Mapping) else None,
            created_at=_when(data.get("createdAt")), started_at=_when(data.get("startedAt")),
            completed_at=_when(data.get("completedAt")), raw=data,
        )


@dataclass(frozen=True)
class JobCreated:
    """The answer of POST /api/jobs; `replayed` when an Idempotency-Key matched an earlier
    job (which is the one named)."""

    job_id: str
    status: str
    replayed: bool


@dataclass(frozen=True)
class JobList:
    jobs: tuple[Job, ...]
    pagination: Pagination
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> JobList:
        return cls(jobs=tuple(Job.from_wire(j) for j in data.get("jobs") or []),
                   pagination=Pagination.from_wire(data.get("pagination") or {}), raw=data)


# --- storage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A file in storage (/api/files); `download_url` is signed for `expires_in` seconds."""

    id: str
    filename: str
    mime_type: str | None
    size_bytes: int | None
    folder_id: str | None
    width: int | None
    height: int | None
    duration: float | None
    tags: tuple[str, ...]
    description: str | None
    job_id: str | None
    page_count: int | None
    created_at: datetime | None
    download_url: str | None
    expires_in: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> StoredFile:
        meta = data.get("metadata") or {}
        duration = data.get("duration")
        return cls(
            id=str(data.get("id") or ""), filename=str(data.get("filename") or ""),
            mime_type=_str(data.get("mime_type")), size_bytes=_int(data.get("size_bytes")),
            folder_id=_str(data.get("folder_id")), width=_int(data.get("width")),
            height=_int(data.get("height")),
            duration=float(duration) if isinstance(duration, int | float) else None,
            tags=_notes(meta.get("tags")), description=_str(meta.get("description")),
            job_id=_str(meta.get("jobId")), page_count=_int(meta.get("pageCount")),
            created_at=_when(data.get("created_at")),
            download_url=_str(data.get("download_url") or data.get("downloadUrl")),
            expires_in=_int(data.get("expiresIn")), raw=data,
        )


@dataclass(frozen=True)
class FileList:
    files: tuple[StoredFile, ...]
    pagination: Pagination
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> FileList:
        return cls(files=tuple(StoredFile.from_wire(f) for f in data.get("files") or []),
                   pagination=Pagination.from_wire(data.get("pagination") or {}), raw=data)


@dataclass(frozen=True)
class Folder:
    id: str
    name: str
    color: str | None
    parent_id: str | None
    created_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Folder:
        return cls(id=str(data.get("id") or ""), name=str(data.get("name") or ""),
                   color=_str(data.get("color")), parent_id=_str(data.get("parent_id")),
                   created_at=_when(data.get("created_at")), raw=data)


# --- webhooks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """An account webhook endpoint; `secret` (whsec_...) only in the answer that created it."""

    id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime | None
    secret: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Webhook:
        return cls(id=str(data.get("id") or ""), url=str(data.get("url") or ""),
                   events=_notes(data.get("events")), created_at=_when(data.get("createdAt")),
                   secret=_str(data.get("secret")), raw=data)


def options_fields(options: Mapping[str, Any],
                   per_file: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    """The form fields for options that apply to every file and per-file ones (one JSON
    array per option, one entry per file, null where a file does not set it)."""
    out: list[tuple[str, str]] = []
    for name, value in options.items():
        if value is not None:
            out.append((_wire_name(name, 0), _text(value)))
    if per_file:
        names = sorted({name for entry in per_file for name in entry})
        for name in names:
            values = [entry.get(name) for entry in per_file]
            out.append((_wire_name(name, 1), _json_array(values)))
    return out


def _wire_name(option: str, which: int) -> str:
    try:
        return OPTION_FIELDS[option][which]
    except KeyError:
        raise TypeError(f"unknown option {option!r}; known: "
                        f"{', '.join(OPTION_FIELDS)}") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_array(values: Sequence[Any]) -> str:
    return json.dumps(list(values))
