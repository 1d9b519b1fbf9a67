"""/api/projects/{id}/tests/{name}/history: one data test's outcomes across test runs."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pastools_jobs.api.auth import PrincipalDep, authenticated
from pastools_jobs.api.deps import DatabaseDep
from pastools_jobs.api.problems import responses
from pastools_jobs.api.schemas import ProjectId
from pastools_jobs.datasets.outcomes import DataTestHistory
from pastools_jobs.datasets.testsuite import TEST_NAME_PATTERN
from pastools_jobs.datasets.thresholds import Severity, TestStatus
from pastools_jobs.db.models import DataTestOutcome

router = APIRouter(
    prefix="/api/projects",
    tags=["projects"],
    responses=responses(401, 404, 422, 503),
    dependencies=[authenticated],
)

TestName = Annotated[str, Path(min_length=1, max_length=200, pattern=TEST_NAME_PATTERN)]


class DataTestOutcomeOut(BaseModel):
    job_id: str
    ran_at: datetime = Field(description="When the run had judged its tests.")
    kind: str
    status: TestStatus
    failing: int
    total: int = Field(description="Records the test read (1 for `row_count`).")
    severity: Severity
    warn_if: str
    error_if: str


class DataTestHistoryOut(BaseModel):
    items: list[DataTestOutcomeOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


def _out(outcome: DataTestOutcome) -> DataTestOutcomeOut:
    return DataTestOutcomeOut.model_validate(outcome, from_attributes=True)


@router.get("/{project_id}/tests/{test_name:path}/history", response_model=DataTestHistoryOut)
async def data_test_history(
    project_id: ProjectId,
    test_name: TestName,
    db: DatabaseDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DataTestHistoryOut:
    """The test's outcome in each test run that ran it, newest first: an empty list for a
    test never run (or since renamed), 404 for a project the token does not see."""
    principal.require_project(project_id)
    page = await DataTestHistory(db).page(project_id, test_name, limit, cursor)
    return DataTestHistoryOut(items=[_out(o) for o in page.outcomes], next_cursor=page.next_cursor)
