"""The vocabulary of the service: formats, presets, per-file specs, jobs.

Everything here is plain data (frozen dataclasses and StrEnums) that crosses process
boundaries as JSON: from the API to the job store, to a pool worker or a Celery task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class OutputFormat(StrEnum):
    """Every `format` value of Convertly's contract (not all have a converter yet)."""

    JPG = "jpg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    TIFF = "tiff"
    GIF = "gif"
    HEIF = "heif"
    SVG = "svg"
    PDF = "pdf"
    MP4 = "mp4"
    WEBM = "webm"
    MOV = "mov"
    MP3 = "mp3"
    WAV = "wav"
    OGG = "ogg"
    M4A = "m4a"
    FLAC = "flac"
    ZIP = "zip"
    TAR = "tar"
    TGZ = "tgz"
    SEVEN_Z = "7z"
    RAR = "rar"
    GZ = "gz"
    BZ2 = "bz2"
    XZ = "xz"


# Spellings the API and CLI accept for a format besides its own value.
FORMAT_ALIASES = {"jpeg": "jpg", "tif": "tiff", "heic": "heif", "tar.gz": "tgz"}

MIME_TYPES: dict[str, str] = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "heif": "image/heif",
    "bmp": "image/bmp",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "zip": "application/zip",
    "tar": "application/x-tar",
    "tgz": "application/gzip",
    "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar",
    "gz": "application/gzip",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
}

# File-name extension written for each format (what a user expects to see on disk).
EXTENSIONS: dict[str, str] = {"jpg": "jpg", "tiff": "tiff", "heif": "heic", "tgz": "tar.gz"}


def extension_for(fmt: str) -> str:
    return EXTENSIONS.get(fmt, fmt)


def mime_for(fmt: str) -> str:
    return MIME_TYPES.get(fmt, "application/octet-stream")


class ResizePreset(StrEnum):
    ORIGINAL = "original"
    WEBSITE = "website"
    EMAIL = "email"
    INSTAGRAM = "instagram"
    LINKEDIN = "linkedin"
    ECOMMERCE = "ecommerce"
    SQUARE = "square"
    WIDTH = "width"
    HEIGHT = "height"


class JobType(StrEnum):
    CONVERT = "convert"
    COMPRESS = "compress"
    TOOL = "tool"  # a media tool (`FileSpec.tool`) run on the job's one file
    TRANSFER = "transfer"  # POST /api/transfer into storage (convertly.transfers)


class CompressMode(StrEnum):
    QUALITY = "quality"
    TARGET_SIZE = "target-size"


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class FileStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


DEFAULT_COMPRESSION = 82
CANCELLED_MESSAGE = "Cancelled at the client's request."
CANCELLED_CODE = "CANCELLED"


def _fields(obj: Any) -> dict[str, Any]:
    """A frozen dataclass of scalars and tuples as a dict. dataclasses.asdict deep-copies
    every value (~60 µs a FileSpec), which a thousand-file job pays several times a file."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


@dataclass(frozen=True)
class FileSpec:
    """What to do with one uploaded file. `format` is None for compress (keep the format)."""

    index: int
    filename: str
    job_type: JobType = JobType.CONVERT
    format: OutputFormat | None = None
    compression: int = DEFAULT_COMPRESSION
    resize: ResizePreset = ResizePreset.ORIGINAL
    resize_width: int | None = None
    resize_height: int | None = None
    auto_orient: bool = True
    mono: bool = False
    mode: CompressMode = CompressMode.QUALITY
    target_bytes: int | None = None
    lossless: bool = False
    strip_metadata: bool = False
    page: int = 1  # which page of a PDF source becomes the image (1-based)
    # A media tool's job (job_type TOOL): the tool's name, its options as sent (name, text;
    # validated again where the tool runs), and its file options as (name, storage key).
    tool: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = _fields(self)
        # Left out unless set, so a conversion's spec (and its idempotency fingerprint)
        # reads as it did before tools existed.
        for name in ("tool", "options", "inputs"):
            if not data[name]:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileSpec:
        fmt = data.get("format")
        return cls(
            index=int(data["index"]),
            filename=str(data["filename"]),
            job_type=JobType(data.get("job_type", JobType.CONVERT)),
            format=OutputFormat(fmt) if fmt else None,
            compression=int(data.get("compression", DEFAULT_COMPRESSION)),
            resize=ResizePreset(data.get("resize", ResizePreset.ORIGINAL)),
            resize_width=data.get("resize_width"),
            resize_height=data.get("resize_height"),
            auto_orient=bool(data.get("auto_orient", True)),
            mono=bool(data.get("mono", False)),
            mode=CompressMode(data.get("mode", CompressMode.QUALITY)),
            target_bytes=data.get("target_bytes"),
            lossless=bool(data.get("lossless", False)),
            strip_metadata=bool(data.get("strip_metadata", False)),
            page=int(data.get("page", 1)),
            tool=data.get("tool"),
            options=tuple((str(k), str(v)) for k, v in data.get("options") or ()),
            inputs=tuple((str(k), str(v)) for k, v in data.get("inputs") or ()),
        )


@dataclass(frozen=True)
class SourceInfo:
    """What sniffing found in a source file: `kind` is a sniff.Kind value (jpeg, png, ...)."""

    kind: str
    family: str
    mime_type: str
    size: int


@dataclass(frozen=True)
class ConvertedFile:
    """A converter's result: a file inside the task's scratch directory. A media tool's
    result may have no file (`path` "": `inspect`) and carries its `facts` (JSON values)."""

    path: str
    format: str
    mime_type: str
    applied_quality: int | None = None
    width: int | None = None
    height: int | None = None
    notes: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)


@dataclass(frozen=True)
class FileResult:
    """The outcome of one file of a job, as stored and rendered."""

    index: int
    filename: str
    status: FileStatus
    format: str | None = None
    original_size: int = 0
    final_size: int | None = None
    mime_type: str | None = None
    applied_quality: int | None = None
    output_key: str | None = None
    output_filename: str | None = None
    stored_file_id: str | None = None
    error: str | None = None
    error_code: str | None = None
    width: int | None = None
    height: int | None = None
    notes: tuple[str, ...] = ()
    progress: float = 0.0  # fraction of a pending file done, as its converter reported it
    facts: dict[str, Any] = field(default_factory=dict)  # a media tool's (ToolOutput.facts)

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        values = dict(data)
        values["status"] = FileStatus(values["status"])
        values["notes"] = tuple(values.get("notes") or ())
        return cls(**values)


@dataclass(frozen=True)
class FileWork:
    """What a worker needs to convert one file of a job."""

    job_id: str
    tenant: str
    spec: FileSpec


@dataclass(frozen=True)
class Job:
    """A job as the job store holds it."""

    id: str
    tenant: str
    job_type: JobType
    status: JobStatus
    specs: tuple[FileSpec, ...]
    results: tuple[FileResult, ...]
    create_archive: bool = False
    archive_format: str = "zip"
    archive_key: str | None = None
    archive_size: int | None = None
    error_message: str | None = None
    cancelled: bool = False
    created_at: float = 0.0
    started_at: float | None = None
    completed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A cancelled job's files that had no result when it was cancelled (queued, or
        # stopped mid-conversion) read as failed for that reason, in every store and view.
        if self.cancelled and any(r.status is FileStatus.PENDING for r in self.results):
            object.__setattr__(self, "results", tuple(
                replace(r, status=FileStatus.FAILED, error=CANCELLED_MESSAGE,
                        error_code=CANCELLED_CODE, progress=0.0)
                if r.status is FileStatus.PENDING else r for r in self.results))

    @property
    def total_files(self) -> int:
        return len(self.specs)

    @property
    def priority(self) -> str:
        """low, normal or high (convertly.priority); jobs stored before it existed: normal."""
        return str(self.extra.get("priority") or "normal")

    @property
    def completed_files(self) -> int:
        return sum(1 for r in self.results if r.status is FileStatus.COMPLETED)

    @property
    def failed_files(self) -> int:
        return sum(1 for r in self.results if r.status is FileStatus.FAILED)

    @property
    def progress(self) -> int:
        if self.status is JobStatus.COMPLETED:
            return 100
        if not self.specs:
            return 0
        done = self.completed_files + self.failed_files
        partial = sum(r.progress for r in self.results if r.status is FileStatus.PENDING)
        # The archive step, when asked for, is the last slice of the bar.
        steps = self.total_files + (1 if self.create_archive else 0)
        return min(99, int(100 * (done + partial) / steps)) if done < steps else 100
