"""The dashboard's sign-in: a token exchanged for an HttpOnly, SameSite=Strict cookie."""

import asyncio
from dataclasses import replace
from pathlib import Path

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from pastools_jobs.api.auth import (
    SESSION_COOKIE,
    clear_session_cookie,
    require_same_origin,
    resolve_token,
    set_session_cookie,
)
from pastools_jobs.api.deps import AuditTrailDep, DatabaseDep
from pastools_jobs.api.problems import responses
from pastools_jobs.audit.trail import AuditAction, Channel
from pastools_jobs.auth.tokens import authenticate

router = APIRouter(tags=["session"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=500)


class SessionOut(BaseModel):
    role: str
    project_id: str | None = Field(description="None: every project.")


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login_page(request: Request) -> HTMLResponse:
    """Open to all: it only asks for a token (or reads one from the link's fragment)."""
    return templates.TemplateResponse(request, "login.html", {})


@router.post(
    "/api/session", response_model=SessionOut, responses=responses(400, 401, 403, 413, 422)
)
async def sign_in(
    body: SignIn, request: Request, response: Response, db: DatabaseDep, trail: AuditTrailDep
) -> SessionOut:
    """Check the token and keep it in the session cookie. Same-origin only, so that no
    other site can sign a visitor in under a token of its choosing."""
    require_same_origin(request)
    principal = replace(await resolve_token(db, body.token), channel=Channel.DASHBOARD)
    await trail.record(principal.actor, AuditAction.SIGN_IN, project_id=principal.project_id)
    set_session_cookie(response, request, body.token)
    return SessionOut(role=principal.role, project_id=principal.project_id)


@router.delete("/api/session", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403))
async def sign_out(request: Request, db: DatabaseDep, trail: AuditTrailDep) -> Response:
    """Always clears the cookie; recorded under the session's token while it is valid."""
    require_same_origin(request)
    session = request.cookies.get(SESSION_COOKIE)
    signed_in = None if session is None else await asyncio.to_thread(authenticate, db, session)
    if signed_in is not None:
        principal = replace(signed_in, channel=Channel.DASHBOARD)
        await trail.record(principal.actor, AuditAction.SIGN_OUT, project_id=principal.project_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, request)
    return response
