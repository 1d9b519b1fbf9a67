"""POST /api/uploads: a file for an import job, streamed into the import directory."""

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.auth.principal import Role
from pastools_jobs.datasets.uploads import store_upload

router = APIRouter(
    prefix="/api/uploads",
    tags=["imports"],
    responses=responses(401, 403, 413, 422, 503),
    dependencies=[authenticated],
)


class UploadOut(BaseModel):
    source: str = Field(description="Pass as `params.source` of an import job.")
    filename: str
    bytes: int


@router.post(
    "",
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
async def upload(request: Request, settings: SettingsDep, principal: PrincipalDep) -> UploadOut:
    """Multipart with the file in a field named `file`; 413 past the size limit.

    Operator or admin: uploads are for import jobs, which only they may submit."""
    principal.require(Role.OPERATOR)
    stored = await store_upload(
        request.headers.get("content-type", ""),
        request.headers.get("content-length"),
        request.stream(),
        settings.resolved_import_dir,
        settings.upload_max_bytes,
    )
    return UploadOut(source=stored.source, filename=stored.filename, bytes=stored.bytes)
