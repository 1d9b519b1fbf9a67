"""The long activities' checkpoints, in an `ActivityEnvironment`: the real export and
test run on a SQLite project of a few hundred records, and the probe's items. A retry resumes from
the heartbeat details of the attempt before; a cancel or a worker shutdown stops the
work right after the batch whose checkpoint it has just heartbeated, and the retry
from that checkpoint writes every record exactly once.

The activities signal progress to their workflow (`activity.client()`): the
environment gets the session's in-process Temporal, and a workflow that nobody runs
to receive the signals."""

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities import testing
from activities.context import ActivityContext
from activities.exporting import ExportActivities, ExportWork
from activities.importing import REJECTED_ROWS, ImportActivities, ImportWork
from activities.items import ItemActivities, ItemsWork
from activities.progress import ProgressReporter
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.contracts import JobRequest, Progress
from pastools_jobs.datasets import testsuite
from pastools_jobs.datasets.projects import create_project
from pastools_jobs.datasets.readers import CsvOptions
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.db.models import DataTestOutcome, Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import add_job, queued_job
from pastools_jobs.storage import open_storage
from workflows.probe_job import ProbeJob
from workflows.results import ProbeResult

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

RECORDS = 500
BATCH = 50
PROJECT = "checkpoints"


@pytest.fixture(scope="module")
async def context(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ActivityContext]:
    """A migrated SQLite jobs database holding one project of `RECORDS` records; the
    heartbeat interval so short that each batch is checkpointed."""
    base = tmp_path_factory.mktemp("checkpoints")
    url = f"sqlite:///{base / 'jobs.sqlite3'}"
    upgrade_database(url)
    db = Database(url, application_name="pastools-tests")
    rows = [(f"k{n:04d}", json.dumps({"n": n, "name": f"record {n}"})) for n in range(RECORDS)]

    def fill(session: Session) -> None:
        create_project(session, PROJECT, None)
        upsert_records(session.connection(), PROJECT, rows, utcnow())

    await db.run(fill)
    settings = Settings(data_dir=base, database_url=url, heartbeat_interval_seconds=0.001)
    yield ActivityContext(settings=settings, db=db, storage=open_storage(settings))
    db.dispose()


@pytest.fixture
async def job(workflow_env: WorkflowEnvironment, context: ActivityContext) -> AsyncIterator[Any]:
    """The workflow the activity belongs to (started, never run: it only takes the
    progress signals) and its queued row in the jobs table."""
    client: Client = workflow_env.client
    handle = await client.start_workflow(
        ProbeJob.run,
        JobRequest(project_id=PROJECT, row_exists=True, attributes_set=True),
        id=f"checkpoint-{uuid.uuid4().hex}",
        task_queue=f"unpolled-{uuid.uuid4().hex}",
    )
    assert handle.result_run_id is not None
    row = queued_job(handle.id, "export", PROJECT, {}, utcnow(), run_id=handle.result_run_id)
    await context.db.run(lambda session: add_job(session, row))
    yield handle
    await handle.terminate("the test is over")


class Attempt:
    """One attempt of an activity: its environment, the heartbeats it sent, and `stop`
    (cancel or worker shutdown) called once a heartbeat's checkpoint satisfies `when`."""

    def __init__(
        self,
        client: Client,
        job: Any,
        *,
        resume_from: Progress | None = None,
        when: Callable[[Progress], bool] | None = None,
        stop: str = "cancel",
    ) -> None:
        self.env = ActivityEnvironment(client)
        self.env.info = dataclasses.replace(
            ActivityEnvironment.default_info(),
            workflow_id=job.id,
            workflow_run_id=job.result_run_id,
            attempt=2 if resume_from else 1,
            heartbeat_details=[resume_from.model_dump(mode="json")] if resume_from else [],
        )
        self.heartbeats: list[Progress] = []
        self._resumed = resume_from
        self.stopped_at: Progress | None = None
        self._when = when
        self._stop = self.env.cancel if stop == "cancel" else self.env.worker_shutdown
        self.env.on_heartbeat = self._heartbeat

    def _heartbeat(self, *details: Any) -> None:
        if not details:
            return
        progress = Progress.model_validate(details[0])
        self.heartbeats.append(progress)
        if self.stopped_at is None and self._when is not None and self._when(progress):
            self.stopped_at = progress
            self._stop()

    @property
    def last(self) -> Progress:
        return self.heartbeats[-1]

    @property
    def reported(self) -> list[Progress]:
        """The heartbeats of this attempt's own progress: a retry heartbeats the
        checkpoint it resumed from until it reports another."""
        return [progress for progress in self.heartbeats if progress != self._resumed]


def export_work() -> ExportWork:
    return ExportWork(project_id=PROJECT, format="jsonl", key_prefix=None, batch_rows=BATCH)


def exported(context: ActivityContext, job_id: str) -> list[str]:
    content = b"".join(context.storage.read_artifact(job_id, "export.jsonl")[1])
    return [json.loads(line)["key"] for line in content.decode().splitlines()]


async def row_progress(context: ActivityContext, job_id: str) -> tuple[Any, ...]:
    row = await context.db.run(lambda session: session.get(Job, job_id))
    assert row is not None
    return JobStatus(row.status), row.progress_done, row.progress_total


def rows_of(progress: Progress) -> int:
    return int(progress.checkpoint["rows"])


ALL_KEYS = [f"k{n:04d}" for n in range(RECORDS)]


async def test_a_retry_heartbeats_the_checkpoint_it_resumed_from_until_it_has_another(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    """Work done in a thread before a retry's first report (a test run's first test, a
    long one) is heartbeated with the checkpoint the retry resumed from: a heartbeat
    without it would replace it with nothing, and an attempt that died then would make
    the next one start over."""
    resumed = Progress(done=200, checkpoint={"after_key": "k0199"})
    attempt = Attempt(workflow_env.client, job, resume_from=resumed)
    sent: list[tuple[Any, ...]] = []
    attempt.env.on_heartbeat = lambda *details: sent.append(details)

    async def long_first_step() -> None:
        reporter = ProgressReporter(context.db, interval_seconds=0.01)
        await reporter.in_thread(lambda _stop: time.sleep(0.2))

    await attempt.env.run(long_first_step)

    assert sent, "nothing heartbeated while the work ran"
    assert all(details == (resumed.model_dump(mode="json"),) for details in sent), sent


@pytest.mark.parametrize("stop", ["cancel", "worker_shutdown"])
async def test_an_export_stopped_at_a_batch_resumes_from_its_checkpoint(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any, stop: str
) -> None:
    client = workflow_env.client
    activities = ExportActivities(context)
    first = Attempt(client, job, when=lambda p: rows_of(p) >= 4 * BATCH, stop=stop)

    if stop == "cancel":
        with pytest.raises(asyncio.CancelledError):
            await first.env.run(activities.export_records, export_work())
    else:
        # Retryable, so that Temporal runs the retry (on another worker) from the checkpoint.
        with pytest.raises(ApplicationError) as stopping:
            await first.env.run(activities.export_records, export_work())
        assert stopping.value.type == "WorkerShutdown"
        assert not stopping.value.non_retryable

    # It stopped right after the batch it was told to stop at: nothing heartbeated since.
    assert first.stopped_at is not None
    assert first.last == first.stopped_at
    assert rows_of(first.last) == 4 * BATCH
    assert first.last.checkpoint["after_key"] == ALL_KEYS[4 * BATCH - 1]
    assert (await row_progress(context, job.id))[0] is JobStatus.RUNNING

    retry = Attempt(client, job, resume_from=first.last)
    result = await retry.env.run(activities.export_records, export_work())

    assert result.rows == RECORDS
    assert exported(context, job.id) == ALL_KEYS, "each record exactly once, in key order"
    assert rows_of(retry.reported[0]) > 4 * BATCH, "the retry began after the checkpoint"
    assert await row_progress(context, job.id) == (JobStatus.RUNNING, RECORDS, RECORDS)


async def test_an_export_whose_attempt_finished_its_file_keeps_it(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    """The attempt before died after its last checkpoint (the whole file, finished):
    the retry writes nothing again."""
    client = workflow_env.client
    activities = ExportActivities(context)
    first = Attempt(client, job)
    await first.env.run(activities.export_records, export_work())
    assert first.last.checkpoint["finished"]

    retry = Attempt(client, job, resume_from=first.last)
    result = await retry.env.run(activities.export_records, export_work())

    assert result.rows == RECORDS
    assert exported(context, job.id) == ALL_KEYS
    assert {rows_of(p) for p in retry.heartbeats} == {RECORDS}


def items_work(items: int = 40) -> ItemsWork:
    return ItemsWork(items=items, item_seconds=0, verb="Processed")


async def test_the_probe_resumes_at_the_item_after_its_checkpoint(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    checkpoint = Progress(done=25, total=40, checkpoint={"next_item": 25})
    attempt = Attempt(workflow_env.client, job, resume_from=checkpoint)

    outcome = await attempt.env.run(ItemActivities(context).process_items, items_work())

    assert outcome == ProbeResult(items=40, resumed_from=25)
    assert [p.done for p in attempt.heartbeats] == list(range(26, 41))


@pytest.mark.parametrize("stop", ["cancel", "worker_shutdown"])
async def test_the_probe_stops_after_the_item_it_checkpointed(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any, stop: str
) -> None:
    client = workflow_env.client
    activities = ItemActivities(context)
    first = Attempt(client, job, when=lambda p: p.done == 10, stop=stop)
    expected: type[BaseException] = asyncio.CancelledError if stop == "cancel" else ApplicationError

    with pytest.raises(expected):
        await first.env.run(activities.process_items, items_work())

    assert first.last.done == 10
    assert first.last.checkpoint == {"next_item": 10}
    retry = Attempt(client, job, resume_from=first.last)
    outcome = await retry.env.run(activities.process_items, items_work())
    assert outcome == ProbeResult(items=40, resumed_from=10)


SUITE = testsuite.TestSuite.model_validate(
    {
        "tests": [
            {"kind": "range", "name": "n small", "field": "n", "max": 449, "error_if": ">10"},
            {"kind": "regex", "name": "short name", "field": "name", "severity": "warn",
             "pattern": "^record [0-9]{1,2}$"},
            {"kind": "not_null", "name": "n present", "field": "n"},
        ]
    }
)  # fmt: skip
KEPT = 7


def suite_work() -> testing.TestRunWork:
    snapshot = testing.SuiteSnapshot(suite=SUITE, sha256="test")
    return testing.TestRunWork(project_id=PROJECT, snapshot=snapshot, failing_rows_per_test=KEPT)


async def test_a_test_run_stopped_after_a_test_resumes_with_its_failing_rows(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    """The failing rows written before the checkpoint stay, those of the test it stopped
    in are written once by the retry; each test keeps at most `failing_rows_per_test`."""
    client = workflow_env.client
    activities = testing.TestRunActivities(context)
    first = Attempt(client, job, when=lambda p: len(p.checkpoint["verdicts"]) >= 1)
    with pytest.raises(asyncio.CancelledError):
        await first.env.run(activities.run_data_tests, suite_work())
    assert first.last.checkpoint["rows_size"] > 0

    retry = Attempt(client, job, resume_from=first.last)
    result = await retry.env.run(activities.run_data_tests, suite_work())

    assert retry.reported[0].done >= 2, "the retry began after the test it checkpointed"
    statuses = {verdict.name: (verdict.status, verdict.failing) for verdict in result.results}
    assert statuses == {
        "n small": ("error", 50),
        "short name": ("warn", 400),
        "n present": ("pass", 0),
    }
    assert (result.status, result.passed, result.warned, result.failed) == ("error", 1, 1, 1)
    content = b"".join(context.storage.read_artifact(job.id, "failing-rows.jsonl")[1])
    lines = [json.loads(line) for line in content.decode().splitlines()]
    assert lines == [
        *({"test": "n small", "key": f"k{n:04d}", "value": n} for n in range(450, 450 + KEPT)),
        *(
            {"test": "short name", "key": f"k{n:04d}", "value": f"record {n}"}
            for n in range(100, 100 + KEPT)
        ),
    ]
    outcomes = await context.db.run(
        lambda session: {
            o.test_name: (o.status, o.failing, o.total)
            for o in session.scalars(
                select(DataTestOutcome).where(DataTestOutcome.job_id == job.id)
            )
        }
    )
    assert outcomes == {
        "n small": ("error", 50, RECORDS),
        "short name": ("warn", 400, RECORDS),
        "n present": ("pass", 0, RECORDS),
    }


async def taken_keys(context: ActivityContext, project: str) -> str:
    """A project holding the keys k1 and k2, and an import file of four rows, two of
    them (lines 2 and 4) with those keys."""

    def fill(session: Session) -> None:
        create_project(session, project, None)
        upsert_records(session.connection(), project, [("k1", "{}"), ("k2", "{}")], utcnow())

    await context.db.run(fill)
    project_dir = context.storage.project_dir(project)  # type: ignore[attr-defined]
    project_dir.mkdir(parents=True, exist_ok=True)
    (project_dir / "taken.csv").write_text("id,n\nk1,1\nnew1,2\nk2,3\nnew2,4\n")
    return project


def insert_only_import(project: str) -> ImportWork:
    return ImportWork(
        project_id=project,
        source="taken.csv",
        format="csv",
        key_column="id",
        csv=CsvOptions(),
        on_error="skip",
        max_examples=10,
        batch_rows=100,
        mode="insert-only",
        max_rejected=100,
    )


async def test_an_insert_only_import_retried_after_its_end_keeps_every_rejected_row(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    """The attempt before died after its last heartbeat, which came after the move: the
    retry reports the same, and the rejected-rows artifact still holds the keys the
    project had already (written after the last batch, when the move found them)."""
    client = workflow_env.client
    activities = ImportActivities(context)
    work = insert_only_import(await taken_keys(context, "insert-only"))

    def rejected() -> list[int]:
        content = b"".join(context.storage.read_artifact(job.id, REJECTED_ROWS)[1])
        return [json.loads(line)["line"] for line in content.decode().splitlines()]

    attempt = Attempt(client, job)
    first = await attempt.env.run(activities.import_records, work)
    assert (first.imported, first.skipped, first.rejected_written) == (2, 2, 2)
    assert rejected() == [2, 4]

    retry = Attempt(client, job, resume_from=attempt.last)
    again = await retry.env.run(activities.import_records, work)

    assert (again.imported, again.skipped, again.rejected_written) == (2, 2, 2)
    assert rejected() == [2, 4], "the retry cut the rejected rows back"


async def test_an_insert_only_import_retried_after_the_move_counts_the_keys_it_skipped(
    workflow_env: WorkflowEnvironment, context: ActivityContext, job: Any
) -> None:
    """The attempt before died after the move, before heartbeating it: the retry, from
    the checkpoint of the last batch, finds the move made and counts what it skipped."""
    client = workflow_env.client
    activities = ImportActivities(context)
    work = insert_only_import(await taken_keys(context, "moved"))

    attempt = Attempt(client, job)
    await attempt.env.run(activities.import_records, work)
    before_the_move = attempt.heartbeats[-2]
    assert before_the_move.checkpoint["skipped"] == 0

    retry = Attempt(client, job, resume_from=before_the_move)
    again = await retry.env.run(activities.import_records, work)

    assert (again.imported, again.skipped) == (2, 2)
