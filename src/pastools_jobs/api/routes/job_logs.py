"""/api/jobs/{id}/logs: what a job's activities logged, as JSON pages or a text file."""

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from pastools_jobs.api.auth import PrincipalDep, authenticated, visible_job
from pastools_jobs.api.deps import ServiceDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import JobId, JobLogLineOut, JobLogOut
from pastools_jobs.job_logs.store import LogPage, StoredLine
from pastools_jobs.service import JobService

router = APIRouter(
    prefix="/api/jobs",
    tags=["jobs"],
    responses=responses(401, 404, 422, 503),
    dependencies=[authenticated],
)

MAX_PAGE = 10_000
TEXT_PAGE = 1_000
"""A text download is read this many lines at a time: its memory does not grow with the cap."""

text_download: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobLogOut"}},
            "text/plain": {},
        },
        "description": "A page of lines, or with `format=text` (or `Accept: text/plain`) "
        "every kept line as a file.",
    }
}


@router.get("/{job_id}/logs", response_model=JobLogOut, responses=text_download)
async def job_logs(
    job_id: JobId,
    service: ServiceDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0, description="Only lines with a greater seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    format: Annotated[Literal["json", "text"] | None, Query()] = None,
    accept: Annotated[str | None, Header()] = None,
) -> JobLogOut | StreamingResponse:
    """The lines the job's activities logged at INFO and above, oldest first: the newest
    `PASTOOLS_JOB_LOG_LINES` of them are kept, `dropped` counts the older ones."""
    job = await visible_job(service, principal, job_id)
    if format == "text" or (format is None and _prefers_text(accept)):
        # The first page is read here: a database that cannot answer is a 503, not a cut file.
        first = await service.log_page(job.id, after, TEXT_PAGE)
        return StreamingResponse(
            _text(service, job.id, first, with_dropped=after == 0),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job.id}.log"'},
        )
    page = await service.log_page(job.id, after, limit)
    full = len(page.lines) == limit
    return JobLogOut(
        job_id=job.id,
        lines=[_line_out(line) for line in page.lines],
        dropped=page.dropped,
        next_after=page.lines[-1].seq if full else None,
    )


def _prefers_text(accept: str | None) -> bool:
    return accept is not None and accept.split(",")[0].split(";")[0].strip() == "text/plain"


def _line_out(line: StoredLine) -> JobLogLineOut:
    return JobLogLineOut.model_validate(line, from_attributes=True)


async def _text(
    service: JobService, job_id: str, page: LogPage, *, with_dropped: bool
) -> AsyncIterator[str]:
    """One line per line logged: time, level, attempt, message (its own line breaks kept
    apart by indenting them)."""
    if page.dropped and with_dropped:
        yield f"# {page.dropped} earlier lines were not kept\n"
    while page.lines:
        yield "".join(_text_line(line) for line in page.lines)
        if len(page.lines) < TEXT_PAGE:
            return
        page = await service.log_page(job_id, page.lines[-1].seq, TEXT_PAGE)


def _text_line(line: StoredLine) -> str:
    at = line.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = line.message.replace("\n", "\n    ")
    return f"{at} {line.level} attempt {line.attempt}: {message}\n"
