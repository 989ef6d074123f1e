"""POST /api/transfer (Convertly's `media.transfer`): the JSON body checked field by field,
then convertly.transfers does the work."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from convertly import filenames, library, outbound, transfers
from convertly.api import forms
from convertly.api.library import json_object, render_file, render_folder
from convertly.api.requests import authenticate, services
from convertly.errors import ConvertlyError, InvalidFieldError, ProviderUnavailableError
from convertly.fetches import FetchPool
from convertly.service import Services
from convertly.transfers import ExtractOptions, S3Source, Transfer

FIELDS = {"sourceUrl", "destination", "filename", "contentType", "async", "extract",
          "extractOptions", "cloudSource"}
CLOUD_FIELDS = {"provider", "fileId", "folderId", "bucket", "key", "prefix", "region",
                "endpoint", "accessKeyId", "secretAccessKey", "sessionToken", "accessToken",
                "path", "recursive", "targetFolderId"}
EXTRACT_FIELDS = {"preservePaths", "folderName", "targetFolderId", "maxFiles",
                  "maxEntryBytes", "maxTotalBytes"}
DESTINATIONS = ("download", "convertly-storage")
UNREACHABLE = ("google-drive", "dropbox")
MAX_TEXT = 2048


def _text(value: Any, name: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidFieldError(name, "is required.")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        raise InvalidFieldError(name, f"must be a non-empty string of at most {MAX_TEXT} "
                                "characters.")
    return value.strip()


def _bool(value: Any, name: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidFieldError(name, "must be true or false.")
    return value


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidFieldError(name, "must be a whole number, at least 1.")
    return value


def _object(value: Any, name: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidFieldError(name, "must be a JSON object.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidFieldError(f"{name}.{unknown[0]}", "is not a field of this object; send "
                                f"{', '.join(sorted(allowed))}.")
    return value


def _folder(value: Any, name: str) -> str | None:
    if value is None or value in ("", "null"):
        return None
    return _text(value, name)


def _s3(cloud: dict[str, Any]) -> S3Source:
    for name in ("fileId", "folderId", "accessToken", "path"):
        if cloud.get(name) is not None:
            raise InvalidFieldError(f"cloudSource.{name}", "is not an S3 field; send bucket "
                                    "with key or prefix.")
    key = _text(cloud.get("key"), "cloudSource.key")
    prefix = cloud.get("prefix")
    if prefix is not None and (not isinstance(prefix, str) or len(prefix) > MAX_TEXT):
        raise InvalidFieldError("cloudSource.prefix", "must be a string.")
    if key is not None and prefix is not None:
        raise InvalidFieldError("cloudSource.key", "send key (one object) or prefix (every "
                                "object under it), not both.")
    if key is None and prefix is None:
        raise InvalidFieldError("cloudSource.key", "is required: send key (one object) or "
                                "prefix (every object under it).")
    access = _text(cloud.get("accessKeyId"), "cloudSource.accessKeyId")
    secret = _text(cloud.get("secretAccessKey"), "cloudSource.secretAccessKey")
    if (access is None) != (secret is None):
        raise InvalidFieldError("cloudSource.secretAccessKey", "send accessKeyId and "
                                "secretAccessKey together (or neither, for a public bucket).")
    return S3Source(
        bucket=_text(cloud.get("bucket"), "cloudSource.bucket", required=True) or "",
        key=key, prefix=prefix,
        recursive=_bool(cloud.get("recursive"), "cloudSource.recursive", True),
        region=_text(cloud.get("region"), "cloudSource.region"),
        endpoint=_text(cloud.get("endpoint"), "cloudSource.endpoint"),
        access_key_id=access, secret_access_key=secret,
        session_token=_text(cloud.get("sessionToken"), "cloudSource.sessionToken"))


def parse(body: dict[str, Any]) -> Transfer:
    """The request's fields, every one checked (400 naming it; 422 for a provider this
    server cannot reach)."""
    destination = body.get("destination") or "download"
    if destination not in DESTINATIONS:
        raise InvalidFieldError("destination", f"must be {' or '.join(DESTINATIONS)}.")
    source_url = _text(body.get("sourceUrl"), "sourceUrl")
    s3 = None
    target_folder = None
    if body.get("cloudSource") is not None:
        if source_url is not None:
            raise InvalidFieldError("sourceUrl", "send sourceUrl or cloudSource, not both.")
        cloud = _object(body["cloudSource"], "cloudSource", CLOUD_FIELDS)
        provider = cloud.get("provider")
        if provider in UNREACHABLE:
            raise ProviderUnavailableError(
                f"This server cannot import from {provider}: it has no {provider} connection. "
                "Import from S3 (cloudSource.provider \"s3\") or a sourceUrl instead.")
        if provider != "s3":
            raise InvalidFieldError("cloudSource.provider", "must be s3 (google-drive and "
                                    "dropbox are not available on this server).")
        s3 = _s3(cloud)
        target_folder = _folder(cloud.get("targetFolderId"), "cloudSource.targetFolderId")
    elif source_url is None:
        raise InvalidFieldError("sourceUrl", "is required: send sourceUrl (an http or https "
                                "URL) or cloudSource.")
    filename = body.get("filename")
    if filename is not None:
        filename = filenames.check(filename, "filename")
    extract = None
    if _bool(body.get("extract"), "extract", False):
        opts = _object(body.get("extractOptions") or {}, "extractOptions", EXTRACT_FIELDS)
        folder_name = opts.get("folderName")
        extract = ExtractOptions(
            preserve_paths=_bool(opts.get("preservePaths"), "extractOptions.preservePaths",
                                 True),
            folder_name=None if folder_name is None
            else filenames.check(folder_name, "extractOptions.folderName"),
            target_folder_id=_folder(opts.get("targetFolderId"),
                                     "extractOptions.targetFolderId") or target_folder,
            max_files=_count(opts.get("maxFiles"), "extractOptions.maxFiles"),
            max_entry_bytes=_count(opts.get("maxEntryBytes"), "extractOptions.maxEntryBytes"),
            max_total_bytes=_count(opts.get("maxTotalBytes"), "extractOptions.maxTotalBytes"))
    elif body.get("extractOptions") is not None:
        raise InvalidFieldError("extractOptions", "applies only with extract: true.")
    transfer = Transfer(
        source_url=source_url, s3=s3, destination=destination, filename=filename,
        content_type=_text(body.get("contentType"), "contentType"),
        wait=not _bool(body.get("async"), "async", True), extract=extract,
        target_folder_id=target_folder)
    if filename is not None and not transfer.single:
        raise InvalidFieldError("filename", "names one file: leave it out with "
                                "cloudSource.prefix.")
    if destination == "download":
        if target_folder is not None:
            raise InvalidFieldError("cloudSource.targetFolderId", "is a folder in storage: "
                                    "send destination \"convertly-storage\" with it.")
        if extract is not None:
            raise InvalidFieldError("extract", "stores the archive's entries as files: send "
                                    "destination \"convertly-storage\" with it.")
        if not transfer.single:
            raise InvalidFieldError("cloudSource.prefix", "imports many files: send "
                                    "destination \"convertly-storage\" with it.")
    elif extract is not None and not transfer.single:
        raise InvalidFieldError("extract", "unpacks one archive: name it with "
                                "cloudSource.key, not a prefix.")
    return transfer


# --- the endpoint -----------------------------------------------------------------------


async def _never() -> None:
    """A queued transfer belongs to no connection: nothing ends it early."""
    await asyncio.Event().wait()


async def _fetch(request: Request, tenant: str, transfer: Transfer, spool: Path,
                 gone: Any) -> list[transfers.Fetched]:
    pool: FetchPool = request.app.state.fetches
    settings = services(request).settings
    result: list[transfers.Fetched] = await pool.run(
        tenant, lambda stop: transfers.fetch(transfer, settings, spool, stop), gone)
    return result


async def transfer_file(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    transfer = parse(await json_object(request, FIELDS))
    spool = svc.scratch_root / f"transfer-{uuid.uuid4().hex}"
    if transfer.destination == "convertly-storage" and transfer.single \
            and transfer.extract is None and not transfer.wait:
        return await _queue(request, svc, key.tenant, transfer, spool)
    handed = False
    try:
        fetched = await _fetch(request, key.tenant, transfer, spool,
                               lambda: forms._client_gone(request))
        if transfer.destination == "download":
            got = fetched[0]
            handed = True  # the answer removes the spool once sent
            return FileResponse(
                got.path, media_type=got.content_type or "application/octet-stream",
                filename=got.filename,
                background=BackgroundTask(shutil.rmtree, spool, ignore_errors=True))
        if transfer.extract is not None:
            files, folders, notes = await asyncio.to_thread(
                transfers.extract, svc, key.tenant, fetched[0], transfer.extract, spool)
            rendered = [render_file(request, r) for r in files]
            return JSONResponse({"files": rendered, "folders": [render_folder(f)
                                                                for f in folders],
                                 "folder": render_folder(folders[0]), "notes": notes,
                                 "mode": "sync"})
        records = await asyncio.to_thread(transfers.store, svc, key.tenant, fetched,
                                          transfer.target_folder_id)
        rendered = [render_file(request, r) for r in records]
        return JSONResponse({"file": rendered[0] if rendered else None, "files": rendered,
                             "mode": "sync"})
    finally:
        if not handed:
            await asyncio.to_thread(shutil.rmtree, spool, True)


async def _queue(request: Request, svc: Services, tenant: str, transfer: Transfer,
                 spool: Path) -> Response:
    """202 at once; this process fetches and stores the file, then completes the job."""
    if transfer.target_folder_id is not None:
        await asyncio.to_thread(library.require_folder, svc, tenant, transfer.target_folder_id)
    name = transfer.filename or _name_of(transfer)
    job_id = str(uuid.uuid4())
    job = await asyncio.to_thread(transfers.new_job, svc, tenant, job_id, name)

    async def run() -> None:
        try:
            fetched = await _fetch(request, tenant, transfer, spool, _never)
            records = await asyncio.to_thread(transfers.store, svc, tenant, fetched,
                                              transfer.target_folder_id)
            await asyncio.to_thread(transfers.complete, svc, job_id, records[0],
                                    fetched[0].size)
        except ConvertlyError as exc:
            await asyncio.to_thread(transfers.fail, svc, job_id, exc.message, exc.code)
        except outbound.DownloadCancelled:
            await asyncio.to_thread(transfers.fail, svc, job_id, transfers.INTERRUPTED,
                                    transfers.INTERRUPTED_CODE)
        except Exception as exc:
            await asyncio.to_thread(transfers.fail, svc, job_id,
                                    f"The transfer failed ({type(exc).__name__}).",
                                    transfers.FAILED_CODE)
        finally:
            await asyncio.to_thread(shutil.rmtree, spool, True)

    running: set[asyncio.Task[None]] = request.app.state.transfers
    task = asyncio.get_running_loop().create_task(run())
    running.add(task)
    task.add_done_callback(running.discard)
    return JSONResponse({"jobId": job.id, "status": job.status.value, "mode": "async"},
                        status_code=202)


def _name_of(transfer: Transfer) -> str:
    if transfer.s3 is not None and transfer.s3.key is not None:
        return filenames.neutral(transfer.s3.key.rsplit("/", 1)[-1], "download")
    path = urlsplit(transfer.source_url or "").path
    return filenames.neutral(unquote(path.rsplit("/", 1)[-1]), "download")

