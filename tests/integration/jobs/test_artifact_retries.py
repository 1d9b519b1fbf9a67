"""Export and validation attempts retried as Temporal retries them: the real activity, on
a real database and real files (on local disk and in the object store), given the
heartbeats of the attempt before (Temporal's stand-in is `ActivityEnvironment`; signals
go to the real dev server)."""

import dataclasses
import json
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext
from activities.exporting import ExportActivities, ExportWork
from activities.validating import REPORT, ValidationActivities, ValidationWork
from pastools_jobs.config import Settings
from pastools_jobs.contracts import Progress
from pastools_jobs.datasets.projects import create_project, set_schema
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.storage import open_storage
from pastools_jobs.storage.s3 import S3Storage
from pastools_jobs.temporal import connect
from tests.support.services import ObjectStore, TemporalServer
from workflows.results import ExportResult

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

PROJECT = "retried"
KEYS = [f"k{index:02}" for index in range(20)]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path_factory.mktemp('retries') / 'jobs.sqlite3'}"
    upgrade_database(url)
    database = Database(url, application_name="pastools-tests")
    with database.transaction() as session:
        create_project(session, PROJECT, None)
        set_schema(session, PROJECT, SCHEMA)
    rows = [(key, json.dumps({"n": index})) for index, key in enumerate(KEYS)]
    with database.writing() as connection:
        upsert_records(connection, PROJECT, rows, datetime.now(UTC))
    yield database
    database.dispose()


@pytest.fixture(params=["local disk", "object store"])
def context(db: Database, tmp_path: Path, request: pytest.FixtureRequest) -> ActivityContext:
    storage_url = None
    if request.param == "object store":
        store: ObjectStore = request.getfixturevalue("object_store")
        storage_url = store.storage_env(f"retries-{tmp_path.name[-40:].lower()}".replace("_", "-"))[
            "PASTOOLS_STORAGE_URL"
        ]
    settings = Settings(data_dir=tmp_path, heartbeat_interval_seconds=0.01, storage_url=storage_url)
    return ActivityContext(settings, db, open_storage(settings))


@pytest.fixture
async def client(temporal: TemporalServer) -> AsyncIterator[Client]:
    yield await connect(temporal.settings, "pastools-tests")


class Attempt:
    """One attempt of a job's activity, with the heartbeats it sent."""

    def __init__(self, client: Client, job_id: str, previous: dict[str, Any] | None) -> None:
        self.environment = ActivityEnvironment(client)
        self.environment.info = dataclasses.replace(
            self.environment.info,
            workflow_id=job_id,
            attempt=1 if previous is None else 2,
            heartbeat_details=[] if previous is None else [previous],
        )
        self.heartbeats: list[dict[str, Any]] = []
        self.environment.on_heartbeat = self._heartbeat
        self.on_checkpoint: Callable[[dict[str, Any]], None] = lambda checkpoint: None

    def _heartbeat(self, *details: Any) -> None:
        if details:
            self.heartbeats.append(details[0])
            self.on_checkpoint(details[0]["checkpoint"])


def export_work(export_format: str) -> ExportWork:
    return ExportWork.model_validate(
        {"project_id": PROJECT, "format": export_format, "key_prefix": None, "batch_rows": 3}
    )


async def export(context: ActivityContext, attempt: Attempt, export_format: str) -> ExportResult:
    run = ExportActivities(context).export_records
    return await attempt.environment.run(run, export_work(export_format))


def artifact_bytes(context: ActivityContext, job_id: str, name: str) -> bytes:
    return b"".join(context.storage.read_artifact(job_id, name)[1])


def leave_a_short_part(context: ActivityContext, job_id: str, name: str, data: bytes) -> None:
    """What an attempt that died early leaves behind: less than its checkpoint says."""
    storage = context.storage
    if isinstance(storage, S3Storage):
        key = storage.artifact_key(job_id, name)
        upload = storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key)
        storage.client.upload_part(
            Bucket=storage.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data
        )
        return
    directory = context.settings.artifacts_dir / job_id
    directory.mkdir(parents=True)
    (directory / f"{name}.part").write_bytes(data)


@pytest.mark.parametrize("export_format", ["csv", "jsonl", "parquet"])
async def test_an_export_retried_after_it_finished_its_file_keeps_it(
    context: ActivityContext, client: Client, export_format: str
) -> None:
    """The attempt died after renaming its file, before Temporal recorded its end."""
    first = Attempt(client, "exported", None)
    finished = await export(context, first, export_format)
    name = finished.artifact
    content = artifact_bytes(context, "exported", name)

    retry = Attempt(client, "exported", first.heartbeats[-1])
    retried = await export(context, retry, export_format)

    assert retried == finished
    assert artifact_bytes(context, "exported", name) == content
    assert [artifact.name for artifact in context.storage.list_artifacts("exported")] == [name]


async def test_a_validation_retried_after_it_finished_its_report_keeps_it(
    context: ActivityContext, client: Client
) -> None:
    run = ValidationActivities(context).validate_records
    work = ValidationWork(project_id=PROJECT, examples_per_path=2, batch_rows=3)
    first = Attempt(client, "validated", None)
    finished = await first.environment.run(run, work)
    content = artifact_bytes(context, "validated", REPORT)
    assert finished.invalid == len(content.splitlines()) > 0

    retried = await Attempt(client, "validated", first.heartbeats[-1]).environment.run(run, work)

    assert retried == finished
    assert artifact_bytes(context, "validated", REPORT) == content


async def test_an_export_whose_checkpointed_bytes_are_gone_starts_over_and_counts_afresh(
    context: ActivityContext, client: Client
) -> None:
    """A checkpoint past the end of the part: no zero padding, no rows counted twice."""
    expected = await export(context, Attempt(client, "reference", None), "csv")
    reference = artifact_bytes(context, "reference", expected.artifact)
    leave_a_short_part(context, "lost", expected.artifact, reference[:10])
    checkpoint = {"after_key": KEYS[5], "rows": 6, "size": len(reference), "fields": ["n"]}
    lost = Progress(done=6, total=len(KEYS), message="", checkpoint=checkpoint)

    retried = await export(context, Attempt(client, "lost", lost.model_dump(mode="json")), "csv")

    assert artifact_bytes(context, "lost", expected.artifact) == reference
    assert retried.rows == expected.rows == len(KEYS)


async def test_an_export_heartbeats_only_checkpoints_whose_bytes_are_synced(
    context: ActivityContext, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(context.storage, S3Storage):
        pytest.skip("fsync is local disk's; in the object store, uploaded parts are durable")
    synced = [0]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode):
            synced.append(status.st_size)

    monkeypatch.setattr(os, "fsync", fsync)
    ahead: list[int] = []

    def check(checkpoint: dict[str, Any]) -> None:
        if checkpoint["size"] > max(synced):
            ahead.append(checkpoint["size"])

    attempt = Attempt(client, "synced", None)
    attempt.on_checkpoint = check

    await export(context, attempt, "jsonl")

    assert len(attempt.heartbeats) > 1
    assert ahead == [], f"checkpoints past the synced size {max(synced)}"
