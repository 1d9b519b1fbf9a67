"""/metrics: the API process's metrics for Prometheus (an admin token: they cover every
project)."""

import asyncio

from fastapi import APIRouter, Response

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.problems import responses
from pastools_jobs.auth.principal import Role
from pastools_jobs.metrics import CONTENT_TYPE, exposition

router = APIRouter(tags=["metrics"], dependencies=[authenticated], responses=responses(401, 403))


@router.get("/metrics", response_class=Response)
async def metrics(principal: PrincipalDep) -> Response:
    """Prometheus text format: jobs, mirror, HTTP and database pool metrics."""
    principal.require(Role.ADMIN)
    return Response(await asyncio.to_thread(exposition), media_type=CONTENT_TYPE)
