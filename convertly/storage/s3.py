"""S3 storage (MinIO, SeaweedFS, AWS, ...) through the `minio` client.

Uploads and downloads stream in parts, so memory use does not grow with the object size.
Every library failure is translated here: a missing object is FileNotFoundError, anything
that means "the storage cannot serve us right now" is StorageUnavailableError. The HTTP
client has short connect timeouts and few retries, so a server that is down is reported
within seconds, and one that accepts connections but stalls after one read timeout (never
two); `check` (start-up, /healthz) waits seconds for an answer, not the read timeout. The
same instance recovers by itself once the server is back. A server that
answers but refuses our credentials is StorageMisconfiguredError, logged as an error: that
does not pass by itself. A bucket over its quota or a server out of disk (`_FULL_CODES`), and
a download into a full local disk, are StorageFullError.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Self, TypeVar
from urllib.parse import quote, urlsplit

import urllib3
from minio import Minio
from minio.credentials.credentials import Credentials
from minio.credentials.providers import Provider
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError
from minio.helpers import DictType
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from convertly import diskspace, metrics
from convertly.errors import StorageMisconfiguredError, StorageUnavailableError
from convertly.storage.base import check_key

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed import WriteableBuffer
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

# Uploads hold about two parts in memory (the one being sent and the next one being read),
# whatever the object size. Larger parts or parallel parts gained little upload speed
# against SeaweedFS on loopback while multiplying memory per upload.
PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000  # the S3 limit; larger objects get larger parts
PARALLEL_PARTS = 1
CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0  # a data call's longest silence from the server (botocore's default)
PROBE_TIMEOUT = 3.0  # `check`: a healthy server answers a HEAD of the bucket in milliseconds
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the S3 signature v4 limit
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "NoSuchObject"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_CREDENTIALS = ("check CONVERTLY_S3_ACCESS_KEY and CONVERTLY_S3_SECRET_KEY, and that they "
                "may use bucket {bucket!r}.")
_REGION = "check CONVERTLY_S3_REGION (the service expects another region)."
# Refusals that are not about the keys, and what to check for each.
_REFUSED_ADVICE = {
    "AuthorizationHeaderMalformed": _REGION,
    "InvalidRegion": _REGION,
    "RequestTimeTooSkewed": "check this host's clock (keep it in sync, e.g. with NTP): S3 "
                            "refuses requests signed more than 15 minutes off its own time.",
}
# S3 error codes for requests refused for their credentials (wrong, unknown, expired or not
# allowed in), region or clock: the server is up, and only new settings help. (A HEAD request
# has no body to carry a code; minio reports its 403 as AccessDenied.)
_REFUSED_CODES = frozenset({
    "AccessDenied", "AccountProblem", "AllAccessDisabled", "ExpiredToken",
    "InvalidAccessKeyId", "InvalidSecurity", "InvalidToken", "NotSignedUp",
    "SignatureDoesNotMatch", *_REFUSED_ADVICE,
})

# S3 error codes for a write refused for lack of room: MinIO's drives below their free-space
# threshold (XMinioStorageFull) or a bucket over its hard quota (XMinioAdminBucketQuotaExceeded),
# Ceph RGW's user or bucket quota (QuotaExceeded), RustFS's quota (XRustfsQuotaExceeded).
# (EntityTooLarge is a single object over the server's size limit, not a full store.)
_FULL_CODES = frozenset({
    "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded",
    "XRustfsQuotaExceeded",
})


class _Retry(urllib3.Retry):
    """urllib3's retries, less the retry of a read that timed out: a server that said nothing
    for a whole read timeout is stalled, and asking again doubles the wait for nothing."""

    def increment(self, method: str | None = None, url: str | None = None,
                  response: BaseHTTPResponse | None = None, error: Exception | None = None,
                  _pool: ConnectionPool | None = None,
                  _stacktrace: TracebackType | None = None) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def build_http_client(
    *, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT,
    retries: int = 2,
) -> urllib3.PoolManager:
    """A connection pool that gives up quickly when the server is unreachable or stalls."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        # The system trust store (which honours SSL_CERT_FILE for a private CA).
        cert_reqs="CERT_REQUIRED",
        retries=_Retry(
            total=retries,
            connect=retries,
            read=1,  # one retry: a pooled keep-alive connection the server already closed
            backoff_factor=0.2,
            status_forcelist=[500, 502, 503, 504],
        ),
    )


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name as RFC 5987 `filename*`."""
    ascii_name = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename
    ) or "download"
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class _Minio(Minio):
    """The minio client, able to send request bodies unsigned over plain HTTP.

    Over HTTP, minio signs the SHA-256 of every body, so each byte is hashed here and again
    by a server that checks it (MinIO does). With `unsigned_payload`, bodies go as
    `UNSIGNED-PAYLOAD`, as they always do over HTTPS; the request itself stays signed.
    This hooks `_build_headers`, minio's one place that decides (pinned: minio < 8)."""

    unsigned_payload = False

    def _build_headers(
        self, host: str, headers: DictType | None = None, body: bytes | None = None,
        creds: Credentials | None = None,
    ) -> tuple[DictType, datetime]:
        if not (self.unsigned_payload and body and creds) or self._base_url.is_https:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, None, creds)
        built["Content-Length"] = str(len(body))
        built["x-amz-content-sha256"] = UNSIGNED_PAYLOAD
        return built, date


class S3Storage:
    """Objects in one bucket of an S3-compatible service; the bucket is created when missing.

    A server that is down when the storage is built does not stop the process: creating the
    bucket is retried on the next call until it succeeds. Nor does one that refuses the
    credentials (it is logged); a process that must not start then calls `check`.
    """

    remote = True

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        http_client: urllib3.PoolManager | None = None,
        public_url: str | None = None,
        sign_payload: bool = True,
        probe: bool = True,
        credentials: Provider | None = None,
    ) -> None:
        """With `probe` (the default) the bucket is looked for, and created when missing,
        right away; an unreachable service is logged and tried again on first use. Without
        it nothing is sent until `check()` or the first operation. Without a key pair,
        `credentials` provides them (see convertly.storage.credentials)."""
        self.endpoint = endpoint
        self.bucket = bucket
        http_client = http_client or build_http_client()
        if not (access_key and secret_key) and credentials is None:
            raise ValueError("S3Storage needs a key pair or a credentials provider")
        static = bool(access_key and secret_key)
        access, secret = (access_key, secret_key) if static else (None, None)
        provider = None if static else credentials
        self._client = _Minio(
            endpoint,
            access_key=access,
            secret_key=secret,
            credentials=provider,
            secure=secure,
            region=region or None,
            http_client=http_client,
        )
        self._client.unsigned_payload = not sign_payload
        # `check` asks through a client that waits seconds, not the data calls' timeout. One
        # retry: /healthz probes seldom, so its pooled connection may have been closed by
        # the server meanwhile (a silent server is still asked once: see _Retry).
        self._probe = Minio(
            endpoint, access_key=access, secret_key=secret, credentials=provider, secure=secure,
            region=region or None, http_client=build_http_client(
                connect_timeout=PROBE_TIMEOUT, read_timeout=PROBE_TIMEOUT, retries=1),
        )
        # Upload URLs are signed for the host the client will send them to. With a public
        # URL, they are signed offline (a region must be known; S3 services default to
        # us-east-1), since that address may not be reachable from here.
        self._upload_signer: Minio = self._client
        if public_url:
            parts = urlsplit(public_url)
            self._upload_signer = Minio(
                parts.netloc, access_key=access, secret_key=secret, credentials=provider,
                secure=parts.scheme == "https", region=region or "us-east-1",
                http_client=http_client,
            )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()
        if probe:
            with contextlib.suppress(StorageUnavailableError):
                self.ensure_bucket()

    def __repr__(self) -> str:
        return f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, what: str, func: Callable[[], T]) -> T:
        """Run one client call, translating library errors (see the module docstring)."""
        try:
            return func()
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise FileNotFoundError(f"{what}: no such object") from exc
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False
            if exc.code in _REFUSED_CODES:
                raise self._refused(what, exc.code) from exc
            if exc.code in _FULL_CODES:
                metrics.STORAGE_ERRORS.labels("s3", "full").inc()
                raise diskspace.full(f"S3 bucket {self.bucket!r} at {self.endpoint} "
                                     f"({exc.code} during {what})") from exc
            raise self._unavailable(what, exc) from exc
        except (ServerError, InvalidResponseError, Urllib3Error, OSError) as exc:
            if diskspace.is_full(exc):  # a download into this host's full disk
                raise diskspace.full(f"the local disk receiving {what}", exc) from exc
            raise self._unavailable(what, exc) from exc

    def _unavailable(self, what: str, exc: Exception) -> StorageUnavailableError:
        code = exc.code if isinstance(exc, S3Error) else type(exc).__name__
        log.warning("S3 storage %s unavailable during %s: %s", self.endpoint, what, code)
        metrics.STORAGE_ERRORS.labels("s3", "unavailable").inc()
        return StorageUnavailableError()

    def _refused(self, what: str, code: str) -> StorageMisconfiguredError:
        if code in _REFUSED_ADVICE:
            refused = f"S3 storage {self.endpoint} refuses this server's requests"
            advice = _REFUSED_ADVICE[code]
        else:
            refused = f"S3 storage {self.endpoint} refuses this server's credentials"
            advice = _CREDENTIALS.format(bucket=self.bucket)
        log.error("%s (%s during %s): %s", refused, code, what, advice)
        return StorageMisconfiguredError(reason=f"{refused} ({code}): {advice}")

    def ensure_bucket(self, client: Minio | None = None) -> None:
        """Create the bucket unless it exists (asking through `client`, by default the data
        calls' one); remembered once it succeeded."""
        if self._bucket_ready:
            return
        ask = client or self._client
        with self._bucket_lock:
            if self._bucket_ready:
                return
            if not self._call("bucket_exists", lambda: ask.bucket_exists(self.bucket)):
                try:
                    self._call("make_bucket", lambda: ask.make_bucket(self.bucket))
                except StorageUnavailableError as exc:
                    # Another process may have created it in between.
                    cause = exc.__cause__
                    if not (isinstance(cause, S3Error) and cause.code in _BUCKET_EXISTS_CODES):
                        raise
                log.info("created S3 bucket %s on %s", self.bucket, self.endpoint)
            self._bucket_ready = True

    def _upload(self, key: str, stream: BinaryIO, length: int) -> int:
        """One PUT up to PART_SIZE, a multipart upload above (S3 shows it only once complete,
        so a reader never sees part of it)."""
        self.ensure_bucket()
        mib = 1024 * 1024
        per_part = -(-length // MAX_PARTS)  # ceiling division
        part_size = max(PART_SIZE, -(-per_part // mib) * mib)
        self._call(
            f"put {key}",
            lambda: self._client.put_object(
                self.bucket, key, stream, length,
                part_size=part_size, num_parallel_uploads=PARALLEL_PARTS,
            ),
        )
        return length

    # -- the Storage protocol -------------------------------------------------------------

    def put_file(self, key: str, src: Path, *, move: bool = False) -> int:
        check_key(key)
        with src.open("rb") as fh:
            size = self._upload(key, fh, os.fstat(fh.fileno()).st_size)
        if move:
            src.unlink(missing_ok=True)
        return size

    def put_bytes(self, key: str, data: bytes) -> int:
        check_key(key)
        return self._upload(key, io.BytesIO(data), len(data))

    def get_file(self, key: str, dst: Path) -> None:
        check_key(key)
        self.ensure_bucket()
        fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, self.open(key) as src:
                while chunk := src.read(CHUNK):
                    out.write(chunk)
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        check_key(key)
        self.ensure_bucket()
        response = self._call(
            f"get {key}", lambda: self._client.get_object(self.bucket, key)
        )
        return io.BufferedReader(_ResponseReader(response, self, key), buffer_size=CHUNK)

    def open_range(self, key: str, start: int, length: int) -> BinaryIO:
        check_key(key)
        self.ensure_bucket()
        response = self._call(
            f"get {key} bytes {start}+{length}",
            lambda: self._client.get_object(self.bucket, key, offset=start, length=length),
        )
        return io.BufferedReader(_ResponseReader(response, self, key), buffer_size=CHUNK)

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def size(self, key: str) -> int:
        check_key(key)
        self.ensure_bucket()
        stat = self._call(f"stat {key}", lambda: self._client.stat_object(self.bucket, key))
        if stat.is_dir or stat.size is None:
            raise FileNotFoundError(f"stat {key}: no such object")
        return stat.size

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        check_key(key)
        self.ensure_bucket()
        # S3 answers a delete of a missing key with success.
        self._call(f"delete {key}", lambda: self._client.remove_object(self.bucket, key))

    def delete_prefix(self, prefix: str) -> int:
        count = 0

        def listed() -> Iterator[DeleteObject]:
            nonlocal count
            for key in self.list_prefix(prefix):
                count += 1
                yield DeleteObject(key)

        # remove_objects is lazy: it deletes in batches of 1000 as its error iterator is
        # consumed, pulling keys from the listing as it goes.
        errors = self._call(
            f"delete {prefix}",
            lambda: [
                err for err in self._client.remove_objects(self.bucket, listed())
                if err.code not in _MISSING_CODES
            ],
        )
        if errors:
            log.warning("S3 storage %s: %d objects under %s not deleted (%s)",
                        self.endpoint, len(errors), prefix, errors[0].code)
            if errors[0].code in _REFUSED_CODES:
                raise self._refused(f"delete {prefix}", errors[0].code)
            raise StorageUnavailableError()
        return count

    def list_prefix(self, prefix: str) -> Iterator[str]:
        base = check_key(prefix.rstrip("/")) + "/"
        self.ensure_bucket()
        objects = self._call(
            f"list {base}",
            lambda: self._client.list_objects(self.bucket, prefix=base, recursive=True),
        )
        while True:
            obj = self._call(f"list {base}", lambda: next(objects, None))
            if obj is None:
                return
            if not obj.is_dir and obj.object_name:
                yield obj.object_name

    def check(self) -> None:
        self._bucket_ready = False
        self.ensure_bucket(self._probe)

    def presigned_url(self, key: str, filename: str, mime_type: str, expires_seconds: int) -> str:
        """A time-limited GET URL that downloads the object as an attachment named
        `filename` with Content-Type `mime_type`."""
        check_key(key)
        self.ensure_bucket()
        expires = timedelta(seconds=min(max(1, expires_seconds), MAX_PRESIGN_SECONDS))
        return self._call(
            f"presign {key}",
            lambda: self._client.get_presigned_url(
                "GET", self.bucket, key, expires=expires,
                response_headers={
                    "response-content-disposition": content_disposition(filename),
                    "response-content-type": mime_type,
                },
            ),
        )

    def presigned_put_url(self, key: str, expires_seconds: int) -> str:
        """A time-limited PUT URL for the object at `key` (signed for the public URL when
        one is configured)."""
        check_key(key)
        self.ensure_bucket()
        expires = timedelta(seconds=min(max(1, expires_seconds), MAX_PRESIGN_SECONDS))
        return self._call(
            f"presign put {key}",
            lambda: self._upload_signer.get_presigned_url("PUT", self.bucket, key,
                                                          expires=expires),
        )


class _ResponseReader(io.RawIOBase):
    """A streaming GET response as a raw binary stream; closing releases the connection."""

    def __init__(
        self, response: urllib3.BaseHTTPResponse, storage: S3Storage, key: str
    ) -> None:
        self._response = response
        self._storage = storage
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._storage._call(
            f"read {self._key}", lambda: self._response.read(len(view))
        )
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()

