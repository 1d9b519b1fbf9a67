"""/api/jobs/{id}/artifacts: the files a job produced, listed and downloaded."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from pastools_jobs.api.auth import PrincipalDep, authenticated, visible_job
from pastools_jobs.api.deps import ServiceDep, StorageDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import JobId
from pastools_jobs.domain import ArtifactNotFound
from pastools_jobs.storage.base import find_artifact

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
    storage: StorageDep,
    principal: PrincipalDep,
) -> list[ArtifactOut]:
    """Finished files only: a file still being written is not listed."""
    job = await visible_job(service, principal, job_id)
    return [
        ArtifactOut(
            name=artifact.name,
            bytes=artifact.bytes,
            content_type=artifact.content_type,
            url=str(request.url_for("download_artifact", job_id=job.id, name=artifact.name)),
        )
        for artifact in await asyncio.to_thread(storage.list_artifacts, job.id)
    ]


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file."}},
)
async def download_artifact(
    job_id: JobId,
    name: ArtifactName,
    service: ServiceDep,
    storage: StorageDep,
    principal: PrincipalDep,
) -> StreamingResponse:
    """Streamed, with its content type and length."""
    job = await visible_job(service, principal, job_id)
    artifact = await asyncio.to_thread(find_artifact, storage, job.id, name)
    if artifact is None:
        raise ArtifactNotFound(job.id, name)
    try:
        size, chunks = await asyncio.to_thread(storage.read_artifact, job.id, name)
    except FileNotFoundError:
        raise ArtifactNotFound(job.id, name) from None  # removed since it was listed
    return StreamingResponse(
        chunks,
        media_type=artifact.content_type,
        headers={
            "Content-Length": str(size),  # of what is read: a retry may rewrite the file
            "Content-Disposition": f'attachment; filename="{artifact.name}"',
        },
    )
