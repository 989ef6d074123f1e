"""POST /api/transfer: a remote file (a URL, or S3 objects read with the request's own
credentials) fetched into the spool, then sent back as it is or kept as stored files, an
archive unpacked into folders on the way when asked.

The downloads are the sourceUrl downloads (`outbound.download`: public addresses only,
CONVERTLY_FETCH_TIMEOUT, CONVERTLY_MAX_FILE_BYTES per file) and run on the API process's
fetch pool. An S3 `endpoint` is held to the same address rule. S3 credentials live in the
request's `S3Source` only: never stored, logged or put in a message.

A single file into storage is asynchronous unless `async: false`: a job of type `transfer`
with one file is stored at once (202 `{jobId, status, mode}`) and the API process that took
the request fetches and stores the file, then records the file's result (its stored file and
download link) and finalises the job as the pipeline does (webhook, waiting requests).
Extracting an archive and importing an S3 prefix answer when done, with the stored files.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from convertly import fetches, filenames, library, limits, outbound, pipeline
from convertly.converters.archive import unpacking
from convertly.errors import (
    ArchiveTooLargeError,
    FileTooLargeError,
    InvalidFieldError,
    TooManyFilesError,
)
from convertly.jobs import SAVED
from convertly.models import FileResult, FileSpec, FileStatus, Job, JobStatus, JobType
from convertly.service import Services
from convertly.settings import Settings
from convertly.sniff import Kind, sniff_bytes
from convertly.state.records import Folder, StoredFile
from convertly.storage.s3 import build_http_client

FETCH_SETTING = "CONVERTLY_FETCH_ALLOW_PRIVATE"
# A queued transfer's file errorCode when its process stopped before it finished, and when
# something unforeseen failed it.
INTERRUPTED_CODE = "TRANSFER_INTERRUPTED"
FAILED_CODE = "TRANSFER_FAILED"
INTERRUPTED = "The server stopped before the transfer finished; send it again."
CHUNK = 1024 * 1024
ARCHIVES = {Kind.ZIP, Kind.TAR, Kind.SEVEN_Z, Kind.RAR, Kind.GZIP, Kind.BZIP2, Kind.XZ}


@dataclass(frozen=True)
class S3Source:
    """`cloudSource` with provider s3: one object (`key`) or every object under `prefix`."""

    bucket: str
    key: str | None = None
    prefix: str | None = None
    recursive: bool = True  # with prefix: the objects below its "subfolders" too
    region: str | None = None
    endpoint: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ExtractOptions:
    """`extractOptions`: where an archive's entries go and the caller's own (lower) limits."""

    preserve_paths: bool = True
    folder_name: str | None = None
    target_folder_id: str | None = None
    max_files: int | None = None
    max_entry_bytes: int | None = None
    max_total_bytes: int | None = None


@dataclass(frozen=True)
class Transfer:
    """A checked POST /api/transfer request: exactly one of `source_url` and `s3`."""

    source_url: str | None = None
    s3: S3Source | None = None
    destination: str = "download"
    filename: str | None = None
    content_type: str | None = None
    wait: bool = False  # `async: false`
    extract: ExtractOptions | None = None
    target_folder_id: str | None = None

    @property
    def single(self) -> bool:
        """One file comes in (a URL or one S3 key), not a prefix listing."""
        return self.s3 is None or self.s3.key is not None


@dataclass(frozen=True)
class Fetched:
    """A fetched file in the spool."""

    filename: str
    path: Path
    content_type: str
    size: int


# --- fetching ---------------------------------------------------------------------------


def fetch(transfer: Transfer, settings: Settings, spool: Path,
          stop: outbound.Stop | None = None) -> list[Fetched]:
    """Every file `transfer` names, downloaded into `spool` (blocking: run it on the fetch
    pool). A `filename` given renames a single file."""
    spool.mkdir(parents=True, exist_ok=True)
    if transfer.s3 is not None:
        got = _fetch_s3(transfer.s3, settings, spool, stop)
    else:
        assert transfer.source_url is not None
        got = [_fetch_url(transfer.source_url, settings, spool, stop)]
    if transfer.filename is not None and len(got) == 1:
        got = [Fetched(transfer.filename, got[0].path, got[0].content_type, got[0].size)]
    if transfer.content_type is not None:
        got = [Fetched(f.filename, f.path, transfer.content_type, f.size) for f in got]
    return got


def _fetch_url(url: str, settings: Settings, spool: Path, stop: outbound.Stop | None
               ) -> Fetched:
    path = spool / "source-0"
    got = fetches.download_source(url, path, settings, stop)
    return Fetched(filenames.neutral(got.filename), path, got.content_type, got.size)


def _s3_client(src: S3Source, settings: Settings) -> Minio:
    """A client for the caller's S3 service, its endpoint held to the sourceUrl rules."""
    if src.endpoint:
        url = src.endpoint if "://" in src.endpoint else f"https://{src.endpoint}"
    else:
        url = f"https://s3.{src.region}.amazonaws.com" if src.region \
            else "https://s3.amazonaws.com"
    try:
        target = outbound.check_url(url, allow_private=settings.fetch_allow_private,
                                    setting=FETCH_SETTING)
        outbound.resolve(target, allow_private=settings.fetch_allow_private,
                         setting=FETCH_SETTING)
    except outbound.RefusedURLError as exc:
        raise InvalidFieldError("cloudSource.endpoint", str(exc)) from exc
    except outbound.DeliveryFailed as exc:
        raise InvalidFieldError("cloudSource.endpoint", exc.message) from exc
    parts = urlsplit(url)
    if parts.path not in ("", "/"):
        raise InvalidFieldError("cloudSource.endpoint", "must be a scheme, host and port "
                                "only, such as https://s3.example.com.")
    timeout = min(settings.fetch_timeout, 60.0)
    return Minio(
        parts.netloc, access_key=src.access_key_id, secret_key=src.secret_access_key,
        session_token=src.session_token, secure=parts.scheme == "https",
        region=src.region or None,
        http_client=build_http_client(connect_timeout=timeout, read_timeout=timeout,
                                      retries=0))


def _s3_failed(exc: Exception) -> InvalidFieldError:
    if isinstance(exc, S3Error):
        return InvalidFieldError("cloudSource", f"S3 answered {exc.code}: {exc.message}")
    return InvalidFieldError("cloudSource", f"the S3 service could not be reached "
                             f"({type(exc).__name__}).")


def _fetch_s3(src: S3Source, settings: Settings, spool: Path, stop: outbound.Stop | None
              ) -> list[Fetched]:
    client = _s3_client(src, settings)
    try:
        if src.key is not None:
            keys = [src.key]
        else:
            keys = []
            for obj in client.list_objects(src.bucket, prefix=src.prefix or "",
                                           recursive=src.recursive):
                if obj.is_dir or obj.object_name is None or obj.object_name.endswith("/"):
                    continue
                keys.append(obj.object_name)
                if len(keys) > settings.max_files:
                    raise TooManyFilesError(
                        f"More than {settings.max_files} objects are under the prefix; import "
                        "a narrower prefix (setting CONVERTLY_MAX_FILES).")
        fetched = []
        for i, key in enumerate(keys):
            fetched.append(_get_object(client, src.bucket, key, spool / f"source-{i}",
                                       settings, stop))
        return fetched
    except (S3Error, Urllib3Error, ValueError) as exc:
        raise _s3_failed(exc) from exc


def _get_object(client: Minio, bucket: str, key: str, path: Path, settings: Settings,
                stop: outbound.Stop | None) -> Fetched:
    deadline = time.monotonic() + settings.fetch_timeout
    response = client.get_object(bucket, key)
    try:
        size = 0
        with path.open("wb") as out:
            for chunk in response.stream(CHUNK):
                size += len(chunk)
                if size > settings.max_file_bytes:
                    raise FileTooLargeError(
                        f"The S3 object {key!r} is larger than the limit of "
                        f"{settings.max_file_bytes} bytes per file (setting "
                        "CONVERTLY_MAX_FILE_BYTES).")
                if stop is not None and stop.is_set:
                    raise outbound.DownloadCancelled("the download was stopped")
                if time.monotonic() > deadline:
                    raise InvalidFieldError("cloudSource", f"reading {key!r} took longer "
                                            f"than {settings.fetch_timeout:g} s.")
                out.write(chunk)
        content_type = response.headers.get("Content-Type") or ""
    finally:
        response.close()
        response.release_conn()
    name = filenames.neutral(PurePosixPath(key).name, "download")
    return Fetched(name, path, content_type, size)


# --- storing ----------------------------------------------------------------------------


def store(svc: Services, tenant: str, fetched: list[Fetched], folder_id: str | None
          ) -> list[StoredFile]:
    """The fetched files as stored files (moved out of the spool)."""
    if folder_id is not None:
        library.require_folder(svc, tenant, folder_id)
    return [library.add_upload(svc, tenant, f.path, f.filename, f.content_type or None,
                               folder_id) for f in fetched]


def _limits(settings: Settings, options: ExtractOptions) -> Settings:
    """The archive guards (settings), lowered by the caller's extractOptions."""
    entries, total = settings.max_archive_entries, settings.max_extracted_bytes
    return replace(settings,
                   max_archive_entries=min(options.max_files or entries, entries),
                   max_extracted_bytes=min(options.max_total_bytes or total, total))


def extract(svc: Services, tenant: str, archive: Fetched, options: ExtractOptions,
            workdir: Path) -> tuple[list[StoredFile], list[Folder], list[str]]:
    """Unpack `archive` under the archive guards and store its files in a new folder
    (`folderName`, else the archive's name, under `targetFolderId`); with preservePaths its
    directories become folders below it. Returns (files, folders made, notes)."""
    with archive.path.open("rb") as fh:
        kind = sniff_bytes(fh.read(4096))
    if kind not in ARCHIVES:
        raise InvalidFieldError("extract", f"{archive.filename} is not an archive this server "
                                "unpacks (zip, tar, tgz, 7z, rar, gz, bz2, xz).")
    assert kind is not None
    if options.target_folder_id is not None:
        library.require_folder(svc, tenant, options.target_folder_id)
    extraction = unpacking.extract(archive.path, kind, archive.filename, workdir / "entries",
                                   _limits(svc.settings, options))
    entries = extraction.files()
    if options.max_entry_bytes:
        for entry in entries:
            size = entry.path.stat().st_size
            if size > options.max_entry_bytes:
                raise ArchiveTooLargeError(
                    f"The entry {entry.name!r} is {size} bytes, over extractOptions."
                    f"maxEntryBytes ({options.max_entry_bytes}).")
    folder_name = options.folder_name or filenames.neutral(
        _stem(archive.filename), "archive")
    top = library.create_folder(svc, tenant, name=folder_name, color=None,
                                parent_id=options.target_folder_id)
    made = [top]
    by_path: dict[str, str] = {"": top.id}

    def folder_for(parent: str) -> str:
        if parent in by_path:
            return by_path[parent]
        above, _, name = parent.rpartition("/")
        folder = library.create_folder(svc, tenant, name=filenames.neutral(name, "folder"),
                                       color=None, parent_id=folder_for(above))
        made.append(folder)
        by_path[parent] = folder.id
        return folder.id

    stored = []
    for entry in entries:
        posix = PurePosixPath(entry.name)
        parent = str(posix.parent) if options.preserve_paths and str(posix.parent) != "." \
            else ""
        stored.append(library.add_upload(svc, tenant, entry.path,
                                         filenames.neutral(posix.name), None,
                                         folder_for(parent)))
    return stored, made, extraction.notes()


def _stem(name: str) -> str:
    lowered = name.lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar", ".7z", ".rar",
                   ".gz", ".bz2", ".xz"):
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# --- the asynchronous single-file transfer ----------------------------------------------


def new_job(svc: Services, tenant: str, job_id: str, filename: str) -> Job:
    """The stored job of a queued transfer: one file, pending, within the tenant's limits on
    jobs in flight and stored bytes (as POST /api/jobs). Its output is a stored file (it
    stays when the job expires)."""
    limits.require_storage(svc, tenant, 0)
    quota = limits.for_tenant(svc, tenant).job_quota
    job = Job(id=job_id, tenant=tenant, job_type=JobType.TRANSFER, status=JobStatus.PENDING,
              specs=(FileSpec(index=0, filename=filename),),
              results=(FileResult(index=0, filename=filename, status=FileStatus.PENDING),),
              created_at=time.time(), extra={SAVED: True, "priority": "normal"})
    stored, _ = svc.jobs.create(job, None, svc.settings.idempotency_ttl, quota)
    return stored


def complete(svc: Services, job_id: str, record: StoredFile, original_size: int) -> None:
    """The queued transfer's file is stored: record it and finalise the job."""
    result = FileResult(
        index=0, filename=record.filename, status=FileStatus.COMPLETED,
        format=PurePosixPath(record.filename).suffix.lstrip(".").lower() or None,
        original_size=original_size, final_size=record.size_bytes,
        mime_type=record.mime_type, output_key=record.key, output_filename=record.filename,
        stored_file_id=record.id, width=record.width, height=record.height)
    if svc.jobs.record_file(result, job_id):
        pipeline.finalize_job(svc, job_id)


def fail(svc: Services, job_id: str, message: str, code: str) -> None:
    """The queued transfer failed: its file and the job say why."""
    with contextlib.suppress(KeyError):
        if pipeline.fail_file(svc, job_id, 0, message, code):
            pipeline.finalize_job(svc, job_id)

