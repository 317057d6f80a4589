"""Domain errors, and the one place where they (and the framework's own errors) become HTTP
answers with the body `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from grader.review import ReviewError

log = logging.getLogger("serving")


class ServiceError(Exception):
    """Base of the domain errors; `field` is the dotted path of the field at fault, if one."""

    code = "error"

    def __init__(self, message: str, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class Unauthenticated(ServiceError):
    code = "unauthenticated"


class Forbidden(ServiceError):
    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class TooLarge(ServiceError):
    code = "too_large"


class Invalid(ServiceError):
    code = "invalid"


class GradingFailed(ServiceError):
    code = "grading_failed"


class Unavailable(ServiceError):
    code = "unavailable"


STATUS: dict[type[ServiceError], int] = {
    Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413, Invalid: 422,
    GradingFailed: 500, Unavailable: 503,
}
_HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 422: "invalid"}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    """The error body of every non-2xx answer."""
    return {"error": {"code": code, "message": message, "field": field}}


def _answer(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


def _validation_field(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    """Map any exception to the error body: domain errors by class, framework errors by status."""
    if isinstance(exc, ServiceError):
        return _answer(STATUS.get(type(exc), 500), exc.code, exc.message, exc.field)
    if isinstance(exc, ReviewError):
        return _answer(422, "invalid_review", str(exc), exc.field)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0]
        field = _validation_field(tuple(first.get("loc", ())))
        return _answer(422, "invalid", f"{field or 'request'}: {first.get('msg', 'invalid')}", field)
    if isinstance(exc, StarletteHTTPException):
        return _answer(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), str(exc.detail),
                       headers=getattr(exc, "headers", None))
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _answer(500, "internal", "internal server error")


def install(app: FastAPI) -> None:
    """Route every error through `handle_error`."""
    for kind in (ServiceError, ReviewError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, handle_error)
