"""/api/projects: projects, their JSON Schema, test suite and column types, and their
records."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import ProjectServiceDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import NewProjectId, ProjectId
from pastools_jobs.auth.principal import Role
from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.projects import CountedProject
from pastools_jobs.datasets.testsuite import TestSuite
from pastools_jobs.db.models import Record

router = APIRouter(
    prefix="/api/projects",
    tags=["projects"],
    responses=responses(401, 422, 503),
    dependencies=[authenticated],
)
for_one = responses(404)
for_change = responses(400, 403, 404, 413)

RecordKey = Annotated[str, Path(min_length=1, max_length=500)]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: NewProjectId
    name: str | None = Field(default=None, max_length=500)


class ProjectOut(BaseModel):
    id: str
    name: str | None
    json_schema: Any = Field(description="Draft 2020-12 schema that validation jobs apply.")
    test_suite: TestSuite | None
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict, description="Types imports coerce columns to (an import's own win)."
    )
    records: int
    created_at: datetime
    updated_at: datetime


class ColumnTypes(BaseModel):
    """A project's declared column types: {column: type}."""

    model_config = ConfigDict(extra="forbid")

    column_types: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")],
        ColumnType,
    ]
    """Checked as import parameters are: at most 1000 columns, names without NUL (which
    PostgreSQL refuses in text)."""

    @field_validator("column_types")
    @classmethod
    def _not_too_many(cls, types: dict[str, ColumnType]) -> dict[str, ColumnType]:
        if len(types) > 1000:
            raise ValueError("at most 1000 columns")
        return types


class RecordOut(BaseModel):
    key: str
    data: Any
    updated_at: datetime


class RecordPageOut(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def _out(counted: CountedProject) -> ProjectOut:
    project = counted.project
    suite = TestSuite.model_validate({"tests": project.test_suite}) if project.test_suite else None
    return ProjectOut(
        id=project.id,
        name=project.name,
        json_schema=project.json_schema,
        test_suite=suite,
        column_types=project.column_types or {},
        records=counted.records,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


def _record(record: Record) -> RecordOut:
    return RecordOut(key=record.key, data=record.data, updated_at=record.updated_at)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectOut,
    responses=responses(400, 403, 409, 413),
)
async def create_project(
    body: ProjectCreate, projects: ProjectServiceDep, principal: PrincipalDep
) -> ProjectOut:
    """Admin only: a viewer or operator token belongs to a project that exists already."""
    principal.require(Role.ADMIN)
    return _out(await projects.create(body.id, body.name, principal.actor))


@router.get("", response_model=list[ProjectOut])
async def list_projects(projects: ProjectServiceDep, principal: PrincipalDep) -> list[ProjectOut]:
    """The projects the token sees."""
    return [_out(counted) for counted in await projects.visible(principal.sees)]


@router.get("/{project_id}", response_model=ProjectOut, responses=for_one)
async def get_project(
    project_id: ProjectId, projects: ProjectServiceDep, principal: PrincipalDep
) -> ProjectOut:
    principal.require_project(project_id)
    return _out(await projects.get(project_id))


@router.put("/{project_id}/schema", response_model=ProjectOut, responses=for_change)
async def set_schema(
    project_id: ProjectId,
    schema: Annotated[Any, Body(description="A JSON Schema")],
    projects: ProjectServiceDep,
    principal: PrincipalDep,
) -> ProjectOut:
    """Set the JSON Schema (Draft 2020-12); an invalid one is refused here, with 422."""
    principal.require_project(project_id, Role.OPERATOR)
    return _out(await projects.set_schema(project_id, schema, principal.actor))


@router.put("/{project_id}/tests", response_model=ProjectOut, responses=for_change)
async def set_tests(
    project_id: ProjectId, suite: TestSuite, projects: ProjectServiceDep, principal: PrincipalDep
) -> ProjectOut:
    """Set the test suite that `test_run` jobs execute, one test after another. A
    relationship test may point only to a project the token sees: any other is 404."""
    principal.require_project(project_id, Role.OPERATOR)
    for other in suite.other_projects():
        principal.require_project(other)
    return _out(await projects.set_test_suite(project_id, suite, principal.actor))


@router.get("/{project_id}/column-types", response_model=ColumnTypes, responses=for_one)
async def get_column_types(
    project_id: ProjectId, projects: ProjectServiceDep, principal: PrincipalDep
) -> ColumnTypes:
    """The types imports coerce the project's columns to, unless an import names its own."""
    principal.require_project(project_id)
    project = (await projects.get(project_id)).project
    return ColumnTypes(column_types=project.column_types or {})


@router.put("/{project_id}/column-types", response_model=ColumnTypes, responses=for_change)
async def set_column_types(
    project_id: ProjectId, body: ColumnTypes, projects: ProjectServiceDep, principal: PrincipalDep
) -> ColumnTypes:
    """Declare column types for the project's imports (operators); `{}` clears them.
    An import's own `column_types` win over these, column by column."""
    principal.require_project(project_id, Role.OPERATOR)
    changed = await projects.set_column_types(project_id, body.column_types, principal.actor)
    return ColumnTypes(column_types=changed.project.column_types or {})


@router.get("/{project_id}/records", response_model=RecordPageOut, responses=for_one)
async def list_records(
    project_id: ProjectId,
    projects: ProjectServiceDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> RecordPageOut:
    """Records in key order."""
    principal.require_project(project_id)
    records, next_key = await projects.records_page(project_id, cursor, limit)
    return RecordPageOut(items=[_record(r) for r in records], next_cursor=next_key)


@router.get("/{project_id}/records/{key}", response_model=RecordOut, responses=for_one)
async def get_record(
    project_id: ProjectId, key: RecordKey, projects: ProjectServiceDep, principal: PrincipalDep
) -> RecordOut:
    principal.require_project(project_id)
    return _record(await projects.record(project_id, key))
