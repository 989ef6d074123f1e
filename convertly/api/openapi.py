"""The OpenAPI 3.1 description of every route. Its `/api/jobs` request schema is a superset
of Convertly's published `CreateJobRequest`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import __version__
from convertly.models import CompressMode, JobStatus, OutputFormat, ResizePreset


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _multipart(schema_name: str) -> dict[str, Any]:
    return {"required": True,
            "content": {"multipart/form-data": {"schema": _ref(schema_name)}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": "#/components/responses/Error"} for c in codes}


_BOOL = {"type": "string", "enum": ["true", "false"]}
_ARRAY = {"type": "string", "description": "JSON array with one entry per file."}

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
    "ConvertRequest": {
        "type": "object",
        "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "minItems": 1,
                      "description": "One or more files (`file` is accepted too)."},
            "format": _ref("OutputFormat"),
            "formats": _ARRAY,
            "compression": {"type": "integer", "minimum": 1, "maximum": 100, "default": 82},
            "compressions": _ARRAY,
            "resize": _ref("ResizeMode"),
            "resizes": _ARRAY,
            "resizeWidth": {"type": "integer", "minimum": 1},
            "resizeHeight": {"type": "integer", "minimum": 1},
            "resizeWidths": {"type": "string", "description": "JSON array of widths or null."},
            "resizeHeights": {"type": "string",
                              "description": "JSON array of heights or null."},
            "autoOrient": {**_BOOL, "default": "true"},
            "autoOrients": {"type": "string", "description": "JSON array of booleans."},
            "mono": {**_BOOL, "default": "false",
                     "description": "Monochrome raster-to-SVG tracing."},
            "monos": {"type": "string", "description": "JSON array of booleans."},
            "saveToStorage": {**_BOOL, "default": "false"},
        },
        "required": ["files"],
    },
    "CompressRequest": {
        "type": "object",
        "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                      "minItems": 1},
            "mode": {"type": "string", "enum": [m.value for m in CompressMode],
                     "default": "quality"},
            "quality": {"type": "integer", "minimum": 1, "maximum": 100, "default": 82},
            "targetBytes": {"type": "integer", "minimum": 1},
            "lossless": {**_BOOL, "default": "false"},
            "stripMetadata": {**_BOOL, "default": "false"},
            "saveToStorage": {**_BOOL, "default": "false"},
        },
        "required": ["files"],
    },
    "CreateJobRequest": {
        "allOf": [
            _ref("ConvertRequest"),
            {
                "type": "object",
                "properties": {
                    "jobType": {"type": "string", "enum": ["convert", "compress"],
                                "default": "convert"},
                    "createArchive": {**_BOOL, "default": "false"},
                    "archiveFormat": {"type": "string", "enum": ["zip", "tar", "tgz", "7z"],
                                      "default": "zip"},
                    "saveToStorage": {"type": "string", "enum": ["true", "false"],
                                      "description": "Jobs always keep sources and outputs "
                                      "in storage; the field is accepted for compatibility."},
                    "mode": {"type": "string", "enum": [m.value for m in CompressMode]},
                    "modes": _ARRAY,
                    "quality": {"type": "integer", "minimum": 1, "maximum": 100},
                    "targetBytes": {"type": "integer", "minimum": 1},
                    "targetByteValues": _ARRAY,
                    "lossless": _BOOL,
                    "losslessValues": _ARRAY,
                    "stripMetadata": _BOOL,
                    "stripMetadataValues": _ARRAY,
                },
            },
        ],
    },
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
}

_JOB_ID = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}]

PATHS: dict[str, Any] = {
    "/api/convert": {"post": {
        "tags": ["Convert"], "summary": "Convert files synchronously", "operationId": "convert",
        "requestBody": _multipart("ConvertRequest"),
        "responses": {"200": _json(_ref("ConvertResponse")),
                      **_errors(400, 401, 413, 415, 422, 503)},
    }},
    "/api/compress": {"post": {
        "tags": ["Convert"], "summary": "Compress files, keeping their format",
        "operationId": "compress", "requestBody": _multipart("CompressRequest"),
        "responses": {"200": _json(_ref("ConvertResponse")),
                      **_errors(400, 401, 413, 415, 422, 503)},
    }},
    "/api/jobs": {
        "post": {
            "tags": ["Jobs"], "summary": "Create an async job", "operationId": "createJob",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                            "description": "Same key and tenant within 24 h returns the "
                            "same job."}],
            "requestBody": _multipart("CreateJobRequest"),
            "responses": {"200": _json({"type": "object", "properties": {
                "jobId": {"type": "string", "format": "uuid"},
                "status": {"type": "string"}}, "required": ["jobId", "status"]},
                "Queued job"), **_errors(400, 401, 403, 413, 503)},
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
                "parameters": _JOB_ID,
                "responses": {"200": _json(_ref("Job")), **_errors(401, 404)}},
        "delete": {"tags": ["Jobs"], "summary": "Cancel a pending job",
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
    "/openapi.json": {"get": {
        "tags": ["Meta"], "summary": "This document", "operationId": "openapi",
        "security": [], "responses": {"200": _json({"type": "object"})},
    }},
    "/": {"get": {
        "tags": ["Meta"], "summary": "Service index", "operationId": "index", "security": [],
        "responses": {"200": _json({"type": "object"})},
    }},
}


def build_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Convertly API (self-hosted)", "version": __version__,
                 "description": "Convert, resize and compress media; wire-compatible with "
                 "Convertly's public API."},
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {"Error": _json(_ref("Error"), "Error response")},
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "API key, `cvly_...`."},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(build_spec())
