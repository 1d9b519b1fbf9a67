"""POST /api/projects/{id}/uploads: a file for an import job, streamed into the
project's import sources."""

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import AuditTrailDep, ProjectServiceDep, SettingsDep, StorageDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import ProjectId
from pastools_jobs.audit.trail import AuditAction
from pastools_jobs.auth.principal import Role
from pastools_jobs.datasets.uploads import store_upload

router = APIRouter(
    prefix="/api/projects",
    tags=["imports"],
    responses=responses(401, 403, 404, 413, 422, 503),
    dependencies=[authenticated],
)


class UploadOut(BaseModel):
    source: str = Field(description="Pass as `params.source` of an import job in this project.")
    filename: str
    bytes: int


@router.post(
    "/{project_id}/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload(
    project_id: ProjectId,
    request: Request,
    settings: SettingsDep,
    storage: StorageDep,
    projects: ProjectServiceDep,
    principal: PrincipalDep,
    trail: AuditTrailDep,
) -> UploadOut:
    """Multipart with the file in a field named `file`; 413 past the size limit.

    Operator or admin of the project: uploads are for its import jobs, which only they
    may submit, and only its own jobs can read the file."""
    principal.require_project(project_id, Role.OPERATOR)
    await projects.require(project_id)  # a file for a project that is not there is lost
    stored = await store_upload(
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        request.stream(),
        storage,
        project_id,
        settings.upload_max_bytes,
    )
    details = {"source": stored.source, "filename": stored.filename, "bytes": stored.bytes}
    await trail.record(
        principal.actor, AuditAction.PROJECT_UPLOAD, project_id=project_id, details=details
    )
    return UploadOut(source=stored.source, filename=stored.filename, bytes=stored.bytes)
