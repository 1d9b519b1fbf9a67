"""The jobs dashboard page and its live feed (Server-Sent Events)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from pastools_jobs.api.auth import CSRF_HEADER, PrincipalDep, csrf_token, signed_in
from pastools_jobs.api.deps import DatabaseDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.feed import FeedMessage, JobFeed
from pastools_jobs.job_catalog import JOB_TYPES

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
# Keep the parameters in the order their models declare them: the form shows them so.
templates.env.policies["json.dumps_kwargs"] = {"sort_keys": False}

RECONNECT_MILLISECONDS = 2000


def _job_types() -> list[dict[str, Any]]:
    """What the submit form needs to build its fields, straight from the registry."""
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "schema": spec.params_model.model_json_schema(),
            "submittable": spec.submittable,
        }
        for spec in JOB_TYPES
    ]


@router.get("/", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def dashboard(
    request: Request, settings: SettingsDep, db: DatabaseDep
) -> HTMLResponse | RedirectResponse:
    statuses = ["queued", "running", "completed", "failed", "cancelled"]
    context = {"job_types": _job_types(), "statuses": statuses}
    return await _page(request, settings, db, "dashboard.html", context)


@router.get("/schedules", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def schedules_page(
    request: Request, settings: SettingsDep, db: DatabaseDep
) -> HTMLResponse | RedirectResponse:
    """A project's schedules: list, pause, unpause, trigger, delete, and a form to add one."""
    context = {"job_types": [t for t in _job_types() if t["submittable"]]}
    return await _page(request, settings, db, "schedules.html", context)


async def _page(
    request: Request,
    settings: Settings,
    db: Database,
    template: str,
    context: dict[str, Any],
) -> HTMLResponse | RedirectResponse:
    """Signed-out visitors go to /login; the page gets the CSRF token of its session."""
    session = await signed_in(request, settings, db)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    return templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "csrf_header": CSRF_HEADER,
            "csrf_token": csrf_token(session),
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
async def job_events(
    request: Request, principal: PrincipalDep, settings: SettingsDep
) -> StreamingResponse:
    """Live changes: `jobs` events carry changed jobs, `stats` events fresh counts;
    only of the projects the token sees, and only while the token is valid."""
    feed: JobFeed = request.app.state.feed
    messages = feed.subscribe(principal.project_id, principal.token_id)
    return StreamingResponse(
        _stream(messages, settings.feed_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(
    messages: AsyncGenerator[FeedMessage, None], keepalive_seconds: float
) -> AsyncIterator[str]:
    """One pending read of the subscription, waited on with a timeout: a timeout that
    cancelled the read itself (`wait_for`) would close the subscription with it."""
    yield f"retry: {RECONNECT_MILLISECONDS}\n: connected\n\n"
    pending = asyncio.ensure_future(anext(messages, None))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=keepalive_seconds)
            if not done:
                yield ": keepalive\n\n"
                continue
            message = pending.result()
            if message is None:
                return
            yield _event(message)
            pending = asyncio.ensure_future(anext(messages, None))
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        await messages.aclose()


def _event(message: FeedMessage) -> str:
    return f"event: {message.event}\ndata: {json.dumps(message.data)}\n\n"
