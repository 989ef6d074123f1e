"""The storage API's service functions: a tenant's stored files and folders, direct uploads
and zips of files. Endpoints call these; they combine storage, the file index and folders.

Every function takes the caller's tenant and treats another tenant's files and folders as
missing (NotFoundError), so an id never reveals whether it exists elsewhere.

- A *listed* file is a non-temporary record: uploads (POST /api/files, completed direct
  uploads), outputs and sources kept by `saveToStorage=true`, and job outputs.
- A direct upload is a temporary record until it is completed; one never completed is
  deleted (object and record) by `retention.purge_expired` once it expires.
- A zip of files is a temporary record too (kept CONVERTLY_TEMPORARY_TTL seconds).
- Deleting a folder that holds files or folders is refused unless `recursive`, which deletes
  everything below it.
"""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from convertly import fileinfo, filenames, limits, service, webhooks
from convertly.converters.archive import PACKED_KINDS
from convertly.errors import (
    ConflictError,
    FileTooLargeError,
    InvalidFieldError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    counted,
)
from convertly.service import Services
from convertly.signing import UploadGrant
from convertly.sniff import HEAD_BYTES, Kind, sniff_bytes
from convertly.state.records import (
    DEFAULT_COLOR,
    FileQuery,
    Folder,
    StoredFile,
    new_file_id,
    new_folder_id,
)
from convertly.storage.base import safe_name

MAX_ZIP_FILES = 1000
PROBE_BYTES = 256 * 1024  # enough for the header of any image we record dimensions of
CHUNK = 1024 * 1024
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_NO_SIZE_KINDS = frozenset({Kind.SVG})


def file_key(tenant: str, file_id: str, filename: str) -> str:
    return f"tenants/{tenant}/files/{file_id}/{safe_name(filename)}"


def require_file(svc: Services, tenant: str, file_id: str) -> StoredFile:
    record = svc.files.get(file_id, tenant)
    if record is None or record.temporary:
        raise NotFoundError(f"No file {file_id!r} for this API key.")
    return record


def require_folder(svc: Services, tenant: str, folder_id: str) -> Folder:
    folder = svc.folders.get(folder_id, tenant)
    if folder is None:
        raise NotFoundError(f"No folder {folder_id!r} for this API key.")
    return folder


# --- what a file is ---------------------------------------------------------------------

normalise_mime = fileinfo.normalise_mime


def _read_head(fh: BinaryIO, size: int = fileinfo.PROBE_BYTES) -> bytes:
    data = bytearray()
    while len(data) < size and (block := fh.read(size - len(data))):
        data += block
    return bytes(data)


# --- files ------------------------------------------------------------------------------


def add_upload(svc: Services, tenant: str, path: Path, filename: str, claimed: str | None,
               folder_id: str | None) -> StoredFile:
    """Move an uploaded file (spooled at `path`) into storage and record it."""
    with path.open("rb") as fh:
        info = fileinfo.describe(_read_head(fh), filename, claimed, path)
    limits.require_storage(svc, tenant, path.stat().st_size)
    file_id = new_file_id()
    key = file_key(tenant, file_id, filename)
    size = svc.storage.put_file(key, path, move=True)
    return webhooks.file_stored(svc, svc.files.add(StoredFile(
        id=file_id, tenant=tenant, key=key, filename=filename, mime_type=info.mime_type,
        size_bytes=size, width=info.width, height=info.height, duration=info.duration,
        page_count=info.page_count, folder_id=folder_id, created_at=time.time(),
    )))


def list_files(svc: Services, tenant: str, query: FileQuery, *, limit: int,
               offset: int) -> tuple[list[StoredFile], int]:
    if query.folder_id is not None:
        require_folder(svc, tenant, query.folder_id)
    return svc.files.search(tenant, query, limit=limit, offset=offset)


def update_file(svc: Services, tenant: str, file_id: str, changes: dict[str, Any]
                ) -> StoredFile:
    """Rename, move (`folder_id`, None for no folder), tag or describe a file."""
    require_file(svc, tenant, file_id)
    if changes.get("folder_id") is not None:
        require_folder(svc, tenant, changes["folder_id"])
    record = svc.files.update(file_id, tenant, **changes)
    if record is None:
        raise NotFoundError(f"No file {file_id!r} for this API key.")
    return record


def delete_file(svc: Services, tenant: str, file_id: str) -> None:
    """Delete the object, then its record (a failure in between leaves a record whose link
    answers 404, and deleting again finishes the job)."""
    record = require_file(svc, tenant, file_id)
    svc.storage.delete(record.key)
    svc.files.remove(record.id)


# --- folders ----------------------------------------------------------------------------


def list_folders(svc: Services, tenant: str, *, parent_id: str | None, root_only: bool,
                 text: str | None) -> list[Folder]:
    if parent_id is not None:
        require_folder(svc, tenant, parent_id)
    found = [
        f for f in svc.folders.all(tenant)
        if (not root_only or f.parent_id is None)
        and (parent_id is None or f.parent_id == parent_id)
        and (not text or text.casefold() in f.name.casefold())
    ]
    return sorted(found, key=lambda f: (f.name.casefold(), f.created_at, f.id))


def create_folder(svc: Services, tenant: str, *, name: str, color: str | None,
                  parent_id: str | None) -> Folder:
    if parent_id is not None:
        require_folder(svc, tenant, parent_id)
    folder = Folder(id=new_folder_id(), tenant=tenant, name=name, color=color or DEFAULT_COLOR,
                    parent_id=parent_id, created_at=time.time())
    svc.folders.add(folder)
    return folder


def _subtree(folders: Iterable[Folder], root: str) -> list[str]:
    """`root` and the ids of every folder below it."""
    children: dict[str | None, list[str]] = {}
    for folder in folders:
        children.setdefault(folder.parent_id, []).append(folder.id)
    found, pending = [], [root]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def update_folder(svc: Services, tenant: str, folder_id: str, changes: dict[str, Any]
                  ) -> Folder:
    """Rename, recolour or move (`parent_id`, None for the top level) a folder."""
    folder = require_folder(svc, tenant, folder_id)
    parent_id = changes.get("parent_id", folder.parent_id)
    if "parent_id" in changes and parent_id is not None:
        require_folder(svc, tenant, parent_id)
        if parent_id in _subtree(svc.folders.all(tenant), folder_id):
            raise InvalidFieldError("parentId", "would put the folder inside itself; choose "
                                    "a folder outside it, or null for the top level.")
    updated = Folder(id=folder.id, tenant=tenant, name=changes.get("name", folder.name),
                     color=changes.get("color") or folder.color, parent_id=parent_id,
                     created_at=folder.created_at)
    if not svc.folders.update(updated):
        raise NotFoundError(f"No folder {folder_id!r} for this API key.")
    return updated


def delete_folder(svc: Services, tenant: str, folder_id: str, *, recursive: bool
                  ) -> tuple[int, int]:
    """Delete a folder; with `recursive`, every folder and file below it too. Returns
    (files deleted, folders deleted). An empty folder is deleted either way."""
    folder = require_folder(svc, tenant, folder_id)
    folders = svc.folders.all(tenant)
    subtree = _subtree(folders, folder.id)
    if not recursive:
        _, files = svc.files.search(tenant, FileQuery(folder_id=folder.id), limit=1, offset=0)
        subfolders = len(subtree) - 1
        if files or subfolders:
            raise ConflictError(
                f"Folder {folder.name!r} is not empty ({counted(files, 'file')}, "
                f"{counted(subfolders, 'folder')}); "
                "move or delete what it holds first, or send ?recursive=true to delete it "
                "with everything in it.",
                detail={"files": files, "folders": subfolders},
            )
    deleted = 0
    for fid in subtree:
        seen: set[str] = set()
        while True:
            page, _ = svc.files.search(tenant, FileQuery(folder_id=fid), limit=200, offset=0)
            fresh = [r for r in page if r.id not in seen]
            if not fresh:
                break
            for record in fresh:
                seen.add(record.id)
                svc.storage.delete(record.key)
                svc.files.remove(record.id)
                deleted += 1
    svc.folders.remove(subtree, tenant)
    return deleted, len(subtree)


# --- direct uploads ---------------------------------------------------------------------


def start_upload(svc: Services, tenant: str, *, filename: str, content_type: str,
                 size: int, folder_id: str | None) -> tuple[StoredFile, str | None]:
    """Record a pending upload and return it with the storage service's own PUT URL (None
    on local disk: the API then hands out its signed upload route)."""
    limit = svc.settings.max_file_bytes
    if size > limit:
        raise FileTooLargeError(
            f"sizeBytes {size} is larger than the limit of {limit} bytes per file (setting "
            "CONVERTLY_MAX_FILE_BYTES).", filename=filename)
    if folder_id is not None:
        require_folder(svc, tenant, folder_id)
    limits.require_storage(svc, tenant, size)
    file_id = new_file_id()
    now = time.time()
    ttl = svc.settings.upload_url_ttl
    record = StoredFile(
        id=file_id, tenant=tenant, key=file_key(tenant, file_id, filename), filename=filename,
        mime_type=content_type, size_bytes=size, folder_id=folder_id, temporary=True,
        created_at=now, expires_at=now + 2 * ttl,
    )
    url = svc.storage.presigned_put_url(record.key, ttl)
    svc.files.add(record)
    return record, url


def open_upload(svc: Services, grant: UploadGrant) -> StoredFile:
    """The pending upload a signed upload link writes to; raises when it cannot take bytes."""
    record = svc.files.get(grant.file_id, grant.tenant)
    if record is None or record.key != grant.key:
        raise NotFoundError("This upload no longer exists; create a new one with "
                            "POST /api/uploads.")
    if not record.temporary:
        raise ConflictError("This upload is already complete; create a new one with "
                            "POST /api/uploads to store another file.")
    return record


def receive_upload(svc: Services, grant: UploadGrant, body: Path) -> int:
    """Store the bytes PUT to a signed upload link (spooled at `body`)."""
    open_upload(svc, grant)
    return svc.storage.put_file(grant.key, body, move=True)


def _upload_id(tenant: str, path: str) -> str:
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != "tenants" or parts[2] != "files" \
            or not parts[3].startswith("file_"):
        raise InvalidFieldError("path", "is not an upload path returned by POST /api/uploads.")
    if parts[1] != tenant:
        raise NotFoundError("No upload at this path for this API key.")
    return parts[3]


def complete_upload(svc: Services, tenant: str, *, path: str, size: int,
                    changes: dict[str, Any]) -> tuple[StoredFile, bool]:
    """Turn a pending upload into a listed file once its object is in storage with the
    announced size. Returns (file, True) when it was completed before (idempotent).
    `changes` may set `filename`, `folder_id` and the claimed `mime_type`."""
    file_id = _upload_id(tenant, path)
    record = svc.files.get(file_id, tenant)
    if record is None or record.key != path:
        raise NotFoundError("No upload at this path for this API key (it may have expired; "
                            "create a new one with POST /api/uploads).")
    if not record.temporary:
        return record, True
    if size != record.size_bytes:
        raise InvalidFieldError("sizeBytes", f"is {size}, but the upload was created for "
                                f"{record.size_bytes} bytes.")
    try:
        actual = svc.storage.size(path)
    except FileNotFoundError:
        raise ConflictError("Nothing was uploaded to this path yet; PUT the file to "
                            "upload.signedUrl first, then complete it.") from None
    limit = svc.settings.max_file_bytes
    if actual > limit:
        svc.storage.delete(path)
        svc.files.remove(file_id)
        raise FileTooLargeError(
            f"The uploaded object has {actual} bytes, more than the limit of {limit} bytes "
            "per file (setting CONVERTLY_MAX_FILE_BYTES); it was deleted.")
    if actual != record.size_bytes:
        raise InvalidRequestError(
            f"The uploaded object has {actual} bytes, but the upload announced "
            f"{record.size_bytes} (sizeBytes); PUT the whole file again, then complete it.")
    if changes.get("folder_id") is not None:
        require_folder(svc, tenant, changes["folder_id"])
    # The object stays where it is: the caller can free space and complete it again.
    limits.require_storage(svc, tenant, actual)
    filename = changes.get("filename", record.filename)
    with svc.storage.open(path) as fh:
        head = _read_head(fh)
    # Only the first bytes: duration and pages would mean reading the whole object again.
    info = fileinfo.describe(head, filename, changes.get("mime_type", record.mime_type))
    done = svc.files.update(
        file_id, tenant, temporary=False, expires_at=None, filename=filename,
        mime_type=info.mime_type, width=info.width, height=info.height, size_bytes=actual,
        created_at=time.time(),
        folder_id=changes.get("folder_id", record.folder_id),
    )
    if done is None:
        raise NotFoundError("No upload at this path for this API key.")
    webhooks.file_stored(svc, done)
    return done, False


# --- zips -------------------------------------------------------------------------------


def zip_files(svc: Services, tenant: str, file_ids: list[str], filename: str
              ) -> tuple[StoredFile, list[str]]:
    """One zip of the tenant's files, kept as a temporary file; returns it and its entry
    names (the files' names, made unique). Already-compressed files are stored as they are."""
    ids = list(dict.fromkeys(file_ids))
    if len(ids) > MAX_ZIP_FILES:
        raise InvalidFieldError("ids", f"has {len(ids)} files; a zip holds at most "
                                f"{MAX_ZIP_FILES}.")
    records = [require_file(svc, tenant, file_id) for file_id in ids]
    total = sum(r.size_bytes for r in records)
    limit = svc.settings.max_request_bytes
    if total > limit:
        raise PayloadTooLargeError(
            f"These files hold {total} bytes; a zip holds at most {limit} (setting "
            "CONVERTLY_MAX_REQUEST_BYTES). Zip fewer files at a time.")
    names = filenames.bundle_names(r.filename for r in records)
    file_id = new_file_id()
    key = f"tenants/{tenant}/tmp/{file_id}/{safe_name(filename)}"
    with service.scratch_dir(svc, "zip") as workdir:
        path = workdir / "files.zip"
        with zipfile.ZipFile(path, "w", allowZip64=True, compresslevel=6) as zf:
            for record, name in zip(records, names, strict=True):
                _add_entry(svc, zf, record, name)
        size = svc.storage.put_file(key, path, move=True)
    now = time.time()
    zipped = svc.files.add(StoredFile(
        id=file_id, tenant=tenant, key=key, filename=filename, mime_type="application/zip",
        size_bytes=size, temporary=True, created_at=now,
        expires_at=now + svc.settings.temporary_ttl,
    ))
    return zipped, names


def _add_entry(svc: Services, zf: zipfile.ZipFile, record: StoredFile, name: str) -> None:
    try:
        src = svc.storage.open(record.key)
    except FileNotFoundError:
        raise NotFoundError(f"File {record.id!r} ({record.filename}) is missing from storage; "
                            "delete it or leave it out of the zip.") from None
    with src:
        head = _read_head(src, HEAD_BYTES)
        info = zipfile.ZipInfo(name, date_time=time.gmtime(record.created_at)[:6])
        info.compress_type = (zipfile.ZIP_STORED if sniff_bytes(head) in PACKED_KINDS
                              else zipfile.ZIP_DEFLATED)
        with zf.open(info, "w", force_zip64=record.size_bytes >= 2**31) as dst:
            dst.write(head)
            shutil.copyfileobj(src, dst, CHUNK)
