"""Errors as RFC 9457 problem details (`application/problem+json`), never a stack trace.

Every error response, whether raised by a route, by validation, or by the database, is a
`Problem`. Database errors a client can cause (a duplicate code, a reference to a missing row,
a value out of range) become 409 or 422 with PostgreSQL's one-line message; anything unexpected
is logged with its traceback and answered with a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hazmon.auth import AuthError
from hazmon.catalogue import CatalogueError
from registry import HazardError
from rules import RulesError

log = logging.getLogger("hazmon.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemError(BaseModel):
    """One invalid part of a request."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str = ""
    errors: list[ProblemError] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting `statuses` as problem details."""
    return {
        status: {
            "model": Problem,
            "description": _TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[ProblemError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem details response for `request`."""
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI answers any failure to decode a body with a bare 400 raised `from` it; this one
        # is Python's JSON decoder giving up on a body nested some 1000 levels deep
        detail = "the JSON body is nested too deeply to read"
    return problem(request, exc.status_code, detail, headers=dict(exc.headers or {}) or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [ProblemError(loc=list(e["loc"]), msg=str(e["msg"])) for e in exc.errors()]
    summary = "; ".join(f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" for e in errors[:5])
    return problem(request, 422, f"invalid request: {summary}", errors=errors)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = 409 if isinstance(exc, HazardError) else 422
    detail = "a date or number is out of range" if isinstance(exc, OverflowError) else str(exc)
    return problem(request, status, detail)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, psycopg.Error)
    # the server's one-line message; errors raised by psycopg itself (a NUL byte in text) have
    # none, and their own text is one line without internals
    first_line = next(iter(str(exc).splitlines()), "")
    message = exc.diag.message_primary or first_line or type(exc).__name__
    detail = exc.diag.message_detail
    text = f"{message} ({detail})" if detail else message
    if isinstance(exc, psycopg.errors.IntegrityError):
        return problem(request, 409, f"conflicts with the stored data: {text}")
    if isinstance(exc, psycopg.errors.DataError):
        return problem(request, 422, f"invalid value: {text}")
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return problem(request, 503, "the query took too long; narrow the range or filters")
    if isinstance(exc, psycopg.OperationalError):
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return problem(request, 503, "the database is unavailable; retry later")
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled error",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"path": request.url.path},
    )
    return problem(request, 500, "internal error; it has been logged")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem details response."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HazardError, _domain_error)
    app.add_exception_handler(CatalogueError, _domain_error)
    app.add_exception_handler(AuthError, _domain_error)
    app.add_exception_handler(OverflowError, _domain_error)
    app.add_exception_handler(RulesError, _domain_error)
    app.add_exception_handler(psycopg.Error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
