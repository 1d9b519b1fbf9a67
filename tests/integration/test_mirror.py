"""The mirror's repairs: rows that disagree with their closed runs, rows a crash left
without a workflow, and several mirrors at work on the same table."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from pastools_jobs.contracts import JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.apply import restate
from pastools_jobs.mirror.judge import ORPHAN_GRACE
from pastools_jobs.mirror.reconciler import Reconciler
from pastools_jobs.temporal import JobLauncher
from tests.conftest import BACKENDS, database_url
from tests.support.jobs import JobsApi, new_project
from tests.support.rows import start_lost
from tests.support.services import TemporalServer

pytestmark = pytest.mark.integration

LONG_AGO = ORPHAN_GRACE + timedelta(minutes=1)


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A jobs database of the test's own, for mirrors run in the test process."""
    name = f"mirror_{uuid.uuid4().hex[:8]}"
    url = database_url(request.param, tmp_path_factory.mktemp(name), request, name)
    upgrade_database(url)
    database = Database(url, application_name="pastools-tests")
    yield database
    database.dispose()


def test_finished_row_that_disagrees_with_its_closed_run_follows_it(api: JobsApi) -> None:
    """A cancelled job whose row says completed (what a cancel that raced the work's end
    left before): the mirror makes the row say what Temporal closed the run as."""
    job_id = api.submit("probe", new_project(), items=1000, item_ms=50)["id"]
    api.wait_running(job_id)
    assert api.http.post(f"/api/jobs/{job_id}/cancel").status_code == 202
    api.wait_for_status(job_id, "cancelled")
    db = Database(api.stack.database_url, application_name="pastools-tests")
    with db.transaction() as session:
        row = session.get(Job, job_id)
        assert row is not None and row.run_id is not None
        restate(session, completed_event(row, row.run_id))
    db.dispose()
    assert api.get(job_id)["status"] == "completed"

    repaired = api.wait_for_status(job_id, "cancelled")

    assert repaired["error"]["type"] == "Cancelled"
    assert repaired["result"] is None
    assert repaired["completed_at"] is not None
    assert api.count_drift() == []


def completed_event(row: Job, run_id: str) -> JobEvent:
    return JobEvent(
        job_id=row.id,
        run_id=run_id,
        job_type=row.type,
        project_id=row.project_id,
        status=JobStatus.COMPLETED,
        at=row.completed_at or row.updated_at,
        created_at=row.created_at,
        result={"items": 1000, "resumed_from": 0},
    )


def test_row_whose_cancel_was_requested_is_never_started(api: JobsApi) -> None:
    """An earlier version stamped a cancel before sending it; the API then died. The mirror
    must not start such a job: it ends cancelled, with no workflow ever run."""
    db = Database(api.stack.database_url, application_name="pastools-tests")
    job_id = start_lost(db, new_project(), age=LONG_AGO, cancel_requested=True)
    db.dispose()

    cancelled = api.wait_for_status(job_id, "cancelled")

    assert cancelled["error"]["type"] == "Cancelled"
    assert cancelled["started_at"] is None
    assert api.temporal_status(job_id) is None
    assert api.count_drift() == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_two_mirrors_starting_the_same_orphans_both_carry_on(
    db: Database, temporal: TemporalServer
) -> None:
    """Two API replicas find the same rows without a workflow at the same moment: the
    second start of a workflow id is success, so neither abandons its pass."""
    client = await Client.connect(temporal.address, data_converter=pydantic_data_converter)
    launcher = JobLauncher(client, f"orphans-{uuid.uuid4().hex}")  # no worker: they stay
    project = new_project()
    orphans = [await asyncio.to_thread(start_lost, db, project, age=LONG_AGO) for _ in range(3)]
    mirrors = [Reconciler(db, launcher, interval_seconds=1) for _ in range(2)]

    await asyncio.gather(*(mirror.check_open_rows() for mirror in mirrors))

    for job_id in orphans:
        described = await client.get_workflow_handle(job_id).describe()
        assert described.run_id
    for mirror in mirrors:  # a later pass finds nothing left to do, and fails on nothing
        await mirror.check_open_rows()
    for job_id in orphans:
        await client.get_workflow_handle(job_id).terminate("test over")
