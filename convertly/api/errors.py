"""The one table from error classes to HTTP statuses, and the one function that renders
every error body in Convertly's shape: {"error": "...", "code": "...", "detail": {...}}."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import diskspace, errors
from convertly.logs import REQUEST_ID_HEADER

log = logging.getLogger("convertly.api")

STATUS: dict[type[errors.ConvertlyError], int] = {
    errors.ConvertlyError: 500,
    errors.InvalidRequestError: 400,
    errors.AuthenticationError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.UnsupportedMediaError: 415,
    errors.RangeNotSatisfiableError: 416,
    errors.EncryptedFileError: 422,  # well formed, unreadable without its password
    errors.ProviderUnavailableError: 422,
    errors.ConversionError: 422,
    errors.RateLimitError: 429,
    errors.FeatureUnavailableError: 501,  # Not Implemented: the operator has not set it up
    errors.ServiceUnavailableError: 503,
    errors.StorageFullError: 507,  # Insufficient Storage (RFC 4918): the server's, not the caller's
}


def status_for(exc: errors.ConvertlyError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: errors.ConvertlyError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message, "code": exc.code}
    detail = dict(exc.detail)
    if exc.filename is not None:
        detail.setdefault("filename", exc.filename)
    if detail:
        body["detail"] = detail
    headers = {}
    if isinstance(exc, errors.ServiceUnavailableError) and exc.transient:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.RateLimitError):
        headers.update(exc.headers)
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.RangeNotSatisfiableError):
        headers["Content-Range"] = f"bytes */{exc.size}"
    status = status_for(exc)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="convertly"'
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_convertly_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ConvertlyError)
    return error_response(exc)


_HTTP_ERRORS: dict[int, type[errors.ConvertlyError]] = {
    400: errors.InvalidRequestError,
    401: errors.AuthenticationError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaError,
}


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        response = JSONResponse(
            {"error": f"Method {request.method} is not allowed on {request.url.path}.",
             "code": "METHOD_NOT_ALLOWED"},
            status_code=405, headers=exc.headers,
        )
        return response
    cls = _HTTP_ERRORS.get(exc.status_code, errors.ConvertlyError)
    message = (f"No route {request.url.path}; see /openapi.json."
               if exc.status_code == 404 else None)
    return error_response(cls(message))


async def handle_client_gone(request: Request, exc: Exception) -> Response:
    """A client that closed its connection while sending its request: routine, not a fault
    (what it had sent is already cleaned up). Nobody reads the answer."""
    log.info("%s %s: the client went away before its request was complete",
             request.method, request.url.path)
    return Response(status_code=400)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    if diskspace.is_full(exc):  # a write no layer below translated: still the server's disk
        where = getattr(exc, "filename", None)
        what = (f"the disk holding {where}" if where
                else f"a disk written by {request.method} {request.url.path}")
        return error_response(diskspace.full(what, exc))
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response = error_response(errors.ConvertlyError())
    # Answered outside the middleware that echoes the request id on every other answer.
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response
