"""An export stopped at a checkpoint and retried from it, on SQLite and PostgreSQL (whose
server builds the bytes): the file is the one an uninterrupted run writes, byte for byte
when uncompressed, and a compressed one decompresses to it (the retry starts a new gzip
member or zstd frame where the checkpoint closed one)."""

import asyncio
import gzip
import io
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import zstandard
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.context import ActivityContext
from activities.exporting import ExportActivities, ExportWork
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.contracts import JobRequest
from pastools_jobs.datasets.projects import create_project
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.repository import add_job, queued_job
from pastools_jobs.storage import open_storage
from pastools_jobs.storage.resumable_file import ResumableFile
from tests.support.services import PostgresCluster
from tests.workflows.test_activity_checkpoints import Attempt
from workflows.probe_job import ProbeJob

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

PROJECT = "resumed"
RECORDS = 600
BATCH = 100


def document(n: int) -> dict[str, Any]:
    """Values the server and the encoder write differently now and then (small numbers,
    a lone carriage return), so that the retry also meets rows the encoder writes."""
    return {
        "n": n,
        "name": f'record {n}, "quoted"\n{"é" * (n % 3)}',
        "tiny": n * 1e-07 if n % 50 == 0 else n / 4,
        "nested": {"even": n % 2 == 0, "list": [n, None]},
        **({"cr": "a\rb"} if n % 70 == 0 else {}),
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database("export_resume")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('export-resume') / 'jobs.sqlite3'}"
    upgrade_database(url)
    db = Database(url, application_name="pastools-tests")
    rows = [(f"k{n:04d}", json.dumps(document(n), separators=(",", ":"))) for n in range(RECORDS)]
    with db.transaction() as session:
        create_project(session, PROJECT, None)
    with db.writing() as connection:
        upsert_records(connection, PROJECT, rows, utcnow())
    yield db
    db.dispose()


@pytest.fixture
def context(database: Database, tmp_path: Any) -> ActivityContext:
    settings = Settings(
        data_dir=tmp_path, database_url=str(database.engine.url), heartbeat_interval_seconds=0.001
    )
    return ActivityContext(settings=settings, db=database, storage=open_storage(settings))


async def started_job(client: Client, context: ActivityContext) -> Any:
    """A workflow for the activity to signal (never run) and its row in the jobs table."""
    handle = await client.start_workflow(
        ProbeJob.run,
        JobRequest(project_id=PROJECT, row_exists=True, attributes_set=True),
        id=f"export-resume-{uuid.uuid4().hex}",
        task_queue=f"unpolled-{uuid.uuid4().hex}",
    )
    assert handle.result_run_id is not None
    row = queued_job(handle.id, "export", PROJECT, {}, utcnow(), run_id=handle.result_run_id)
    await context.db.run(lambda session: _add(session, row))
    return handle


def _add(session: Session, row: Any) -> None:
    add_job(session, row)


@pytest.fixture
async def client(workflow_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    yield workflow_env.client


def content(context: ActivityContext, job_id: str, name: str) -> bytes:
    data = b"".join(context.storage.read_artifact(job_id, name)[1])
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".zst"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        return reader.read()
    return data


@pytest.mark.parametrize(
    ("export_format", "compression"), [("csv", "gzip"), ("jsonl", "zstd"), ("csv", "none")]
)
async def test_a_resumed_export_writes_what_an_uninterrupted_one_does(
    client: Client, context: ActivityContext, export_format: str, compression: str
) -> None:
    work = ExportWork.model_validate(
        {
            "project_id": PROJECT,
            "format": export_format,
            "key_prefix": None,
            "batch_rows": BATCH,
            "compression": compression,
        }
    )
    run = ExportActivities(context).export_records
    whole_job = await started_job(client, context)
    whole = await Attempt(client, whole_job).env.run(run, work)

    job = await started_job(client, context)
    first = Attempt(client, job, when=lambda p: p.checkpoint["rows"] >= 3 * BATCH)
    with pytest.raises(asyncio.CancelledError):
        await first.env.run(run, work)
    assert first.stopped_at is not None
    assert first.stopped_at.checkpoint["size"] > 0
    resumed = await Attempt(client, job, resume_from=first.stopped_at).env.run(run, work)

    assert resumed.rows == whole.rows == RECORDS
    assert resumed.artifact == whole.artifact
    expected = content(context, whole_job.id, whole.artifact)
    assert content(context, job.id, resumed.artifact) == expected
    if compression == "none":
        assert resumed.bytes == whole.bytes
    await job.terminate("the test is over")
    await whole_job.terminate("the test is over")


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
async def test_key_ranges_exported_alone_make_the_whole_file(
    client: Client, context: ActivityContext, export_format: str
) -> None:
    """What a split across workers needs: each part after one key (exclusive) up to
    another (inclusive), the header only in the first; together, the whole export."""
    base = {"project_id": PROJECT, "format": export_format, "key_prefix": None, "batch_rows": BATCH}
    run = ExportActivities(context).export_records
    whole_job = await started_job(client, context)
    whole = await Attempt(client, whole_job).env.run(run, ExportWork.model_validate(base))

    parts = []
    bounds = [(None, "k0199"), ("k0199", "k0420"), ("k0420", None)]
    for n, (after, until) in enumerate(bounds):
        job = await started_job(client, context)
        work = ExportWork.model_validate(
            {**base, "after_key": after, "until_key": until, "header": n == 0}
        )
        part = await Attempt(client, job).env.run(run, work)
        parts.append((part.rows, content(context, job.id, part.artifact)))
        await job.terminate("the test is over")

    assert [rows for rows, _ in parts] == [200, 221, RECORDS - 421]
    assert b"".join(data for _, data in parts) == content(context, whole_job.id, whole.artifact)
    await whole_job.terminate("the test is over")


@pytest.mark.parametrize("pace", ["steady", "an interval ends between two looks"])
async def test_a_field_only_a_late_record_has_is_a_column_no_checkpoint_leaves_out(
    client: Client, context: ActivityContext, monkeypatch: pytest.MonkeyPatch, pace: str
) -> None:
    """On SQLite an export starts writing with the first record's fields; a record near
    the end with another makes it start over with every field, before any checkpoint has
    named fewer (a retry from it would write a file whose rows lack the column). Whether
    a checkpoint is due is asked once a batch: the interval may end between two asks."""
    if pace != "steady":
        answers = itertools.cycle([False, True])
        monkeypatch.setattr(ResumableFile, "checkpoint_due", lambda _self: next(answers))
    project = f"late-field-{uuid.uuid4().hex[:8]}"
    rows = [
        (f"k{n:04d}", json.dumps({"n": n, **({"late": "yes"} if n == 550 else {})}))
        for n in range(RECORDS)
    ]
    await context.db.run(lambda session: create_project(session, project, None))
    await asyncio.to_thread(_store, context.db, project, rows)
    work = ExportWork.model_validate(
        {"project_id": project, "format": "csv", "key_prefix": None, "batch_rows": BATCH}
    )
    job = await started_job(client, context)
    attempt = Attempt(client, job)

    result = await attempt.env.run(ExportActivities(context).export_records, work)

    lines = content(context, job.id, result.artifact).decode().splitlines()
    assert lines[0] == "key,late,n"
    assert lines[1] == "k0000,,0"
    assert lines[551] == "k0550,yes,550"
    assert len(lines) == RECORDS + 1
    written = [p.checkpoint for p in attempt.heartbeats if p.checkpoint and p.checkpoint["rows"]]
    assert written, "the export checkpointed as it went"
    assert all(checkpoint["fields"] == ["late", "n"] for checkpoint in written)
    await job.terminate("the test is over")


def _store(db: Database, project: str, rows: list[tuple[str, str]]) -> None:
    with db.writing() as connection:
        upsert_records(connection, project, rows, utcnow())
