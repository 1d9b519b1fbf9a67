"""The principal of each request, resolved once: from a bearer token, or from the
dashboard's sign-in cookie, whose state-changing requests must prove they come
from our own page (same origin and the session's CSRF token in a header).

A bearer token is never sent by a browser on its own, so it needs no CSRF check.
"""

import asyncio
import hashlib
import hmac
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pastools_jobs.api.deps import DatabaseDep, ServiceDep, SettingsDep
from pastools_jobs.audit.trail import Channel
from pastools_jobs.auth.principal import UNAUTHENTICATED_ADMIN, Principal
from pastools_jobs.auth.tokens import authenticate
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import Forbidden, NotAuthenticated

SESSION_COOKIE = "pastools_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="A token from `pastools tokens create` (`pst_…`).",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def resolve_token(db: Database, token: str) -> Principal:
    principal = await asyncio.to_thread(authenticate, db, token)
    if principal is None:
        raise NotAuthenticated("The API token is unknown, malformed or revoked.")
    return principal


async def get_principal(
    request: Request, credentials: BearerCredentials, settings: SettingsDep, db: DatabaseDep
) -> Principal:
    if not settings.auth_enabled:
        return UNAUTHENTICATED_ADMIN
    if credentials is not None:
        return await resolve_token(db, credentials.credentials)
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        raise NotAuthenticated()
    principal = await resolve_token(db, session)
    if request.method not in SAFE_METHODS:
        require_same_origin(request)
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), csrf_token(session)):
            raise Forbidden("The request lacks this session's CSRF token.")
    return replace(principal, channel=Channel.DASHBOARD)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
authenticated = Depends(get_principal)
"""For a router's `dependencies`: no route of it is reachable without a principal."""


async def visible_job(service: ServiceDep, principal: PrincipalDep, job_id: str) -> Job:
    """The job, or 404 exactly as for a missing id when it is in a project not visible."""
    job = await service.get(job_id)
    principal.require_job(job)
    return job


def require_same_origin(request: Request) -> None:
    """Browsers send Origin and Sec-Fetch-Site on cross-site requests: refuse those."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin != own:
        raise Forbidden("Cross-origin requests may not use the sign-in cookie.")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden("Cross-site requests may not use the sign-in cookie.")


def csrf_token(session: str) -> str:
    """Derived from the session's secret: a page of ours can be given it, no other site can
    compute it, and the server keeps no state for it."""
    return hashlib.sha256(b"pastools-csrf\0" + session.encode()).hexdigest()


async def signed_in(request: Request, settings: SettingsDep, db: DatabaseDep) -> str | None:
    """The dashboard's session token if the cookie holds a valid one (or auth is off)."""
    if not settings.auth_enabled:
        return ""
    session = request.cookies.get(SESSION_COOKIE)
    if session is None or await asyncio.to_thread(authenticate, db, session) is None:
        return None
    return session


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
