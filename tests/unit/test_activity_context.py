"""An activity files its artifacts under its own job's directory and resumes where its
previous attempt's last heartbeat left off; one run outside a job workflow is refused,
for good, rather than given a directory or a row that jobs would share."""

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext, ActivityGroup
from activities.exporting import ExportCheckpoint
from activities.items import ItemActivities, ItemsCheckpoint, ItemsWork
from activities.progress import ProgressReporter
from pastools_jobs.config import Settings
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.storage import open_storage


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ActivityContext]:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(url)
    db = Database(url, application_name="pastools-tests")
    settings = Settings(data_dir=tmp_path)
    yield ActivityContext(settings=settings, db=db, storage=open_storage(settings))
    db.dispose()


@pytest.fixture
def group(context: ActivityContext) -> ActivityGroup:
    return ActivityGroup(context)


def retry_of(checkpoint: Any) -> ActivityEnvironment:
    """An environment whose attempt follows one that heartbeated `checkpoint` last."""
    env = ActivityEnvironment()
    previous = Progress(done=1, total=2, message="half", checkpoint=checkpoint)
    env.info = dataclasses.replace(
        env.info, attempt=2, heartbeat_details=[previous.model_dump(mode="json")]
    )
    return env


def without_job() -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=None)
    return env


def test_an_artifact_is_the_jobs_own(group: ActivityGroup, tmp_path: Path) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="job-42")

    def write() -> None:
        output = group.artifact("report.txt", None)
        output.stream.write(b"done\n")
        output.finish()

    env.run(write)
    storage = group.context.storage
    assert [artifact.name for artifact in storage.list_artifacts("job-42")] == ["report.txt"]
    assert storage.list_artifacts("job-43") == []


def test_an_activity_without_a_job_writes_no_artifacts(group: ActivityGroup) -> None:
    with pytest.raises(ApplicationError, match="only by activities of a job") as raised:
        without_job().run(group.artifact, "report.txt", None)
    assert raised.value.non_retryable


def test_an_activity_without_a_job_reports_no_progress(group: ActivityGroup) -> None:
    async def reporter() -> ProgressReporter:
        return group.reporter()

    with pytest.raises(ApplicationError, match="only by activities of a job") as raised:
        asyncio.run(without_job().run(reporter))
    assert raised.value.non_retryable


def test_a_retry_resumes_from_the_previous_attempts_checkpoint(group: ActivityGroup) -> None:
    checkpoint = {"after_key": "k7", "rows": 7, "size": 120, "fields": ["a"], "finished": False}

    resumed: ExportCheckpoint = retry_of(checkpoint).run(group.resume, Work(), ExportCheckpoint)

    assert resumed == ExportCheckpoint.model_validate(checkpoint)


def test_a_first_attempt_starts_from_the_checkpoints_defaults(group: ActivityGroup) -> None:
    assert ActivityEnvironment().run(group.resume, Work(), ExportCheckpoint) == ExportCheckpoint()
    assert retry_of(None).run(group.resume, Work(), ItemsCheckpoint) == ItemsCheckpoint()


def test_work_resumed_after_a_pause_starts_where_the_pause_stopped_it(
    group: ActivityGroup,
) -> None:
    paused = Work(resume_from=Progress(done=4, total=9, checkpoint={"next_item": 4}))

    resumed = ActivityEnvironment().run(group.resume, paused, ItemsCheckpoint)

    assert resumed == ItemsCheckpoint(next_item=4)


def test_a_retried_attempt_prefers_its_own_heartbeat_to_where_the_pause_stopped_it(
    group: ActivityGroup,
) -> None:
    paused = Work(resume_from=Progress(done=4, total=9, checkpoint={"next_item": 4}))

    resumed = retry_of({"next_item": 6}).run(group.resume, paused, ItemsCheckpoint)

    assert resumed == ItemsCheckpoint(next_item=6)


def test_the_probe_resumes_at_the_next_item_and_heartbeats_it_under_the_same_key(
    context: ActivityContext,
) -> None:
    """A worker of another version reads and writes `{"next_item": n}`: so must this one."""
    env = retry_of({"next_item": 2})
    heartbeats: list[Any] = []
    env.on_heartbeat = lambda *details: heartbeats.extend(details)
    work = ItemsWork(items=3, item_seconds=0, verb="Probed")

    outcome = asyncio.run(env.run(ItemActivities(context).process_items, work))

    assert outcome.resumed_from == 2
    assert [heartbeat["checkpoint"] for heartbeat in heartbeats] == [{"next_item": 3}]
