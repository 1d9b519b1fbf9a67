"""An activity files its artifacts under its own job's directory, and one run outside a
job workflow is refused rather than given a directory that jobs would share."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext, ActivityGroup
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database


@pytest.fixture
def group(tmp_path: Path) -> Iterator[ActivityGroup]:
    db = Database(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", application_name="pastools-tests")
    yield ActivityGroup(ActivityContext(settings=Settings(data_dir=tmp_path), db=db))
    db.dispose()


def test_the_artifacts_directory_is_the_jobs_own(group: ActivityGroup, tmp_path: Path) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="job-42")

    assert env.run(group.artifacts_dir) == (tmp_path / "artifacts" / "job-42").resolve()


def test_an_activity_without_a_job_writes_no_artifacts(group: ActivityGroup) -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=None)

    with pytest.raises(ApplicationError, match="only by activities of a job") as raised:
        env.run(group.artifacts_dir)
    assert raised.value.non_retryable
