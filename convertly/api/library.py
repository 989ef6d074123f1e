"""The storage API (files, folders, direct uploads, zips), shaped like Convertly's SDK storage
client expects: records in snake_case (`mime_type`, `size_bytes`, `folder_id`,
`created_at`, `download_url`), request bodies and paging in camelCase. Thin: parse the
request, call `convertly.library`, render the answer."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from convertly import diskspace, filenames, library, service, taxonomy, views
from convertly.api import forms
from convertly.api.requests import authenticate, base_url, download_url, query_int, services
from convertly.errors import (
    FileTooLargeError,
    InvalidFieldError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from convertly.fields import parse_bool
from convertly.signing import UploadGrant, sign_upload, verify_upload
from convertly.state.records import FACETS, ORIENTATIONS, FileQuery, Folder, StoredFile

MAX_JSON_BYTES = 256 * 1024
MAX_NAME = filenames.MAX_NAME
MAX_ID = 100
MAX_QUERY = 200
MAX_TAGS = 50
MAX_TAG = 64
MAX_DESCRIPTION = 2000
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAX_FACET_VALUES = 50  # per facet: the most common values
ZIP_NAME = "convertly-files.zip"
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_MIME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*(?:/[A-Za-z0-9.+_-]*)?$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# --- rendering --------------------------------------------------------------------------


def render_file(request: Request, record: StoredFile) -> dict[str, Any]:
    return views.file_view(services(request), base_url(request), record)


def render_folder(folder: Folder) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.name, "color": folder.color,
            "parent_id": folder.parent_id, "created_at": _iso(folder.created_at)}


def _page(limit: int, offset: int, shown: int, total: int) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "total": total,
            "hasMore": offset + shown < total}


# --- parsing ----------------------------------------------------------------------------


def _query_text(request: Request, name: str, max_len: int = MAX_QUERY) -> str | None:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return None
    if len(raw) > max_len:
        raise InvalidFieldError(name, f"is longer than {max_len} characters.")
    return raw.strip()


def _query_folder(request: Request, name: str) -> tuple[str | None, bool]:
    """(folder id, root only) from a folderId/parentId parameter: absent means any folder,
    `null` means no folder (the top level)."""
    raw = _query_text(request, name, MAX_ID)
    if raw is None:
        return None, False
    if raw == "null":
        return None, True
    return raw, False


def _mime_prefix(request: Request) -> str | None:
    raw = _query_text(request, "mimePrefix", MAX_NAME)
    if raw is not None and not _MIME_PREFIX.match(raw):
        raise InvalidFieldError("mimePrefix", "must be a MIME type or its start, such as "
                                "image/ or image/png.")
    return raw


def _query(request: Request) -> FileQuery:
    folder_id, root_only = _query_folder(request, "folderId")
    return FileQuery(folder_id=folder_id, root_only=root_only, text=_query_text(request, "q"),
                     mime_prefix=_mime_prefix(request))


def _limit_offset(request: Request) -> tuple[int, int]:
    return (query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            query_int(request, "offset", 0, 0, 10**9))


async def json_object(request: Request, allowed: set[str] | None = None, *,
                      max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The body, at most `max_bytes`, as a JSON object with no keys outside `allowed` (any
    keys when None: the caller checks them)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise PayloadTooLargeError(f"The JSON body is larger than {max_bytes} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLargeError(f"The JSON body is larger than {max_bytes} bytes.")
    try:
        body = json.loads(raw) if raw.strip() else None
        # Lone surrogates ("\ud800") parse, but are no text: nothing could store them.
        json.dumps(body, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeError is a ValueError
        body = None
    if not isinstance(body, dict):
        raise InvalidRequestError("Send a JSON object as the body, in UTF-8 "
                                  "(Content-Type: application/json).")
    if allowed is not None:
        check_fields(body, allowed)
    return body


def check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """A 400 naming the first key of `body` outside `allowed`, and the ones allowed."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidFieldError(unknown[0], f"is not a field of this request; send "
                                f"{', '.join(sorted(allowed))}.")


def _name(value: Any, field: str) -> str:
    """A file or folder name, by the one rule every route applies (`filenames.check`)."""
    return filenames.check(value, field)


def _folder_ref(value: Any, field: str) -> str | None:
    """A folder id in a JSON body; null (or "null", or "") means no folder."""
    if value is None or value in ("", "null"):
        return None
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise InvalidFieldError(field, "must be a folder id or null.")
    return value


def _color(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _COLOR.match(value):
        raise InvalidFieldError("color", "must be a hex colour such as #64748b.")
    return value.lower()


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_TAGS or not all(
            isinstance(t, str) and 0 < len(t.strip()) <= MAX_TAG for t in value):
        raise InvalidFieldError("tags", f"must be a list of at most {MAX_TAGS} non-empty "
                                f"strings of up to {MAX_TAG} characters.")
    return tuple(dict.fromkeys(t.strip() for t in value))


def _size(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidFieldError(field, "must be a whole number of bytes, at least 1.")
    return value


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    return False if raw is None or raw == "" else parse_bool(raw, name, None)


# --- files ------------------------------------------------------------------------------


async def list_files(request: Request) -> Response:
    key = authenticate(request)
    limit, offset = _limit_offset(request)
    query = _query(request)
    records, total = await asyncio.to_thread(library.list_files, services(request),
                                             key.tenant, query, limit=limit, offset=offset)
    return JSONResponse({"files": [render_file(request, r) for r in records],
                         "pagination": _page(limit, offset, len(records), total)})


async def search_files(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    limit, offset = _limit_offset(request)
    base = _query(request)
    raw_tags = _query_text(request, "tags", MAX_TAGS * (MAX_TAG + 1))
    tags = tuple(dict.fromkeys(t.strip() for t in raw_tags.split(",") if t.strip())) \
        if raw_tags else ()
    tag_mode = _query_text(request, "tagMode") or "any"
    if tag_mode not in ("any", "all"):
        raise InvalidFieldError("tagMode", "must be any or all.")
    orientation = _query_text(request, "orientation")
    if orientation is not None and orientation not in ORIENTATIONS:
        raise InvalidFieldError("orientation", f"must be one of {', '.join(ORIENTATIONS)}.")
    raw_locale = _query_text(request, "locale", taxonomy.MAX_LOCALE)
    locale = taxonomy.check_locale(raw_locale) if raw_locale else taxonomy.DEFAULT_LOCALE
    raw_facets = _query_text(request, "facets", 100)
    facets = tuple(dict.fromkeys(f.strip() for f in raw_facets.split(",") if f.strip())) \
        if raw_facets else ()
    for name in facets:
        if name not in FACETS:
            raise InvalidFieldError("facets", f"{name!r} is not a facet; use any of "
                                    f"{', '.join(FACETS)}, comma-separated.")
    terms = await asyncio.to_thread(taxonomy.list_terms, svc, key.tenant, locale) \
        if tags or "tags" in facets else []
    query = FileQuery(folder_id=base.folder_id, root_only=base.root_only, text=base.text,
                      mime_prefix=base.mime_prefix, tags=taxonomy.tag_forms(terms, tags),
                      all_tags=tag_mode == "all", orientation=orientation)
    records, total = await asyncio.to_thread(library.list_files, svc, key.tenant, query,
                                             limit=limit, offset=offset)
    answer: dict[str, Any] = {
        "files": [render_file(request, r) for r in records],
        "pagination": _page(limit, offset, len(records), total),
    }
    if facets:
        counts = await asyncio.to_thread(svc.files.facets, key.tenant, query, facets,
                                         MAX_FACET_VALUES)
        labels = taxonomy.tag_labels(terms)
        answer["facets"] = {name: [_bucket(value, count, labels if name == "tags" else {})
                                   for value, count in counts[name]] for name in facets}
    answer["applied"] = {"q": query.text or "", "tags": list(tags), "tagMode": tag_mode,
                         "orientation": orientation,
                         "folderId": "null" if query.root_only else query.folder_id,
                         "mimePrefix": query.mime_prefix, "locale": locale}
    return JSONResponse(answer)


def _bucket(value: str, count: int, labels: dict[str, str]) -> dict[str, Any]:
    bucket: dict[str, Any] = {"value": value, "count": count}
    if (label := labels.get(value.casefold())) is not None:
        bucket["label"] = label
    return bucket


async def upload_files(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    form = await forms.parse_multipart(request, svc.settings, svc.scratch_root)
    try:
        if not form.files:
            raise InvalidFieldError("file", "no file uploaded; send the file in 'file' (or "
                                    "several in 'files').")
        for upload in form.files:
            if upload.size == 0:
                raise InvalidFieldError(upload.field, f"{upload.filename} is empty.")
        folder_id = _folder_ref(form.get("folderId"), "folderId")
        if folder_id is not None:
            await asyncio.to_thread(library.require_folder, svc, key.tenant, folder_id)
        records = []
        for upload in form.files:
            name = _name(upload.filename, upload.field)
            records.append(await asyncio.to_thread(
                library.add_upload, svc, key.tenant, upload.path, name,
                upload.content_type, folder_id))
    finally:
        await asyncio.to_thread(form.cleanup)
    rendered = [render_file(request, r) for r in records]
    return JSONResponse({"file": rendered[0], "files": rendered}, status_code=201)


async def get_file(request: Request) -> Response:
    key = authenticate(request)
    record = await asyncio.to_thread(library.require_file, services(request), key.tenant,
                                     request.path_params["file_id"])
    return JSONResponse({"file": render_file(request, record)})


async def update_file(request: Request) -> Response:
    key = authenticate(request)
    file_id = request.path_params["file_id"]
    body = await json_object(request, {"filename", "folderId", "description", "tags",
                                        "cdnSlug"})
    changes: dict[str, Any] = {}
    if body.get("filename") is not None:
        changes["filename"] = _name(body["filename"], "filename")
    if "folderId" in body:
        changes["folder_id"] = _folder_ref(body["folderId"], "folderId")
    if "description" in body:
        description = body["description"]
        if description is not None and (not isinstance(description, str)
                                        or len(description) > MAX_DESCRIPTION):
            raise InvalidFieldError("description", f"must be a string of up to "
                                    f"{MAX_DESCRIPTION} characters, or null.")
        changes["description"] = description or None
    if body.get("tags") is not None:
        changes["tags"] = _tags(body["tags"])
    if body.get("cdnSlug") is not None:
        raise InvalidFieldError("cdnSlug", "is not supported by this server (it has no "
                                "CDN); leave it out.")
    record = await asyncio.to_thread(library.update_file, services(request), key.tenant,
                                     file_id, changes)
    return JSONResponse({"file": render_file(request, record)})


async def delete_file(request: Request) -> Response:
    key = authenticate(request)
    await asyncio.to_thread(library.delete_file, services(request), key.tenant,
                            request.path_params["file_id"])
    return JSONResponse({"success": True, "message": "File deleted."})


async def zip_files(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    body = await json_object(request, {"ids", "filename"})
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(
            isinstance(i, str) and 0 < len(i) <= MAX_ID for i in ids):
        raise InvalidFieldError("ids", "must be a non-empty list of file ids.")
    filename = ZIP_NAME
    if body.get("filename") is not None:
        filename = _name(body["filename"], "filename")
        if not filename.lower().endswith(".zip"):
            filename += ".zip"
    record, entries = await asyncio.to_thread(library.zip_files, svc, key.tenant, ids,
                                              filename)
    url = download_url(request, key=record.key, tenant=key.tenant, filename=record.filename,
                       mime_type=record.mime_type)
    expires_in = min(svc.settings.download_url_ttl, svc.settings.temporary_ttl)
    return JSONResponse({"zip": {
        "filename": record.filename, "mime_type": record.mime_type,
        "size_bytes": record.size_bytes, "fileCount": len(entries), "entries": entries,
        "download_url": url, "downloadUrl": url, "expiresIn": expires_in,
    }})


# --- folders ----------------------------------------------------------------------------


async def list_folders(request: Request) -> Response:
    key = authenticate(request)
    parent_id, root_only = _query_folder(request, "parentId")
    folders = await asyncio.to_thread(library.list_folders, services(request), key.tenant,
                                      parent_id=parent_id, root_only=root_only,
                                      text=_query_text(request, "q"))
    return JSONResponse({"folders": [render_folder(f) for f in folders]})


async def create_folder(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, {"name", "color", "parentId", "wordpressInstanceId"})
    if body.get("wordpressInstanceId") is not None:
        raise InvalidFieldError("wordpressInstanceId", "is not supported by this server; "
                                "leave it out.")
    folder = await asyncio.to_thread(
        library.create_folder, services(request), key.tenant,
        name=_name(body.get("name"), "name"), color=_color(body.get("color")),
        parent_id=_folder_ref(body.get("parentId"), "parentId"))
    return JSONResponse({"folder": render_folder(folder)}, status_code=201)


async def update_folder(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, {"name", "color", "parentId"})
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        changes["name"] = _name(body["name"], "name")
    if body.get("color") is not None:
        changes["color"] = _color(body["color"])
    if "parentId" in body:
        changes["parent_id"] = _folder_ref(body["parentId"], "parentId")
    folder = await asyncio.to_thread(library.update_folder, services(request), key.tenant,
                                     request.path_params["folder_id"], changes)
    return JSONResponse({"folder": render_folder(folder)})


async def delete_folder(request: Request) -> Response:
    key = authenticate(request)
    recursive = _flag(request, "recursive")
    files, folders = await asyncio.to_thread(
        library.delete_folder, services(request), key.tenant,
        request.path_params["folder_id"], recursive=recursive)
    return JSONResponse({"success": True,
                         "message": f"Deleted {folders} folder(s) and {files} file(s).",
                         "deletedFiles": files, "deletedFolders": folders})


# --- direct uploads ---------------------------------------------------------------------


async def create_upload(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    body = await json_object(request, {"filename", "contentType", "sizeBytes", "folderId",
                                        "resumable"})
    filename = _name(body.get("filename"), "filename")
    raw_type = body.get("contentType")
    content_type = library.normalise_mime(raw_type if isinstance(raw_type, str) else None)
    if raw_type is not None and content_type is None:
        raise InvalidFieldError("contentType", "must be a MIME type such as image/png.")
    size = _size(body.get("sizeBytes"), "sizeBytes")
    folder_id = _folder_ref(body.get("folderId"), "folderId")
    if body.get("resumable") is not None and not isinstance(body["resumable"], bool):
        raise InvalidFieldError("resumable", "must be true or false.")
    record, url = await asyncio.to_thread(
        library.start_upload, svc, key.tenant, filename=filename,
        content_type=content_type or "application/octet-stream", size=size,
        folder_id=folder_id)
    ttl = svc.settings.upload_url_ttl
    provider = "s3" if url is not None else "local"
    bucket = svc.settings.s3_bucket if url is not None else "local"
    if url is None:
        token = sign_upload(UploadGrant(key=record.key, tenant=key.tenant, file_id=record.id,
                                        max_bytes=size, expires=int(time.time()) + ttl),
                            svc.secret)
        url = f"{base_url(request)}/api/uploads/{token}"
    return JSONResponse({
        "upload": {"provider": provider, "bucket": bucket, "path": record.key,
                   "signedUrl": url, "method": "PUT", "expiresInSeconds": ttl},
        # Resumable (chunked) uploads are not offered; a failed PUT is simply sent again.
        "resumable": None,
        "fileId": record.id,
        "complete": {
            "url": f"{base_url(request)}/api/uploads/complete",
            "body": {"path": record.key, "filename": filename,
                     "contentType": record.mime_type, "sizeBytes": size,
                     "folderId": folder_id, "provider": provider, "bucket": bucket},
        },
    })


async def complete_upload(request: Request) -> Response:
    key = authenticate(request)
    svc = services(request)
    body = await json_object(request, {"path", "filename", "contentType", "sizeBytes",
                                        "folderId", "provider", "bucket"})
    path = body.get("path")
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise InvalidFieldError("path", "is required: the upload.path of POST /api/uploads.")
    size = _size(body.get("sizeBytes"), "sizeBytes")
    changes: dict[str, Any] = {}
    if body.get("filename") is not None:
        changes["filename"] = _name(body["filename"], "filename")
    if "folderId" in body:
        changes["folder_id"] = _folder_ref(body["folderId"], "folderId")
    if isinstance(body.get("contentType"), str):
        changes["mime_type"] = body["contentType"]
    provider = "s3" if svc.storage.remote else "local"
    if body.get("provider") not in (None, provider):
        raise InvalidFieldError("provider", f"must be {provider!r} on this server.")
    record, idempotent = await asyncio.to_thread(
        library.complete_upload, svc, key.tenant, path=path, size=size, changes=changes)
    return JSONResponse({"file": render_file(request, record), "idempotent": idempotent},
                        status_code=200 if idempotent else 201)


async def put_upload(request: Request) -> Response:
    """The signed upload route of local-disk storage: the body streams to disk, never held
    in memory, and may not exceed the size the upload announced."""
    svc = services(request)
    grant = verify_upload(request.path_params["token"], svc.secret, old=svc.old_secrets)
    await asyncio.to_thread(library.open_upload, svc, grant)
    too_large = FileTooLargeError(
        f"The body is larger than the {grant.max_bytes} bytes this upload announced "
        "(sizeBytes of POST /api/uploads).")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > grant.max_bytes:
        raise too_large
    with service.scratch_dir(svc, "put") as workdir:
        path = workdir / "body"
        received = 0
        try:
            with diskspace.room(f"the scratch directory {svc.scratch_root}"), \
                    path.open("wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > grant.max_bytes:
                        raise too_large
                    out.write(chunk)
        except ClientDisconnect:
            raise InvalidRequestError("The upload was interrupted; PUT the file again.") \
                from None
        if received != grant.max_bytes:
            raise InvalidRequestError(
                f"Received {received} bytes, but this upload announced {grant.max_bytes} "
                "(sizeBytes of POST /api/uploads); PUT the whole file.")
        size = await asyncio.to_thread(library.receive_upload, svc, grant, path)
    return JSONResponse({"path": grant.key, "size": size})
