"""Every error the service reports, with a stable machine code and a safe public message.

    ConvertlyError                      500 INTERNAL_ERROR
    ├── InvalidRequestError             400 INVALID_REQUEST
    │   ├── InvalidFieldError           400 INVALID_FIELD
    │   ├── ArrayLengthError            400 ARRAY_LENGTH_MISMATCH
    │   └── CorruptFileError            400 CORRUPT_FILE
    ├── AuthenticationError             401 UNAUTHORIZED
    ├── ForbiddenError                  403 FORBIDDEN
    │   └── StorageLimitError           403 STORAGE_LIMIT
    ├── NotFoundError                   404 NOT_FOUND
    ├── ConflictError                   409 CONFLICT
    │   ├── IdempotencyMismatchError    409 IDEMPOTENCY_MISMATCH
    │   └── TaxonomyFullError           409 TAXONOMY_FULL
    ├── PayloadTooLargeError            413 PAYLOAD_TOO_LARGE
    │   ├── FileTooLargeError           413 FILE_TOO_LARGE
    │   ├── TooManyFilesError           413 TOO_MANY_FILES
    │   ├── ImageTooLargeError          413 IMAGE_TOO_LARGE
    │   ├── MediaTooLongError           413 MEDIA_TOO_LONG
    │   ├── TooManyPagesError           413 TOO_MANY_PAGES
    │   ├── ArchiveTooLargeError        413 ARCHIVE_TOO_LARGE
    │   └── MemoryLimitError            413 MEMORY_LIMIT
    ├── UnsupportedMediaError           415 UNSUPPORTED_MEDIA
    │   └── UnsupportedConversionError  415 UNSUPPORTED_CONVERSION
    ├── RangeNotSatisfiableError        416 RANGE_NOT_SATISFIABLE
    ├── EncryptedFileError              422 ENCRYPTED_FILE
    ├── ProviderUnavailableError        422 PROVIDER_UNAVAILABLE
    ├── ConversionError                 422 CONVERSION_FAILED
    │   └── ConversionTimeoutError      422 CONVERSION_TIMEOUT
    ├── RateLimitError                  429 RATE_LIMITED
    │   ├── AuthThrottledError          429 AUTH_THROTTLED
    │   ├── ConcurrentJobsLimitError    429 CONCURRENT_JOBS_LIMIT
    │   └── QueuedFilesLimitError       429 QUEUED_FILES_LIMIT
    ├── FeatureUnavailableError         501 FEATURE_UNAVAILABLE
    └── ServiceUnavailableError         503 SERVICE_UNAVAILABLE
        ├── QueueFullError              503 QUEUE_FULL
        ├── QueueTimeoutError           503 QUEUE_TIMEOUT
        ├── StorageUnavailableError     503 STORAGE_UNAVAILABLE
        │   └── StorageMisconfiguredError   503 STORAGE_MISCONFIGURED
        ├── StateUnavailableError       503 STATE_UNAVAILABLE
        │   └── StateMisconfiguredError     503 STATE_MISCONFIGURED
        ├── BrokerUnavailableError      503 BROKER_UNAVAILABLE
        └── StorageFullError            507 STORAGE_FULL

Per-file errors (CorruptFileError, UnsupportedMediaError, ...) carry the file's name so a
sync request can say which file failed and a job can store it in that file's `error`.
The HTTP status table lives in `convertly.api.errors`, next to the one function that renders
every error body.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless n is 1: "1 file", "3 files"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class ConvertlyError(Exception):
    """Base class. `message` is safe to show to the caller; it says what to do next."""

    code = "INTERNAL_ERROR"
    default_message = "Something went wrong on our side; the error was logged. Retry later."

    def __init__(
        self,
        message: str | None = None,
        *,
        detail: dict[str, Any] | None = None,
        filename: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.detail = detail or {}
        self.filename = filename
        super().__init__(self.message)

    def for_file(self, filename: str) -> ConvertlyError:
        """Name the file this error is about (in the message too), once."""
        if self.filename is None:
            self.filename = filename
            self.message = f"{filename}: {self.message}"
            self.args = (self.message,)
        return self


class InvalidRequestError(ConvertlyError):
    code = "INVALID_REQUEST"
    default_message = "The request is invalid."


class InvalidFieldError(InvalidRequestError):
    """A form field has a value we do not accept; the message names the field (and file)."""

    code = "INVALID_FIELD"

    def __init__(self, field: str, message: str, *, file_index: int | None = None) -> None:
        where = f" (file {file_index + 1})" if file_index is not None else ""
        detail: dict[str, Any] = {"field": field}
        if file_index is not None:
            detail["fileIndex"] = file_index
        super().__init__(f"Field '{field}'{where}: {message}", detail=detail)
        self.field = field


class ArrayLengthError(InvalidRequestError):
    code = "ARRAY_LENGTH_MISMATCH"

    def __init__(self, field: str, got: int, expected: int) -> None:
        super().__init__(
            f"Field '{field}' has {got} entries but {counted(expected, 'file')} "
            f"{'was' if expected == 1 else 'were'} uploaded; "
            "send exactly one entry per file, or the singular field to apply one value to all.",
            detail={"field": field, "entries": got, "files": expected},
        )
        self.field = field


class CorruptFileError(InvalidRequestError):
    """The file claims a format we read but is empty, truncated or corrupt."""

    code = "CORRUPT_FILE"
    default_message = "The file is empty, truncated or corrupt and cannot be decoded."


class AuthenticationError(ConvertlyError):
    code = "UNAUTHORIZED"
    default_message = (
        "Missing or invalid API key. Send it as 'Authorization: Bearer cvly_...' "
        "or in the 'x-api-key' header."
    )


class ForbiddenError(ConvertlyError):
    code = "FORBIDDEN"
    default_message = "This API key is not allowed to do that."


class StorageLimitError(ForbiddenError):
    """The tenant's stored bytes would pass its limit (CONVERTLY_TENANT_MAX_STORED_BYTES, or
    the tenant's own from `convertly keys limits`); the message names the limit."""

    code = "STORAGE_LIMIT"
    default_message = ("This account's storage limit is reached; delete stored files "
                       "(DELETE /api/files/{id}) before storing more.")


class NotFoundError(ConvertlyError):
    code = "NOT_FOUND"
    default_message = "Not found."


class ConflictError(ConvertlyError):
    code = "CONFLICT"
    default_message = "The resource is not in a state that allows this."


class IdempotencyMismatchError(ConflictError):
    """An Idempotency-Key replayed with a request other than the one it was first sent with
    (other fields, other files): the earlier job is not the answer to this request."""

    code = "IDEMPOTENCY_MISMATCH"
    default_message = ("This Idempotency-Key was first used with a different request; send "
                       "the same request again, or a new key for a new job.")


class TaxonomyFullError(ConflictError):
    """A tenant's library taxonomy holds the most terms it may (`convertly.taxonomy`)."""

    code = "TAXONOMY_FULL"


class PayloadTooLargeError(ConvertlyError):
    code = "PAYLOAD_TOO_LARGE"
    default_message = "The request body is too large."


class FileTooLargeError(PayloadTooLargeError):
    code = "FILE_TOO_LARGE"


class TooManyFilesError(PayloadTooLargeError):
    code = "TOO_MANY_FILES"


class ImageTooLargeError(PayloadTooLargeError):
    code = "IMAGE_TOO_LARGE"


class MediaTooLongError(PayloadTooLargeError):
    code = "MEDIA_TOO_LONG"


class TooManyPagesError(PayloadTooLargeError):
    code = "TOO_MANY_PAGES"


class ArchiveTooLargeError(PayloadTooLargeError):
    """Too many entries, or more bytes once extracted than CONVERTLY_MAX_EXTRACTED_BYTES."""

    code = "ARCHIVE_TOO_LARGE"


class MemoryLimitError(PayloadTooLargeError):
    """Converting the file needed more memory than CONVERTLY_TASK_MAX_MEMORY allows."""

    code = "MEMORY_LIMIT"


class UnsupportedMediaError(ConvertlyError):
    code = "UNSUPPORTED_MEDIA"
    default_message = "We cannot read this kind of file."


class UnsupportedConversionError(UnsupportedMediaError):
    code = "UNSUPPORTED_CONVERSION"


class RangeNotSatisfiableError(ConvertlyError):
    """A byte range that starts past the end of the file asked for (`size` bytes)."""

    code = "RANGE_NOT_SATISFIABLE"
    default_message = "The requested byte range starts past the end of the file."

    def __init__(self, size: int = 0) -> None:
        super().__init__(f"The requested byte range starts past the end of the file "
                         f"({size} bytes).", detail={"size": size})
        self.size = size


class EncryptedFileError(ConvertlyError):
    """The file is password-protected (an archive, a PDF, encrypted media): well formed,
    but nothing in it can be read without a password, which the service never asks for."""

    code = "ENCRYPTED_FILE"
    default_message = ("The file is password-protected (encrypted); remove the password and "
                       "send it again.")


class ProviderUnavailableError(ConvertlyError):
    """A transfer source this server cannot reach (a cloud provider it has no account
    with)."""

    code = "PROVIDER_UNAVAILABLE"
    default_message = "This server cannot import from that provider."


class ConversionError(ConvertlyError):
    code = "CONVERSION_FAILED"
    default_message = "The conversion failed."


class ConversionTimeoutError(ConversionError):
    code = "CONVERSION_TIMEOUT"
    default_message = "The conversion took longer than allowed."


class RateLimitError(ConvertlyError):
    """Too many requests: answered 429 with `Retry-After` (whole seconds, at least 1) and
    the `RateLimit-*` headers of the limit that was hit (`headers`, set by
    `convertly.limits`)."""

    code = "RATE_LIMITED"
    default_message = ("Too many requests for this API key; slow down and retry after "
                       "Retry-After seconds.")
    # Also what an error rebuilt from its code (`from_code`) answers with.
    retry_after = 1
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str | None = None, *, retry_after: int = 1,
                 headers: Mapping[str, str] | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = max(1, retry_after)
        self.headers = dict(headers or {})


class AuthThrottledError(RateLimitError):
    """Too many failed authentications from one client address."""

    code = "AUTH_THROTTLED"
    default_message = ("Too many requests with a wrong API key from this address; retry "
                       "after Retry-After seconds with a valid key.")


class ConcurrentJobsLimitError(RateLimitError):
    code = "CONCURRENT_JOBS_LIMIT"
    default_message = ("This account has as many unfinished jobs as it may; retry once one "
                       "has finished.")


class QueuedFilesLimitError(RateLimitError):
    code = "QUEUED_FILES_LIMIT"
    default_message = ("This account has as many files waiting to convert as it may; retry "
                       "once some have finished.")


class FeatureUnavailableError(ConvertlyError):
    """This server cannot do what was asked until its operator sets something up (e.g. a
    segmentation model for remove-background); retrying will not help. The message names
    the setting."""

    code = "FEATURE_UNAVAILABLE"
    default_message = "This server is not set up for this feature."


class ServiceUnavailableError(ConvertlyError):
    """Something the service depends on cannot be used. `transient`: it clears by itself, so
    the answer tells the caller to retry after `retry_after` seconds (which is also how long
    the service waits before trying a job's file again)."""

    code = "SERVICE_UNAVAILABLE"
    default_message = "The service is temporarily unavailable; retry in a few seconds."
    retry_after = 5
    transient = True


class QueueFullError(ServiceUnavailableError):
    code = "QUEUE_FULL"
    default_message = "The queue is full; retry in a few seconds."


class StorageUnavailableError(ServiceUnavailableError):
    code = "STORAGE_UNAVAILABLE"
    default_message = "Storage is unavailable; retry in a few seconds."


class StorageMisconfiguredError(StorageUnavailableError):
    """The storage service answers but refuses this server's credentials: no retry helps
    until an operator fixes the S3 settings, so the answer carries no retry hint. `reason`
    names the cause and the settings to check, for the log and the command line; the public
    message names no setting."""

    code = "STORAGE_MISCONFIGURED"
    default_message = ("Storage refused this server's credentials; the operator must fix its "
                       "S3 settings.")
    transient = False
    reason = ""

    def __init__(self, message: str | None = None, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or self.message


class StateUnavailableError(ServiceUnavailableError):
    code = "STATE_UNAVAILABLE"
    default_message = "Job state storage (Redis) is unavailable; retry in a few seconds."


class StateMisconfiguredError(StateUnavailableError):
    """Redis answers but refuses this server (a wrong or missing password, protected mode):
    no retry helps until an operator fixes the Redis URL or the server's configuration, so
    the answer carries no retry hint. `reason` says what Redis refused, for the log and the
    command line; the public message names no setting."""

    code = "STATE_MISCONFIGURED"
    default_message = "Redis refused this server's connection; the operator must fix its settings."
    transient = False
    reason = ""

    def __init__(self, message: str | None = None, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or self.message


class BrokerUnavailableError(ServiceUnavailableError):
    code = "BROKER_UNAVAILABLE"
    default_message = "The task queue (Redis) is unavailable; retry in a few seconds."


class StorageFullError(ServiceUnavailableError):
    """A disk, a bucket quota or Redis memory is full (ENOSPC, EDQUOT, SQLITE_FULL, an S3
    quota code, Redis OOM). Answered 507 Insufficient Storage, and transient like the other
    outages: it clears once an operator frees space, so the answer carries a retry hint and a
    job's file hitting it is tried again later, never failed. What is full goes to the log
    (an ERROR line), not to the caller."""

    code = "STORAGE_FULL"
    default_message = ("The server is out of storage space; nothing was stored. Please retry "
                       "in a minute.")
    retry_after = 15


class QueueTimeoutError(ServiceUnavailableError):
    code = "QUEUE_TIMEOUT"
    default_message = ("No worker took this conversion in time: they are all busy, or none "
                       "serves its queue. Please retry later, or send it as a job "
                       "(POST /api/jobs).")
    retry_after = 30


def _by_code(cls: type[ConvertlyError]) -> dict[str, type[ConvertlyError]]:
    found = {cls.code: cls}
    for sub in cls.__subclasses__():
        found.update(_by_code(sub))
    return found


# Every error class by its code: a constant, built once from the tree above.
ERROR_CLASSES: Mapping[str, type[ConvertlyError]] = MappingProxyType(_by_code(ConvertlyError))


def from_code(code: str, message: str) -> ConvertlyError:
    """Rebuild an error that crossed a process boundary as (code, message)."""
    cls = ERROR_CLASSES.get(code, ConvertlyError)
    err = ConvertlyError.__new__(cls)
    ConvertlyError.__init__(err, message)
    return err
