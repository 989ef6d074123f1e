"""The OpenAPI description of the media tools, from their declarations: one path per tool
(`POST /api/media/<name>`, its form fields from the tool's `params`) and
`POST /api/files/{file_id}/tools`."""

from __future__ import annotations

from typing import Any

from convertly.converters.tools.base import Tool
from convertly.converters.tools.registry import ToolRegistry
from convertly.transforms.table import Param, ParamKind

_REF_ERROR = {"$ref": "#/components/responses/Error"}
_TRUE_FALSE = {"type": "string", "enum": ["true", "false"]}
# 501: a tool the operator has not set up (remove-background without a model).
TOOL_ERRORS = (400, 401, 403, 404, 413, 415, 422, 429, 501, 503)

# The request's own fields, the same on every tool's route.
REQUEST_PROPERTIES: dict[str, Any] = {
    "file": {"type": "string", "format": "binary",
             "description": "The source file (`files` is accepted too)."},
    "sourceUrl": {"type": "string", "format": "uri",
                  "description": "Remote HTTP(S) source, instead of `file`."},
    "async": {**_TRUE_FALSE, "default": "false",
              "description": "true: queue the tool as a job and answer {jobId, status, tool} "
                             "at once; it ends with a media.tool.completed or "
                             "media.tool.failed webhook event."},
    "background": {**_TRUE_FALSE, "description": "Alias for async=true (on a tool with a "
                   "`background` colour option, any other value is that colour)."},
    "saveToStorage": {**_TRUE_FALSE, "default": "false",
                      "description": "Keep the upload and the output in storage."},
    "callbackUrl": {"type": "string", "format": "uri",
                    "description": "With async=true: where this job's events are sent."},
    "callbackSecret": {"type": "string", "minLength": 16, "maxLength": 256,
                       "description": "Signs the callback's events."},
}


def param_schema(param: Param) -> dict[str, Any]:
    """The form field of one tool parameter (every value arrives as text)."""
    schema: dict[str, Any]
    match param.kind:
        case ParamKind.INTEGER if param.choices:
            schema = {"anyOf": [{"type": "integer", "minimum": param.low,
                                 "maximum": param.high},
                                {"type": "string", "enum": list(param.choices)}]}
        case ParamKind.INTEGER:
            schema = {"type": "integer", "minimum": param.low, "maximum": param.high}
        case ParamKind.NUMBER:
            schema = {"type": "number", "minimum": param.low, "maximum": param.high}
        case ParamKind.BOOLEAN:
            schema = dict(_TRUE_FALSE)
        case ParamKind.CHOICE:
            schema = {"type": "string", "enum": list(param.choices)}
        case ParamKind.FILE:
            schema = {"type": "string", "description": "A stored file's id, or the file "
                      "itself uploaded in this field."}
        case _:
            schema = {"type": "string"}
            if param.kind is ParamKind.TEXT and param.high is not None:
                schema["maxLength"] = int(param.high)
    schema = {k: v for k, v in schema.items() if v is not None}
    # schema["x-kind"] = param.kind.value  # how the value is read (the dashboard's controls)
    schema["description"] = (f"{param.help} (also: {', '.join(param.aliases)})"
                             if param.aliases else param.help)
    if param.default is not None:
        default = param.default
        schema["default"] = str(default).lower() if isinstance(default, bool) else default
    return schema


def request_schema(tool: Tool) -> dict[str, Any]:
    """The multipart schema of `POST /api/media/<tool>`."""
    return {"type": "object",
            "properties": {**REQUEST_PROPERTIES,
                           **{p.name: param_schema(p) for p in tool.params}},
            "additionalProperties": False}


def _operation_id(tool: Tool) -> str:
    first, *rest = tool.name.split("-")
    return "mediaTool" + first.title() + "".join(part.title() for part in rest)


def paths(tools: ToolRegistry) -> dict[str, Any]:
    """Every tool's path, and the stored-file route."""
    out: dict[str, Any] = {}
    for tool in tools:
        out[f"/api/media/{tool.name}"] = {"post": {
            "tags": ["Media tools"], "summary": tool.summary,
            "operationId": _operation_id(tool),
            "description": "Takes: " + ", ".join(sorted(k.value for k in tool.sources)) + ".",
            # The tool's own fields and how each is read (the dashboard's controls).
            "x-params": {p.name: p.kind.value for p in tool.params},
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": request_schema(tool)}}},
            "responses": {
                "200": {"description": "The tool's output (files with download links; "
                                       "facts, for a tool that reports some)",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/ToolResponse"}}}},
                "202": {"description": "Queued (async=true)",
                        "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/QueuedTool"}}}},
                **{str(c): _REF_ERROR for c in TOOL_ERRORS},
            },
        }}
    out["/api/files/{file_id}/tools"] = {"post": {
        "tags": ["Media tools"], "summary": "Run a media tool against a stored file",
        "operationId": "runToolOnStoredFile",
        "parameters": [{"name": "file_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["tool"], "additionalProperties": False,
            "properties": {
                "tool": {"type": "string", "enum": tools.names()},
                "params": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "The fields the tool's /api/media route takes."},
                "preview": {"type": "boolean", "default": False,
                            "description": "Answer with a data: URL and store nothing."},
                "watermarkLogoDataUrl": {"type": "string",
                                         "description": "A data: URL of the tool's image "
                                                        "option (the watermark's logo)."},
            }}}}},
        "responses": {
            "200": {"description": "The new stored file (beside the source), or the preview",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/StoredFileToolResponse"}}}},
            **{str(c): _REF_ERROR for c in TOOL_ERRORS},
        },
    }}
    return out


SCHEMAS: dict[str, Any] = {
    "ToolResponse": {
        "type": "object",
        "properties": {
            "tool": {"type": "string"},
            "files": {"type": "array", "items": {"$ref": "#/components/schemas/ConvertedFile"}},
        },
        "required": ["tool", "files"],
        "additionalProperties": True,
        "description": "A tool that reports facts adds them beside `files` (inspect: `media`).",
    },
    "QueuedTool": {
        "type": "object",
        "properties": {"jobId": {"type": "string", "format": "uuid"},
                       "status": {"type": "string"}, "tool": {"type": "string"}},
        "required": ["jobId", "status", "tool"],
    },
    "StoredFileToolResponse": {
        "type": "object",
        "properties": {
            "tool": {"type": "string"},
            "file": {"$ref": "#/components/schemas/StoredFile"},
            "preview": {"type": "object", "properties": {
                "dataUrl": {"type": "string"}, "mimeType": {"type": "string"},
                "sizeBytes": {"type": "integer"}, "width": {"type": ["integer", "null"]},
                "height": {"type": ["integer", "null"]}}},
        },
        "required": ["tool"],
        "additionalProperties": True,
    },
}
