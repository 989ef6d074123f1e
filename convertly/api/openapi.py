"""The OpenAPI 3.1 description of every route. The multipart request schemas of
/api/convert, /api/compress and /api/jobs come from the field table (`convertly/fields.py`);
the `/api/jobs` one is a superset of Convertly's published `CreateJobRequest`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import __version__
from convertly.api import toolspec
from convertly.api.requests import services
from convertly.converters.tools.registry import ToolRegistry, default_tools
from convertly.fields import PRIORITIES, Field, Kind, Route, fields_for
from convertly.models import JobStatus, OutputFormat, ResizePreset
from convertly.state.records import EVENT_TYPES
from convertly.streams.model import MAX_RENDITIONS, Profile, StreamStatus


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _multipart(schema_name: str) -> dict[str, Any]:
    return {"required": True,
            "content": {"multipart/form-data": {"schema": _ref(schema_name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    """Error responses; every route that takes an API key can also answer 429 (its rate
    limits, `convertly.limits`)."""
    with_limits = (*codes, 429) if 401 in codes else codes
    return {str(c): {"$ref": "#/components/responses/Error"} for c in sorted(with_limits)}


def _value_schema(field: Field) -> dict[str, Any]:
    """The schema of one value of `field` (its singular form)."""
    schema: dict[str, Any]
    if field.kind is Kind.FILES:
        return {"type": "array", "items": {"type": "string", "format": "binary"},
                "minItems": 1}
    if field.kind is Kind.INTEGER:
        schema = {"type": "integer", "minimum": field.low, "maximum": field.high}
    elif field.kind is Kind.BOOLEAN:
        schema = {"type": "string", "enum": ["true", "false"]}
    elif field.kind is Kind.CHOICE:
        schema = {"type": "string", "enum": list(field.choices)}
    else:
        schema = {"type": "string"}
        if field.uri:
            schema["format"] = "uri"
        if field.low is not None:
            schema["minLength"] = field.low
        if field.high is not None:
            schema["maxLength"] = field.high
    if field.default is not None:
        default = field.default
        schema["default"] = str(default).lower() if isinstance(default, bool) else default
    return schema


def request_schema(route: Route) -> dict[str, Any]:
    """The multipart schema of `route`'s request, every property from the field table."""
    properties: dict[str, Any] = {}
    for field in fields_for(route):
        properties[field.name] = {**_value_schema(field), "description": field.help}
        for alias in field.aliases:
            one = {"type": "string", "format": "binary"} if field.kind is Kind.FILES \
                else _value_schema(field)
            properties[alias] = {**one, "description": f"The same as `{field.name}`."}
        if field.array is not None:
            properties[field.array] = {
                "type": "string", "description": f"`{field.name}` per file: a JSON array "
                "with one entry per file (null: the singular value)."}
    return {"type": "object", "properties": properties,
            "required": [f.name for f in fields_for(route) if f.kind is Kind.FILES]}


SCHEMAS: dict[str, Any] = {
    "OutputFormat": {"type": "string", "enum": [f.value for f in OutputFormat]},
    "ResizeMode": {"type": "string", "enum": [p.value for p in ResizePreset]},
    "Error": {
        "type": "object",
        "properties": {
            "error": {"type": "string", "description": "What happened and what to do."},
            "code": {"type": "string", "description": "Stable machine-readable code."},
            "detail": {"type": "object"},
            "upgradeUrl": {"type": "string"},
        },
        "required": ["error", "code"],
    },
    "ConvertRequest": request_schema(Route.CONVERT),
    "CompressRequest": request_schema(Route.COMPRESS),
    "CreateJobRequest": request_schema(Route.JOBS),
    "ConvertedFile": {
        "type": "object",
        "properties": {
            "filename": {"type": "string"},
            "originalFilename": {"type": "string"},
            "originalSize": {"type": "integer"},
            "finalSize": {"type": "integer"},
            "savedPercent": {"type": "number"},
            "mimeType": {"type": "string"},
            "format": {"type": "string"},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "downloadUrl": {"type": "string",
                            "description": "Signed expiring link, or a data: URL."},
            "appliedQuality": {"type": ["integer", "null"]},
            "storedFileId": {"type": ["string", "null"]},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["filename", "originalSize", "finalSize", "savedPercent", "mimeType",
                     "downloadUrl", "appliedQuality", "storedFileId"],
    },
    "ConvertResponse": {
        "type": "object",
        "properties": {
            "files": {"type": "array", "items": _ref("ConvertedFile")},
            "storage": {"type": "object", "properties": {
                "saved": {"type": "boolean"}, "notice": {"type": "string"}}},
        },
        "required": ["files", "storage"],
    },
    "JobResult": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "filename": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "completed", "failed"]},
            "format": {"type": ["string", "null"]},
            "outputFilename": {"type": ["string", "null"]},
            "originalSize": {"type": "integer"},
            "finalSize": {"type": ["integer", "null"]},
            "mimeType": {"type": ["string", "null"]},
            "appliedQuality": {"type": ["integer", "null"]},
            "width": {"type": ["integer", "null"]},
            "height": {"type": ["integer", "null"]},
            "downloadUrl": {"type": ["string", "null"]},
            "storedFileId": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "errorCode": {"type": ["string", "null"]},
            "notes": {"type": "array", "items": {"type": "string"},
                      "description": "What the service decided for this file (downscaled "
                                     "before tracing, first page only, ...)."},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "jobId": {"type": "string", "format": "uuid"},
            "jobType": {"type": "string", "enum": ["convert", "compress"]},
            "status": {"type": "string", "enum": [s.value for s in JobStatus]},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "totalFiles": {"type": "integer"},
            "completedFiles": {"type": "integer"},
            "failedFiles": {"type": "integer"},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "errorMessage": {"type": ["string", "null"]},
            "cancelled": {"type": "boolean"},
            "results": {"type": "array", "items": _ref("JobResult")},
            "archive": {"type": ["object", "null"], "properties": {
                "filename": {"type": "string"}, "format": {"type": "string"},
                "size": {"type": ["integer", "null"]},
                "downloadUrl": {"type": ["string", "null"]}}},
            "createdAt": {"type": "string", "format": "date-time"},
            "startedAt": {"type": ["string", "null"], "format": "date-time"},
            "completedAt": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["jobId", "jobType", "status", "totalFiles", "completedFiles",
                     "failedFiles", "progress", "results", "createdAt"],
    },
    "StoredFile": {
        "type": "object",
        "description": "A stored file, in the field names of Convertly's SDK.",
        "properties": {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "mime_type": {"type": "string"},
            "size_bytes": {"type": "integer"},
            "folder_id": {"type": ["string", "null"]},
            "cdn_slug": {"type": "null"},
            "width": {"type": ["integer", "null"],
                      "description": "As displayed: EXIF orientation, video rotation applied."},
            "height": {"type": ["integer", "null"]},
            "duration": {"type": ["number", "null"], "description": "Seconds (audio, video)."},
            "metadata": {"type": "object", "properties": {
                "tags": {"type": "array", "items": {"type": "string"}},
                "description": {"type": ["string", "null"]},
                "jobId": {"type": ["string", "null"],
                          "description": "The job that produced this output."},
                "pageCount": {"type": ["integer", "null"], "description": "Pages of a PDF."}}},
            "created_at": {"type": "string", "format": "date-time"},
            "download_url": {"type": "string", "description": "Signed, expiring link."},
            "downloadUrl": {"type": "string", "description": "The same link."},
            "expiresIn": {"type": "integer", "description": "Seconds the link stays valid."},
        },
        "required": ["id", "filename", "mime_type", "size_bytes", "folder_id", "created_at",
                     "download_url"],
    },
    "Folder": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "color": {"type": "string"},
            "parent_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "name", "color", "parent_id", "created_at"],
    },
    "Pagination": {
        "type": "object",
        "properties": {"limit": {"type": "integer"}, "offset": {"type": "integer"},
                       "total": {"type": "integer"}, "hasMore": {"type": "boolean"}},
        "required": ["limit", "offset", "total", "hasMore"],
    },
    "FileList": {
        "type": "object",
        "properties": {"files": {"type": "array", "items": _ref("StoredFile")},
                       "pagination": _ref("Pagination")},
        "required": ["files", "pagination"],
    },
    "UploadFilesRequest": {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "description": "Several files at once (instead of `file`)."},
            "folderId": {"type": "string", "description": "Folder to put them in."},
        },
    },
    "UpdateFileRequest": {
        "type": "object",
        "properties": {
            "filename": {"type": "string", "minLength": 1, "maxLength": 255},
            "folderId": {"type": ["string", "null"],
                         "description": "Move to this folder; null for no folder."},
            "description": {"type": ["string", "null"], "maxLength": 2000},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 64},
                     "maxItems": 50},
            "cdnSlug": {"type": "null", "description": "Not supported; must be null."},
        },
        "additionalProperties": False,
    },
    "FolderRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "color": {"type": "string", "pattern": "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"},
            "parentId": {"type": ["string", "null"]},
        },
        "additionalProperties": False,
    },
    "CreateUploadRequest": {
        "type": "object",
        "properties": {
            "filename": {"type": "string", "minLength": 1, "maxLength": 255},
            "contentType": {"type": "string", "default": "application/octet-stream"},
            "sizeBytes": {"type": "integer", "minimum": 1,
                          "description": "At most CONVERTLY_MAX_FILE_BYTES."},
            "folderId": {"type": ["string", "null"]},
            "resumable": {"type": "boolean",
                          "description": "Accepted; resumable uploads are not offered."},
        },
        "required": ["filename", "sizeBytes"],
        "additionalProperties": False,
    },
    "CompleteUploadRequest": {
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "filename": {"type": "string"},
            "contentType": {"type": "string"},
            "sizeBytes": {"type": "integer", "minimum": 1},
            "folderId": {"type": ["string", "null"]},
            "provider": {"type": "string", "enum": ["s3", "local"]},
            "bucket": {"type": "string"},
        },
        "required": ["path", "sizeBytes"],
        "additionalProperties": False,
    },
    "UploadSession": {
        "type": "object",
        "properties": {
            "upload": {"type": "object", "properties": {
                "provider": {"type": "string", "enum": ["s3", "local"]},
                "bucket": {"type": "string"},
                "path": {"type": "string"},
                "signedUrl": {"type": "string",
                              "description": "PUT the bytes here (S3 presigned URL, or "
                              "this server's /api/uploads/{token} on local disk)."},
                "method": {"type": "string", "enum": ["PUT"]},
                "expiresInSeconds": {"type": "integer"}}},
            "resumable": {"type": "null"},
            "fileId": {"type": "string"},
            "complete": {"type": "object", "properties": {
                "url": {"type": "string"},
                "body": _ref("CompleteUploadRequest")}},
        },
        "required": ["upload", "resumable", "complete"],
    },
    "TaxonomyTerm": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "slug": {"type": "string"},
            "label": {"type": "string"},
            "locale": {"type": "string"},
            "groupName": {"type": ["string", "null"]},
            "synonyms": {"type": "array", "items": {"type": "string"}},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "slug", "label", "locale", "groupName", "synonyms", "createdAt",
                     "updatedAt"],
    },
    "TaxonomyTermRequest": {
        "type": "object",
        "description": "slug and label are required on create; an update sends any of them.",
        "properties": {
            "slug": {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$",
                     "maxLength": 80, "description": "Unique per locale."},
            "label": {"type": "string", "maxLength": 120},
            "locale": {"type": "string", "default": "en", "maxLength": 35},
            "groupName": {"type": ["string", "null"], "maxLength": 80},
            "synonyms": {"type": "array", "maxItems": 50,
                         "items": {"type": "string", "maxLength": 80}},
        },
        "additionalProperties": False,
    },
    "FacetBucket": {
        "type": "object",
        "properties": {"value": {"type": "string"}, "count": {"type": "integer"},
                       "label": {"type": "string",
                                 "description": "The taxonomy term's label (tags)."}},
        "required": ["value", "count"],
    },
    "ZipRequest": {
        "type": "object",
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                    "maxItems": 1000},
            "filename": {"type": "string", "default": "convertly-files.zip"},
        },
        "required": ["ids"],
        "additionalProperties": False,
    },
    "TransferRequest": {
        "type": "object",
        "description": "sourceUrl or cloudSource, not both. A single file into storage is "
        "queued (202) unless async is false; extract and an S3 prefix answer when done.",
        "properties": {
            "sourceUrl": {"type": "string", "format": "uri",
                          "description": "A public http or https URL (the sourceUrl rules: "
                          "CONVERTLY_FETCH_TIMEOUT, CONVERTLY_MAX_FILE_BYTES)."},
            "destination": {"type": "string", "enum": ["download", "convertly-storage"],
                            "default": "download"},
            "filename": {"type": "string"},
            "contentType": {"type": "string"},
            "async": {"type": "boolean", "default": True},
            "extract": {"type": "boolean", "default": False,
                        "description": "Unpack the archive into a new folder (storage "
                        "only), under the server's archive limits."},
            "extractOptions": {"type": "object", "additionalProperties": False, "properties": {
                "preservePaths": {"type": "boolean", "default": True},
                "folderName": {"type": "string"},
                "targetFolderId": {"type": ["string", "null"]},
                "maxFiles": {"type": "integer", "minimum": 1},
                "maxEntryBytes": {"type": "integer", "minimum": 1},
                "maxTotalBytes": {"type": "integer", "minimum": 1}}},
            "cloudSource": {"type": "object", "additionalProperties": False,
                            "required": ["provider"],
                            "description": "provider s3 only: google-drive and dropbox "
                            "answer 422 PROVIDER_UNAVAILABLE. Credentials are used for this "
                            "request only, never stored.",
                            "properties": {
                                "provider": {"type": "string",
                                             "enum": ["s3", "google-drive", "dropbox"]},
                                "bucket": {"type": "string"}, "key": {"type": "string"},
                                "prefix": {"type": "string"}, "region": {"type": "string"},
                                "endpoint": {"type": "string"},
                                "accessKeyId": {"type": "string"},
                                "secretAccessKey": {"type": "string"},
                                "sessionToken": {"type": "string"},
                                "targetFolderId": {"type": ["string", "null"]},
                                "fileId": {"type": "string"}, "folderId": {"type": "string"},
                                "accessToken": {"type": "string"}, "path": {"type": "string"},
                                "recursive": {"type": "boolean", "default": True,
                                              "description": "With prefix: also the "
                                              "objects below its subfolders."}}},
        },
        "additionalProperties": False,
    },
    "TransferStorageResponse": {
        "type": "object",
        "properties": {
            "file": {"oneOf": [_ref("StoredFile"), {"type": "null"}]},
            "files": {"type": "array", "items": _ref("StoredFile")},
            "folder": _ref("Folder"),
            "folders": {"type": "array", "items": _ref("Folder"),
                        "description": "With extract: the folder made and those below it."},
            "notes": {"type": "array", "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["sync"]},
        },
    },
    "TransferQueued": {
        "type": "object",
        "properties": {"jobId": {"type": "string"}, "status": {"type": "string"},
                       "mode": {"type": "string", "enum": ["async"]}},
        "required": ["jobId", "status", "mode"],
    },
    "Deleted": {
        "type": "object",
        "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}},
        "required": ["success", "message"],
    },
}

_EVENT_TYPES = list(EVENT_TYPES)
_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS.update({
    "CreateWebhookRequest": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri",
                    "description": "Public http or https URL receiving the events."},
            "events": {"type": "array", "items": {"type": "string",
                                                  "enum": [*_EVENT_TYPES, "*"]},
                       "description": "Events to send; leave out (or [\"*\"]) for all. As a "
                       "form field: a JSON array or a comma-separated list."},
        },
        "required": ["url"],
    },
    "WebhookEndpoint": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "we_..."},
            "url": {"type": "string"},
            "events": {"type": "array", "items": {"type": "string"}},
            "createdAt": _TIME,
            "secret": {"type": "string", "description": "whsec_...; only in the answer to "
                       "its creation. Keys the HMAC-SHA256 of the convertly-signature "
                       "header (t=<unix>,v1=<hex of HMAC(\"{t}.{body}\")>)."},
        },
        "required": ["id", "url", "events", "createdAt"],
    },
    "WebhookEvent": {
        "type": "object",
        "description": "The body POSTed to an endpoint.",
        "properties": {
            "id": {"type": "string", "description": "evt_...; the same on every retry."},
            "type": {"type": "string", "enum": _EVENT_TYPES},
            "created": {"type": "integer", "description": "Unix time of the event."},
            "data": {"oneOf": [_ref("Job"), _ref("VideoStream")],
                     "description": "The job, or for video.stream.* events the stream."},
        },
        "required": ["id", "type", "created", "data"],
    },
    "WebhookDelivery": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "wd_..."},
            "eventId": {"type": "string"},
            "type": {"type": "string", "enum": _EVENT_TYPES},
            "endpointId": {"type": "string"},
            "jobId": {"type": "string"},
            "url": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
            "attempts": {"type": "integer"},
            "maxAttempts": {"type": "integer"},
            "responseCode": {"type": ["integer", "null"]},
            "responseExcerpt": {"type": ["string", "null"],
                                "description": "The first 256 bytes of the last answer."},
            "lastError": {"type": ["string", "null"]},
            "nextAttemptAt": _MAYBE_TIME,
            "lastAttemptAt": _MAYBE_TIME,
            "createdAt": _TIME,
            "finishedAt": _MAYBE_TIME,
        },
        "required": ["id", "eventId", "type", "endpointId", "jobId", "status", "attempts"],
    },
})

_JOB_ID = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_WAIT = {"name": "wait", "in": "query",
         "schema": {"type": "number", "minimum": 0, "maximum": 60, "default": 0},
         "description": "Long polling: answer as soon as the job is completed or failed, "
         "or after this many seconds with the job as it is then (still 200). 0 or absent: "
         "answer at once."}
_FILE_ID = [{"name": "file_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_TERM_ID = [{"name": "term_id", "in": "path", "required": True, "schema": {"type": "string"}}]
_FOLDER_ID = [{"name": "folder_id", "in": "path", "required": True,
               "schema": {"type": "string"}}]
_PAGING = [
    {"name": "limit", "in": "query",
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
]
_FILE_FILTERS = [
    {"name": "folderId", "in": "query", "schema": {"type": "string"},
     "description": "A folder id, or `null` for files in no folder; absent: every file."},
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Case-insensitive part of the file name."},
    {"name": "mimePrefix", "in": "query", "schema": {"type": "string"},
     "description": "Start of the MIME type, e.g. `image/`."},
]


def _json_body(schema_name: str) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/json": {"schema": _ref(schema_name)}}}


PATHS: dict[str, Any] = {
    "/api/convert": {"post": {
        "tags": ["Convert"], "summary": "Convert files synchronously", "operationId": "convert",
        "requestBody": _multipart("ConvertRequest"),
        "responses": {"200": _json(_ref("ConvertResponse")),
                      **_errors(400, 401, 403, 413, 415, 422, 503)},
    }},
    "/api/compress": {"post": {
        "tags": ["Convert"], "summary": "Compress files, keeping their format",
        "operationId": "compress", "requestBody": _multipart("CompressRequest"),
        "responses": {"200": _json(_ref("ConvertResponse")),
                      **_errors(400, 401, 403, 413, 415, 422, 503)},
    }},
    "/api/jobs": {
        "post": {
            "tags": ["Jobs"], "summary": "Create an async job", "operationId": "createJob",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                            "description": "Same key and tenant within 24 h returns the "
                            "same job; the same key with a different request (fields or "
                            "files) answers 409 IDEMPOTENCY_MISMATCH."}],
            "requestBody": _multipart("CreateJobRequest"),
            "responses": {"200": _json({"type": "object", "properties": {
                "jobId": {"type": "string", "format": "uuid"},
                "status": {"type": "string"}}, "required": ["jobId", "status"]},
                "Queued job"), **_errors(400, 401, 403, 409, 413, 503)},
        },
        "get": {
            "tags": ["Jobs"], "summary": "List jobs", "operationId": "listJobs",
            "parameters": [
                {"name": "limit", "in": "query",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                {"name": "offset", "in": "query",
                 "schema": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000,
                            "default": 0}},
                {"name": "status", "in": "query",
                 "schema": {"type": "string", "enum": [s.value for s in JobStatus]}},
            ],
            "responses": {"200": _json({"type": "object", "properties": {
                "jobs": {"type": "array", "items": _ref("Job")},
                "pagination": {"type": "object", "properties": {
                    "limit": {"type": "integer"}, "offset": {"type": "integer"},
                    "total": {"type": "integer"}, "hasMore": {"type": "boolean"}}}}}),
                **_errors(400, 401)},
        },
    },
    "/api/jobs/{job_id}": {
        "get": {"tags": ["Jobs"], "summary": "Get a job", "operationId": "getJob",
                "parameters": [*_JOB_ID, _WAIT],
                "responses": {"200": _json(_ref("Job")), **_errors(400, 401, 404)}},
        "delete": {"tags": ["Jobs"], "summary": "Cancel a pending or processing job",
                   "operationId": "cancelJob", "parameters": _JOB_ID,
                   "responses": {"200": _json(_ref("Job")), **_errors(401, 404, 409)}},
    },
    "/api/formats": {"get": {
        "tags": ["Meta"], "summary": "The conversion matrix", "operationId": "formats",
        "security": [], "responses": {"200": _json({"type": "object"})},
    }},
    "/api/download/{token}": {"get": {
        "tags": ["Files"], "summary": "Download through a signed, expiring link",
        "operationId": "download", "security": [],
        "parameters": [{"name": "token", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file",
                              "content": {"application/octet-stream": {}}},
                      **_errors(403, 404)},
    }},
    "/healthz": {"get": {
        "tags": ["Meta"], "summary": "Health", "operationId": "healthz", "security": [],
        "responses": {"200": _json({"type": "object"}),
                      "503": _json({"type": "object"}, "Degraded")},
    }},
    "/docs": {"get": {
        "tags": ["Meta"], "summary": "The API reference page, rendered from this document",
        "operationId": "docs", "security": [],
        "responses": {"200": {"description": "OK",
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }},
    "/livez": {"get": {
        "tags": ["Meta"], "summary": "Liveness: the process answers",
        "description": "Calls no dependency: a Redis or storage outage never fails it. "
        "The probe whose failure should restart the process.",
        "operationId": "livez", "security": [],
        "responses": {"200": _json({"type": "object"})},
    }},
    "/readyz": {"get": {
        "tags": ["Meta"], "summary": "Readiness: storage, job state and queue answer",
        "description": "503 names in `down` what does not answer (storage, state, queue, "
        "disk). The probe whose failure should take the process out of the load balancer.",
        "operationId": "readyz", "security": [],
        "responses": {"200": _json({"type": "object"}),
                      "503": _json({"type": "object"}, "Not ready")},
    }},
    "/metrics": {"get": {
        "tags": ["Meta"], "summary": "Prometheus metrics",
        "description": "The Prometheus text exposition: HTTP requests, conversions, queue "
        "depth, webhook deliveries, storage errors. Open unless CONVERTLY_METRICS_TOKEN is "
        "set; then it wants that token as a bearer token.",
        "operationId": "metrics", "security": [],
        "responses": {"200": {"description": "OK",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **_errors(401)},
    }},
    "/openapi.json": {"get": {
        "tags": ["Meta"], "summary": "This document", "operationId": "openapi",
        "security": [], "responses": {"200": _json({"type": "object"})},
    }},
    "/": {"get": {
        "tags": ["Meta"], "summary": "The web dashboard, or the service index as JSON",
        "description": "Browsers get the dashboard page; a client whose Accept header names "
        "application/json (above text/html) gets the service index.",
        "operationId": "index", "security": [],
        "responses": {"200": {"description": "OK", "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}}}}},
    }},
    "/api/files": {
        "get": {"tags": ["Storage"], "summary": "List stored files, newest first",
                "operationId": "listFiles",
                "parameters": [*_FILE_FILTERS, *_PAGING],
                "responses": {"200": _json(_ref("FileList")), **_errors(400, 401, 404, 503)}},
        "post": {"tags": ["Storage"], "summary": "Upload one or more files",
                 "operationId": "uploadFiles",
                 "requestBody": _multipart("UploadFilesRequest"),
                 "responses": {"201": _json({"type": "object", "properties": {
                     "file": _ref("StoredFile"),
                     "files": {"type": "array", "items": _ref("StoredFile")}}}, "Stored"),
                     **_errors(400, 401, 403, 404, 413, 503)}},
    },
    "/api/files/search": {"get": {
        "tags": ["Storage"], "summary": "Search stored files", "operationId": "searchFiles",
        "parameters": [
            *_FILE_FILTERS, *_PAGING,
            {"name": "tags", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated tags."},
            {"name": "tagMode", "in": "query",
             "schema": {"type": "string", "enum": ["any", "all"], "default": "any"}},
            {"name": "orientation", "in": "query",
             "schema": {"type": "string", "enum": ["vertical", "horizontal", "square"]}},
            {"name": "locale", "in": "query", "schema": {"type": "string", "default": "en"},
             "description": "The taxonomy locale: tags resolve through its terms' slugs, "
             "labels and synonyms, and tag facets carry their labels."},
            {"name": "facets", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated: tags, orientation, mimeType."},
        ],
        "responses": {"200": _json({"allOf": [_ref("FileList"), {"type": "object",
                                    "properties": {
                                        "applied": {"type": "object"},
                                        "facets": {"type": "object", "properties": {
                                            name: {"type": "array",
                                                   "items": _ref("FacetBucket")}
                                            for name in ("tags", "orientation",
                                                         "mimeType")}}}}]}),
                      **_errors(400, 401, 404, 503)},
    }},
    "/api/files/{file_id}/ai-tags": {"post": {
        "tags": ["Storage"], "summary": "AI tagging of a stored image (not available here)",
        "description": "The SDK's ai.tagFile. This server runs no image-tagging model: after "
        "checking the options and the file it answers 501 FEATURE_UNAVAILABLE.",
        "operationId": "aiTagFile", "parameters": _FILE_ID,
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "properties": {
                "maxTags": {"type": "integer", "minimum": 1, "maximum": 20, "default": 8},
                "merge": {"type": "boolean", "default": True},
                "locale": {"type": "string", "default": "en"},
                "prompt": {"type": "string", "maxLength": 2000}}}}}},
        "responses": _errors(400, 401, 404, 501, 503),
    }},
    "/api/library/taxonomy/terms": {
        "get": {"tags": ["Storage"], "summary": "List a locale's taxonomy terms",
                "operationId": "listTaxonomyTerms",
                "parameters": [{"name": "locale", "in": "query",
                                "schema": {"type": "string", "default": "en"}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "terms": {"type": "array", "items": _ref("TaxonomyTerm")},
                    "locale": {"type": "string"}}}), **_errors(400, 401, 503)}},
        "post": {"tags": ["Storage"], "summary": "Create a taxonomy term",
                 "operationId": "createTaxonomyTerm",
                 "requestBody": _json_body("TaxonomyTermRequest"),
                 "responses": {"201": _json({"type": "object", "properties": {
                     "term": _ref("TaxonomyTerm")}}, "Created"),
                     **_errors(400, 401, 409, 503)}},
    },
    "/api/library/taxonomy/terms/{term_id}": {
        "patch": {"tags": ["Storage"], "summary": "Update a taxonomy term",
                  "operationId": "updateTaxonomyTerm", "parameters": _TERM_ID,
                  "requestBody": _json_body("TaxonomyTermRequest"),
                  "responses": {"200": _json({"type": "object", "properties": {
                      "term": _ref("TaxonomyTerm")}}), **_errors(400, 401, 404, 409, 503)}},
        "delete": {"tags": ["Storage"], "summary": "Delete a taxonomy term",
                   "operationId": "deleteTaxonomyTerm", "parameters": _TERM_ID,
                   "responses": {"200": _json({"type": "object", "properties": {
                       "success": {"type": "boolean"}}}), **_errors(401, 404, 503)}},
    },
    "/api/transfer": {"post": {
        "tags": ["Media"], "summary": "Transfer a remote file",
        "description": "Fetch a URL or S3 objects and return the file as the body "
        "(destination download) or keep it in storage. A single file into storage is a "
        "job (type transfer) answered 202; GET /api/jobs/{jobId} then carries the stored "
        "file (storedFileId, downloadUrl) in results.",
        "operationId": "transferFile", "requestBody": _json_body("TransferRequest"),
        "responses": {
            "200": {"description": "The file's bytes, or the stored files", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}},
                "application/json": {"schema": _ref("TransferStorageResponse")}}},
            "202": _json(_ref("TransferQueued"), "Transfer job queued"),
            **_errors(400, 401, 404, 413, 422, 503)},
    }},
    "/api/files/zip": {"post": {
        "tags": ["Storage"], "summary": "Zip stored files into one download",
        "operationId": "zipFiles", "requestBody": _json_body("ZipRequest"),
        "responses": {"200": _json({"type": "object", "properties": {"zip": {
            "type": "object", "properties": {
                "filename": {"type": "string"}, "mime_type": {"type": "string"},
                "size_bytes": {"type": "integer"}, "fileCount": {"type": "integer"},
                "entries": {"type": "array", "items": {"type": "string"}},
                "download_url": {"type": "string"}, "downloadUrl": {"type": "string"},
                "expiresIn": {"type": "integer"}}}}}),
            **_errors(400, 401, 404, 413, 503)},
    }},
    "/api/files/{file_id}": {
        "get": {"tags": ["Storage"], "summary": "A stored file with a signed download link",
                "operationId": "getFile", "parameters": _FILE_ID,
                "responses": {"200": _json({"type": "object", "properties": {
                    "file": _ref("StoredFile")}}), **_errors(401, 404, 503)}},
        "patch": {"tags": ["Storage"], "summary": "Rename, move, tag or describe a file",
                  "operationId": "updateFile", "parameters": _FILE_ID,
                  "requestBody": _json_body("UpdateFileRequest"),
                  "responses": {"200": _json({"type": "object", "properties": {
                      "file": _ref("StoredFile")}}), **_errors(400, 401, 404, 503)}},
        "delete": {"tags": ["Storage"], "summary": "Delete a stored file",
                   "operationId": "deleteFile", "parameters": _FILE_ID,
                   "responses": {"200": _json(_ref("Deleted")), **_errors(401, 404, 503)}},
    },
    "/api/folders": {
        "get": {"tags": ["Storage"], "summary": "List folders", "operationId": "listFolders",
                "parameters": [
                    {"name": "parentId", "in": "query", "schema": {"type": "string"},
                     "description": "A folder id, or `null` for top-level folders; absent: "
                     "every folder."},
                    {"name": "q", "in": "query", "schema": {"type": "string"},
                     "description": "Case-insensitive part of the name."}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "folders": {"type": "array", "items": _ref("Folder")}}}),
                    **_errors(400, 401, 404, 503)}},
        "post": {"tags": ["Storage"], "summary": "Create a folder",
                 "operationId": "createFolder", "requestBody": _json_body("FolderRequest"),
                 "responses": {"201": _json({"type": "object", "properties": {
                     "folder": _ref("Folder")}}, "Created"), **_errors(400, 401, 404, 503)}},
    },
    "/api/folders/{folder_id}": {
        "patch": {"tags": ["Storage"], "summary": "Rename, recolour or move a folder",
                  "operationId": "updateFolder", "parameters": _FOLDER_ID,
                  "requestBody": _json_body("FolderRequest"),
                  "responses": {"200": _json({"type": "object", "properties": {
                      "folder": _ref("Folder")}}), **_errors(400, 401, 404, 503)}},
        "delete": {"tags": ["Storage"], "summary": "Delete a folder",
                   "description": "A folder holding files or folders answers 409 unless "
                   "`recursive=true`, which deletes everything below it.",
                   "operationId": "deleteFolder",
                   "parameters": [*_FOLDER_ID, {"name": "recursive", "in": "query",
                                  "schema": {"type": "string", "enum": ["true", "false"],
                                             "default": "false"}}],
                   "responses": {"200": _json(_ref("Deleted")),
                                 **_errors(400, 401, 404, 409, 503)}},
    },
    "/api/uploads": {"post": {
        "tags": ["Storage"], "summary": "Start a direct upload (for large files)",
        "operationId": "createUpload", "requestBody": _json_body("CreateUploadRequest"),
        "responses": {"200": _json(_ref("UploadSession")),
                      **_errors(400, 401, 403, 404, 413, 503)},
    }},
    "/api/uploads/complete": {"post": {
        "tags": ["Storage"], "summary": "Register a direct upload once its bytes are stored",
        "operationId": "completeUpload", "requestBody": _json_body("CompleteUploadRequest"),
        "responses": {
            "200": _json({"type": "object", "properties": {
                "file": _ref("StoredFile"), "idempotent": {"type": "boolean"}}},
                "Completed before"),
            "201": _json({"type": "object", "properties": {
                "file": _ref("StoredFile"), "idempotent": {"type": "boolean"}}}, "Completed"),
            **_errors(400, 401, 403, 404, 409, 413, 503)},
    }},
    "/api/uploads/{token}": {"put": {
        "tags": ["Storage"], "summary": "Receive a direct upload's bytes (local-disk storage)",
        "description": "The signedUrl of POST /api/uploads when files live on local disk. "
        "The body is the file's bytes, exactly sizeBytes of them.",
        "operationId": "putUpload", "security": [],
        "parameters": [{"name": "token", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True,
                        "content": {"application/octet-stream": {"schema": {
                            "type": "string", "format": "binary"}}}},
        "responses": {"200": _json({"type": "object", "properties": {
            "path": {"type": "string"}, "size": {"type": "integer"}}}),
            **_errors(400, 403, 404, 409, 413, 503)},
    }},
}

PATHS.update({
    "/api/webhooks": {
        "post": {
            "tags": ["Webhooks"], "summary": "Create a webhook endpoint (its secret is shown "
            "once)", "operationId": "createWebhook",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("CreateWebhookRequest")},
                "application/x-www-form-urlencoded": {"schema": _ref("CreateWebhookRequest")},
            }},
            "responses": {"201": _json(_ref("WebhookEndpoint"), "Created"),
                          **_errors(400, 401, 409)},
        },
        "get": {
            "tags": ["Webhooks"], "summary": "List webhook endpoints",
            "operationId": "listWebhooks",
            "responses": {"200": _json({"type": "object", "properties": {
                "webhooks": {"type": "array", "items": _ref("WebhookEndpoint")}}}),
                **_errors(401)},
        },
    },
    "/api/webhooks/{webhook_id}": {"delete": {
        "tags": ["Webhooks"], "summary": "Delete a webhook endpoint",
        "operationId": "deleteWebhook",
        "parameters": [{"name": "webhook_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": _json({"type": "object", "properties": {
            "id": {"type": "string"}, "deleted": {"type": "boolean"}}}),
            **_errors(401, 404)},
    }},
    "/api/webhooks/deliveries": {"get": {
        "tags": ["Webhooks"], "summary": "The delivery log, newest first",
        "operationId": "listWebhookDeliveries",
        "parameters": [
            {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
            {"name": "offset", "in": "query",
             "schema": {"type": "integer", "minimum": 0, "default": 0}},
            {"name": "jobId", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": _json({"type": "object", "properties": {
            "deliveries": {"type": "array", "items": _ref("WebhookDelivery")},
            "pagination": {"type": "object", "properties": {
                "limit": {"type": "integer"}, "offset": {"type": "integer"},
                "total": {"type": "integer"}, "hasMore": {"type": "boolean"}}}}}),
            **_errors(400, 401)},
    }},
    "/api/webhooks/deliveries/{delivery_id}/retry": {"post": {
        "tags": ["Webhooks"], "summary": "Send a finished delivery once more",
        "operationId": "retryWebhookDelivery",
        "parameters": [{"name": "delivery_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": _json(_ref("WebhookDelivery")), **_errors(401, 404, 409)},
    }},
})


# --- video streams (convertly/api/streams.py) ---------------------------------------------

_CAPTION_INPUT = {"type": "object", "properties": {
    "label": {"type": "string"}, "language": {"type": "string", "description": "BCP 47."},
    "kind": {"type": "string", "enum": ["subtitles", "captions"], "default": "subtitles"},
    "content": {"type": "string", "description": "WebVTT text."}},
    "required": ["label", "language", "content"]}
_URL_OR_NULL = {"type": ["string", "null"]}
SCHEMAS.update({
    "CreateVideoStreamRequest": {
        "type": "object",
        "description": "Exactly one source: `sourceFileId`, `sourceUrl`, or (multipart) "
        "an uploaded `file`, stored in the library first.",
        "properties": {
            "sourceFileId": {"type": "string"},
            "sourceUrl": {"type": "string", "format": "uri"},
            "profile": {"type": "string", "enum": [p.value for p in Profile],
                        "default": "standard", "description": "basic 360/480p, standard "
                        "+720p, hd +1080p, source_max up to 2160p; never above the source."},
            "renditions": {"type": "array", "maxItems": MAX_RENDITIONS, "items": {
                "type": "object", "properties": {
                    "height": {"type": "integer"},
                    "bitrate": {"type": "integer", "description": "kbit/s"},
                    "audioBitrate": {"type": "integer", "description": "kbit/s"}},
                "required": ["height", "bitrate"]},
                "description": "Required with profile custom."},
            "packageFormats": {"type": "array", "items": {"enum": ["hls", "dash"]},
                               "default": ["hls"]},
            "segmentDuration": {"type": "integer", "minimum": 2, "maximum": 12, "default": 6},
            "access": {"type": "string", "enum": ["public", "signed"], "default": "signed"},
            "tokenTtlSeconds": {"type": "integer", "default": 3600},
            "allowedDomains": {"type": "array", "items": {"type": "string"}},
            "captions": {"type": "array", "items": _CAPTION_INPUT},
            "clip": {"type": ["object", "null"], "properties": {
                "start": {"type": "number"}, "end": {"type": "number"},
                "duration": {"type": "number"},
                "mode": {"type": "string", "enum": ["accurate", "fast"]}}},
            "title": {"type": "string"}, "description": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "UpdateVideoStreamRequest": {
        "type": "object",
        "properties": {"title": {"type": ["string", "null"]},
                       "description": {"type": ["string", "null"]},
                       "tags": {"type": "array", "items": {"type": "string"}},
                       "engagement": {"type": "object"}},
        "additionalProperties": False,
    },
    "VideoStream": {
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "assetId": {"type": "string"},
            "playbackId": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in StreamStatus]},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "profile": {"type": "string"}, "duration": {"type": ["number", "null"]},
            "width": {"type": ["integer", "null"]}, "height": {"type": ["integer", "null"]},
            "manifestUrl": _URL_OR_NULL, "hlsManifestUrl": _URL_OR_NULL,
            "dashManifestUrl": _URL_OR_NULL, "posterUrl": _URL_OR_NULL,
            "packageFormats": {"type": "array", "items": {"type": "string"}},
            "renditions": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "width": {"type": ["integer", "null"]},
                "height": {"type": "integer"}, "bitrate": {"type": "integer"},
                "averageBitrate": {"type": ["integer", "null"]},
                "codec": {"type": "string"}, "audioCodec": {"type": ["string", "null"]},
                "segmentCount": {"type": ["integer", "null"]}}}},
            "access": {"type": "string"}, "tokenTtlSeconds": {"type": "integer"},
            "allowedDomains": {"type": "array", "items": {"type": "string"}},
            "captions": {"type": "array", "items": {"type": "object"}},
            "chapters": {"type": "array", "items": {"type": "object"}},
            "chaptersUrl": _URL_OR_NULL,
            "analytics": {"type": "object", "properties": {
                "events": {"type": "integer"}, "plays": {"type": "integer"},
                "watchTimeSeconds": {"type": "number"}}},
            "error": {"type": ["string", "null"]},
            "createdAt": _TIME, "readyAt": _MAYBE_TIME,
        },
        "required": ["id", "playbackId", "status", "renditions"],
    },
})
_STREAM = _json({"type": "object", "properties": {"stream": _ref("VideoStream")}})
_STREAM_ID = [{"name": "stream_id", "in": "path", "required": True,
               "schema": {"type": "string"}}]
PATHS.update({
    "/api/video/streams": {
        "post": {
            "tags": ["Video streams"], "summary": "Create an HLS/DASH video stream",
            "operationId": "createVideoStream",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("CreateVideoStreamRequest")},
                "multipart/form-data": {"schema": _ref("CreateVideoStreamRequest")}}},
            "responses": {"201": _STREAM, **_errors(400, 401, 404, 413, 503)},
        },
        "get": {
            "tags": ["Video streams"], "summary": "List video streams",
            "operationId": "listVideoStreams",
            "parameters": [*_PAGING, {"name": "status", "in": "query", "schema": {
                "type": "string", "enum": [s.value for s in StreamStatus]}}],
            "responses": {"200": _json({"type": "object", "properties": {
                "streams": {"type": "array", "items": _ref("VideoStream")},
                "pagination": {"type": "object"}}}), **_errors(400, 401)},
        },
    },
    "/api/video/streams/{stream_id}": {
        "get": {"tags": ["Video streams"], "summary": "Get a video stream",
                "operationId": "getVideoStream", "parameters": _STREAM_ID,
                "responses": {"200": _STREAM, **_errors(401, 404)}},
        "patch": {"tags": ["Video streams"], "summary": "Update a stream's metadata",
                  "operationId": "updateVideoStream", "parameters": _STREAM_ID,
                  "requestBody": _json_body("UpdateVideoStreamRequest"),
                  "responses": {"200": _STREAM, **_errors(400, 401, 404)}},
        "delete": {"tags": ["Video streams"],
                   "summary": "Delete a stream with its segments and manifests",
                   "operationId": "deleteVideoStream", "parameters": _STREAM_ID,
                   "responses": {"200": _json({"type": "object", "properties": {
                       "id": {"type": "string"}, "deleted": {"type": "boolean"}}}),
                       **_errors(401, 404)}},
    },
})


# Video streams' playback (convertly/api/playback.py): called by players, with no API key.
_PLAYBACK_QUERY = [
    {"name": "expires", "in": "query", "schema": {"type": "string"},
     "description": "A signed stream's link: when it expires (Unix seconds)."},
    {"name": "token", "in": "query", "schema": {"type": "string"},
     "description": "A signed stream's link: its signature."},
]
_PLAYBACK_BODY = {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                              for media in ("application/vnd.apple.mpegurl",
                                            "application/dash+xml", "video/iso.segment",
                                            "text/vtt", "image/jpeg")}}


def _playback_item(suffix: str) -> dict[str, Any]:
    """The playback route, for files at the top (master.m3u8, a segment, poster.jpg) or in
    a folder (captions/{id}.vtt, thumbnails/{n}.jpg)."""
    path = [{"name": "playback_id", "in": "path", "required": True,
             "schema": {"type": "string"}, "description": "The stream's playbackId."}]
    if suffix:
        path.append({"name": "folder", "in": "path", "required": True,
                     "schema": {"type": "string"}})
    path.append({"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "master.m3u8, manifest.mpd, a media playlist, a segment, "
                 "captions/{id}.vtt, chapters.vtt, poster.jpg, ..."})
    return {
        "get": {
            "tags": ["Video streams"], "summary": "Play a stream: its manifests, segments, "
            "captions, chapters and poster", "operationId": f"playVideoStream{suffix}",
            "security": [], "parameters": path + _PLAYBACK_QUERY,
            "description": "Byte ranges (`Range: bytes=...`) are answered with 206. A signed "
            "stream needs `expires` and `token` (the manifest URLs the API returns carry "
            "them, and a manifest names every URI with them); a stream with allowedDomains "
            "plays only for pages on them (Origin, else Referer).",
            "responses": {"200": {"description": "The file", **_PLAYBACK_BODY},
                          "206": {"description": "Part of the file", **_PLAYBACK_BODY},
                          **_errors(403, 404, 416, 503)},
        },
        "options": {
            "tags": ["Video streams"], "summary": "CORS preflight of the playback route",
            "operationId": f"playVideoStream{suffix}Preflight", "security": [],
            "parameters": path, "responses": {"204": {"description": "The CORS headers"}},
        },
    }


PATHS.update({
    "/video/v1/{playback_id}/{name}": _playback_item(""),
    "/video/v1/{playback_id}/{folder}/{name}": _playback_item("InFolder"),
    "/api/video/playback-events": {
        "post": {
            "tags": ["Video streams"], "summary": "Record a player's event (no API key)",
            "operationId": "recordPlaybackEvent", "security": [],
            "description": "What the SDK's player sends. A session's first `play` is a view; "
            "watch time is how far a playing session advanced. A stream's `analytics` "
            "gives the counts.",
            "requestBody": _json_body("PlaybackEvent"),
            "responses": {"202": _json({"type": "object", "properties": {
                "ok": {"type": "boolean"}}}, "Recorded"),
                **_errors(400, 403, 404, 413, 429, 503)},
        },
        "options": {
            "tags": ["Video streams"], "summary": "CORS preflight of playback events",
            "operationId": "recordPlaybackEventPreflight", "security": [],
            "responses": {"204": {"description": "The CORS headers"}},
        },
    },
})
# A stream's captions, chapters, poster and thumbnails (convertly/api/stream_tracks.py).
PATHS.update({
    "/api/video/streams/{stream_id}/captions": {
        "post": {
            "tags": ["Video streams"], "summary": "Add a caption track (WebVTT)",
            "operationId": "addVideoStreamCaptions", "parameters": _STREAM_ID,
            "description": "The track is named in the stream's HLS master playlist (a "
            "SUBTITLES group) and DASH manifest (a text adaptation set).",
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": _CAPTION_INPUT}}},
            "responses": {"201": {**_STREAM, "description": "Added"},
                          **_errors(400, 401, 404, 409, 413, 503)},
        },
        "delete": {
            "tags": ["Video streams"], "summary": "Remove a caption track",
            "operationId": "removeVideoStreamCaption",
            "parameters": [*_STREAM_ID, {"name": "captionId", "in": "query", "required": True,
                                         "schema": {"type": "string"}}],
            "responses": {"200": _STREAM, **_errors(401, 404, 503)},
        },
    },
    "/api/video/streams/{stream_id}/chapters": {
        "put": {
            "tags": ["Video streams"], "summary": "Replace the chapters (a WebVTT chapters "
            "track, chaptersUrl)", "operationId": "replaceVideoStreamChapters",
            "parameters": _STREAM_ID,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["chapters"], "properties": {"chapters": {
                    "type": "array", "maxItems": 100, "items": {
                        "type": "object", "required": ["title", "start"], "properties": {
                            "title": {"type": "string", "minLength": 1, "maxLength": 200},
                            "start": {"type": "number", "minimum": 0}}}}}}}}},
            "responses": {"200": _STREAM, **_errors(400, 401, 404, 409, 503)},
        },
        "delete": {
            "tags": ["Video streams"], "summary": "Remove a chapter",
            "operationId": "removeVideoStreamChapter",
            "parameters": [*_STREAM_ID, {"name": "chapterId", "in": "query", "required": True,
                                         "schema": {"type": "string"}}],
            "responses": {"200": _STREAM, **_errors(401, 404, 503)},
        },
    },
    "/api/video/streams/{stream_id}/poster": {"post": {
        "tags": ["Video streams"], "summary": "Set the poster: a frame at a time, or an image",
        "operationId": "setVideoStreamPoster", "parameters": _STREAM_ID,
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": {"type": "object", "required": ["timeSeconds"],
                                            "properties": {"timeSeconds": {
                                                "type": "number", "minimum": 0}}}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["poster"],
                                               "properties": {"poster": {
                                                   "type": "string", "format": "binary"}}}},
        }},
        "responses": {"200": _STREAM,
                      **_errors(400, 401, 404, 409, 413, 422, 503)},
    }},
    "/api/video/streams/{stream_id}/thumbnails": {"get": {
        "tags": ["Video streams"], "summary": "Thumbnail candidates: frames spread over the "
        "video to pick a poster from", "operationId": "listVideoStreamThumbnails",
        "parameters": _STREAM_ID,
        "responses": {"200": _json({"type": "object", "properties": {"thumbnails": {
            "type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "timeSeconds": {"type": "number"},
                "url": {"type": "string"}}}}}}),
            **_errors(401, 404, 409, 422, 503)},
    }},
})
SCHEMAS["PlaybackEvent"] = {
    "type": "object", "required": ["playbackId", "sessionId", "event"],
    "properties": {
        "playbackId": {"type": "string", "minLength": 1},
        "sessionId": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        "event": {"type": "string", "enum": ["ready", "play", "pause", "ended", "timeupdate",
                                              "seeked", "error"]},
        "currentTime": {"type": "number", "minimum": 0},
        "duration": {"type": "number", "minimum": 0},
    },
}


def build_spec(tools: ToolRegistry | None = None) -> dict[str, Any]:
    """The document; the media tools' paths come from `tools` (the built-in ones when
    None), one path per tool."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Convertly API (self-hosted)", "version": __version__,
                 "description": "Convert, resize and compress media; wire-compatible with "
                 "Convertly's public API."},
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        "paths": {**PATHS, **toolspec.paths(tools or default_tools())},
        "components": {
            "schemas": {**SCHEMAS, **toolspec.SCHEMAS},
            "responses": {"Error": _json(_ref("Error"), "Error response")},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "API key, `cvly_...`."},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(build_spec(services(request).tools))
