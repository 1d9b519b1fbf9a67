"""The dashboard's sign-in: a token exchanged for an HttpOnly, SameSite=Strict cookie."""

from pathlib import Path

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from pastools_jobs.api.auth import (
    clear_session_cookie,
    require_same_origin,
    resolve_token,
    set_session_cookie,
)
from pastools_jobs.api.deps import DatabaseDep
from pastools_jobs.api.problems import responses

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
    body: SignIn, request: Request, response: Response, db: DatabaseDep
) -> SessionOut:
    """Check the token and keep it in the session cookie. Same-origin only, so that no
    other site can sign a visitor in under a token of its choosing."""
    require_same_origin(request)
    principal = await resolve_token(db, body.token)
    set_session_cookie(response, request, body.token)
    return SessionOut(role=principal.role, project_id=principal.project_id)


@router.delete("/api/session", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403))
async def sign_out(request: Request) -> Response:
    require_same_origin(request)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, request)
    return response
