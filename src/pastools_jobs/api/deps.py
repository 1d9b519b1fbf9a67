"""Dependencies of the routes, as typed aliases."""

from typing import Annotated

from fastapi import Depends, Request

from pastools_jobs.config import Settings
from pastools_jobs.service import JobService


def get_service(request: Request) -> JobService:
    return request.app.state.service  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


ServiceDep = Annotated[JobService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
