"""Dependencies of the routes, as typed aliases.

They are `async` though they never await: FastAPI runs a plain `def` dependency in its
thread pool, a hop per dependency per request, which cost the submit route about as
much CPU as its database work.
"""

from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from pastools_jobs.audit.service import AuditTrail
from pastools_jobs.config import Settings
from pastools_jobs.datasets.projects import ProjectService
from pastools_jobs.db.engine import Database
from pastools_jobs.schedules.service import ScheduleService
from pastools_jobs.service import JobService
from pastools_jobs.storage.base import Storage
from pastools_jobs.webhooks.service import WebhookService


async def get_service(request: Request) -> JobService:
    return request.app.state.service  # type: ignore[no-any-return]


async def get_project_service(request: Request) -> ProjectService:
    return request.app.state.projects  # type: ignore[no-any-return]


async def get_audit_trail(request: Request) -> AuditTrail:
    return request.app.state.audit  # type: ignore[no-any-return]


async def get_temporal_client(request: Request) -> Client:
    return request.app.state.client  # type: ignore[no-any-return]


async def get_webhook_service(request: Request) -> WebhookService:
    return request.app.state.webhooks  # type: ignore[no-any-return]


async def get_schedule_service(request: Request) -> ScheduleService:
    return request.app.state.schedules  # type: ignore[no-any-return]


async def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


DatabaseDep = Annotated[Database, Depends(get_database)]
ServiceDep = Annotated[JobService, Depends(get_service)]
ProjectServiceDep = Annotated[ProjectService, Depends(get_project_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
AuditTrailDep = Annotated[AuditTrail, Depends(get_audit_trail)]
TemporalClientDep = Annotated[Client, Depends(get_temporal_client)]
WebhookServiceDep = Annotated[WebhookService, Depends(get_webhook_service)]
ScheduleServiceDep = Annotated[ScheduleService, Depends(get_schedule_service)]
