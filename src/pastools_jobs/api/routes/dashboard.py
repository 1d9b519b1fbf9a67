"""The jobs dashboard page and its live feed (Server-Sent Events)."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from pastools_jobs.api.auth import CSRF_HEADER, PrincipalDep, csrf_token, signed_in
from pastools_jobs.api.deps import DatabaseDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.feed import FeedMessage, JobFeed
from pastools_jobs.job_types import JOB_WORKFLOWS

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
# Keep the parameters in the order their models declare them: the form shows them so.
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": False}

KEEPALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 2000


def _job_types() -> list[dict[str, Any]]:
    """What the submit form needs to build its fields, straight from the registry."""
    return [
        {
            "name": wf.job_type,
            "description": wf.description,
            "schema": wf.params_model.model_json_schema(),
        }
        for wf in JOB_WORKFLOWS
    ]


@router.get("/", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def dashboard(
    request: Request, settings: SettingsDep, db: DatabaseDep
) -> HTMLResponse | RedirectResponse:
    """Signed-out visitors go to /login; the page gets the CSRF token of its session."""
    session = await signed_in(request, settings, db)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "job_types": _job_types(),
            "statuses": ["queued", "running", "completed", "failed", "cancelled"],
            "csrf_header": CSRF_HEADER,
            "csrf_token": csrf_token(session) if session else "",
            "auth_enabled": settings.auth_enabled,
        },
    )


@router.get(
    "/api/jobs/events",
    tags=["jobs"],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "An endless stream."},
        **responses(401),
    },
)
async def job_events(request: Request, principal: PrincipalDep) -> StreamingResponse:
    """Live changes: `jobs` events carry changed jobs, `stats` events fresh counts;
    only of the projects the token sees."""
    feed: JobFeed = request.app.state.feed
    return StreamingResponse(
        _stream(feed, principal.project_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(feed: JobFeed, project_id: str | None) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MILLISECONDS}\n: connected\n\n"
    messages = aiter(feed.subscribe(project_id))
    try:
        while True:
            try:
                message = await asyncio.wait_for(anext(messages), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            except StopAsyncIteration:
                return
            yield _event(message)
    finally:
        await messages.aclose()  # type: ignore[attr-defined]


def _event(message: FeedMessage) -> str:
    return f"event: {message.event}\ndata: {json.dumps(message.data)}\n\n"
