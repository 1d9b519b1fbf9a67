"""RFC 9457 problem details: every error the API returns, mapped in one place."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from temporalio.service import RPCError

from pastools_jobs.api.request_ids import REQUEST_ID_HEADER
from pastools_jobs.domain import (
    ArtifactNotFound,
    Forbidden,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidJobInput,
    InvalidParameters,
    InvalidProjectId,
    InvalidSchedule,
    JobError,
    JobNotFound,
    NotAuthenticated,
    PayloadTooLarge,
    ProjectExists,
    ProjectNotFound,
    ScheduleExists,
    ScheduleNotFound,
    SourceNotFound,
    StorageMisconfigured,
    StorageUnavailable,
    TemporalUnavailable,
    UnresolvableWebhookHost,
    UnsafeSource,
    UnsafeWebhookUrl,
    WebhookNotFound,
)
from pastools_jobs.logs import REQUEST_ID
from pastools_jobs.temporal import is_unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS_OF: dict[type[JobError], int] = {
    NotAuthenticated: 401,
    Forbidden: 403,
    JobNotFound: 404,
    ProjectNotFound: 404,
    ArtifactNotFound: 404,
    WebhookNotFound: 404,
    ScheduleNotFound: 404,
    IllegalTransition: 409,
    ProjectExists: 409,
    ScheduleExists: 409,
    InvalidJobInput: 422,
    InvalidParameters: 422,
    InvalidProjectId: 422,
    InvalidSchedule: 422,
    IdempotencyKeyReused: 422,
    UnsafeWebhookUrl: 422,
    UnresolvableWebhookHost: 422,
    UnsafeSource: 400,
    SourceNotFound: 400,
    PayloadTooLarge: 413,
    TemporalUnavailable: 503,
    StorageUnavailable: 503,
    StorageMisconfigured: 503,
}


class Problem(BaseModel):
    """RFC 9457 problem details; 422s also list the fields at fault in `errors`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems a route can answer with."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": _WHY[status]}
        for status in statuses
    }


_WHY = {
    400: "The body cannot be parsed, or the import source is outside the import directory"
    " or missing.",
    401: "No valid API token (or sign-in cookie).",
    403: "The token's role does not allow this, or a cross-site request used the cookie.",
    413: "The request body is larger than the configured limit.",
    404: "No such job, project, record, webhook or schedule.",
    409: "The job's status does not allow this, or the project or schedule exists.",
    422: "Invalid input, or a webhook URL the platform refuses to call.",
    503: "Temporal, the database or the file storage is unreachable.",
}


RETRY_AFTER_SECONDS = 5
"""What a 503 asks clients to wait: outages the platform rides out last seconds."""
_TITLE = {413: PayloadTooLarge.title}
_DETAIL = {
    404: "There is nothing at this address.",
    405: "This address does not accept this method.",
}
"""Framework errors in our words (their own detail is only the status phrase)."""


def problem(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    if (request_id := REQUEST_ID.get()) is not None:
        headers = {REQUEST_ID_HEADER: request_id, **(headers or {})}
    return JSONResponse(
        {**body, **extensions}, status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


# RFC 6750: a 401 names the scheme the client should use.
_HEADERS_OF: dict[type[JobError], dict[str, str]] = {
    NotAuthenticated: {"WWW-Authenticate": 'Bearer realm="pastools"'},
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(JobError)
    async def job_error(request: Request, error: JobError) -> JSONResponse:
        status = _STATUS_OF.get(type(error), 400)
        fields = {} if error.errors is None else {"errors": error.errors}
        return problem(status, error.title, str(error), _HEADERS_OF.get(type(error)), **fields)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
            for e in error.errors()
        ]
        return problem(
            422, "Invalid request", "The request does not match the API's schema.", errors=errors
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        title = _TITLE.get(error.status_code) or HTTPStatus(error.status_code).phrase
        detail = _DETAIL.get(error.status_code, str(error.detail))
        return problem(error.status_code, title, detail, headers=error.headers)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        if _is_outage(error):
            return _database_unavailable(request, error)
        return _internal_error(request)

    # Every connection busy on a database that does not answer: an outage as well.
    @app.exception_handler(PoolTimeout)
    async def database_stuck(request: Request, error: PoolTimeout) -> JSONResponse:
        return _database_unavailable(request, error)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, error: RPCError) -> JSONResponse:
        if is_unavailable(error):
            return problem(503, TemporalUnavailable.title, str(TemporalUnavailable()))
        log.error("Temporal refused a request on %s: %s", request.url.path, error)
        return problem(502, "Temporal error", "Temporal refused the request.")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        return _internal_error(request)


def _internal_error(request: Request) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)
    return problem(500, "Internal error", "The server failed; the error has been logged.")


def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    # The driver's message, without the SQL that SQLAlchemy appends to it.
    cause = str(getattr(error, "orig", None) or error).partition("\n")[0]
    log.warning("database unavailable on %s: %s", request.url.path, cause)
    return problem(503, "Database unavailable", "The jobs database cannot be reached.")


def _is_outage(error: DBAPIError) -> bool:
    """Lost or refused connections and a locked database: worth a retry, unlike bad SQL."""
    return isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated
