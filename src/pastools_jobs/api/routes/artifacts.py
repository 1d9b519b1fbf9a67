"""/api/jobs/{id}/artifacts: the files a job produced, listed and downloaded."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from pastools_jobs.api.auth import PrincipalDep, authenticated, visible_job
from pastools_jobs.api.deps import ServiceDep, SettingsDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import JobId
from pastools_jobs.datasets.artifacts import find_artifact, job_artifacts_dir, list_artifacts
from pastools_jobs.domain import ArtifactNotFound

router = APIRouter(
    prefix="/api/jobs",
    tags=["jobs"],
    responses=responses(401, 404, 422, 503),
    dependencies=[authenticated],
)

ArtifactName = Annotated[str, Path(min_length=1, max_length=200)]


class ArtifactOut(BaseModel):
    name: str
    bytes: int
    content_type: str
    url: str


@router.get("/{job_id}/artifacts", response_model=list[ArtifactOut])
async def job_artifacts(
    job_id: JobId,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> list[ArtifactOut]:
    """Finished files only: a file still being written is not listed."""
    job = await visible_job(service, principal, job_id)
    directory = job_artifacts_dir(settings.artifacts_dir, job.id)
    return [
        ArtifactOut(
            name=artifact.name,
            bytes=artifact.bytes,
            content_type=artifact.content_type,
            url=str(request.url_for("download_artifact", job_id=job.id, name=artifact.name)),
        )
        for artifact in list_artifacts(directory)
    ]


@router.get("/{job_id}/artifacts/{name}", response_class=FileResponse)
async def download_artifact(
    job_id: JobId,
    name: ArtifactName,
    service: ServiceDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> FileResponse:
    """Streamed, with its content type and length."""
    job = await visible_job(service, principal, job_id)
    artifact = find_artifact(job_artifacts_dir(settings.artifacts_dir, job.id), name)
    if artifact is None:
        raise ArtifactNotFound(job.id, name)
    return FileResponse(artifact.path, media_type=artifact.content_type, filename=artifact.name)
