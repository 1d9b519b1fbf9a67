"""The staging area of insert-only and replace imports, and COPY's text format, on both
databases: what a retried batch or a retried move does, and what a failed import leaves."""

import asyncio
import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext
from activities.importing import ImportActivities, ImportWork
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.datasets.projects import create_project
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.datasets.staging import (
    Swapped,
    clear_swapped,
    discard_staging,
    find_conflicts,
    open_staging,
    reset_staging,
    stage_records,
    swap_in,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.job_catalog import IMPORT
from pastools_jobs.partitions import ByteRange, Partition
from pastools_jobs.repository import queued_job
from pastools_jobs.storage import open_storage
from workflows.results import ImportResult


def project_with(db: Database, documents: dict[str, dict]) -> str:
    project = f"p{uuid.uuid4().hex[:10]}"
    with db.transaction() as session:
        create_project(session, project, None)
        session.flush()
        rows = [(key, json.dumps(doc)) for key, doc in documents.items()]
        if rows:
            upsert_records(session.connection(), project, rows, utcnow())
    return project


def new_job(db: Database, project: str) -> str:
    job_id = uuid.uuid4().hex
    with db.transaction() as session:
        session.add(queued_job(job_id, IMPORT.name, project, {"source": "x.csv"}, utcnow()))
    return job_id


def stored(db: Database, project: str) -> dict[str, dict]:
    with db.transaction() as session:
        rows = session.execute(
            text("SELECT key, data FROM records WHERE project_id = :p"), {"p": project}
        ).all()
    return {key: json.loads(data) if isinstance(data, str) else data for key, data in rows}


def staged_count(db: Database, job_id: str) -> int:
    with db.transaction() as session:
        query = text("SELECT count(*) FROM staged_records WHERE job_id = :j")
        return int(session.execute(query, {"j": job_id}).scalar_one())


def stage(
    db: Database, job_id: str, project: str, fresh: bool, rows: list, run: str = "run-1"
) -> None:
    with db.transaction() as session:
        assert open_staging(session.connection(), job_id, run, project, fresh) is None
        stage_records(session.connection(), job_id, rows)


def test_insert_only_moves_new_keys_once_and_reports_the_existing(db: Database) -> None:
    project = project_with(db, {"a": {"v": 1}, "b": {"v": 2}})
    job = new_job(db, project)
    batch = [(2, "b", '{"v": 20}'), (3, "c", '{"v": 30}')]
    stage(db, job, project, True, batch)
    stage(db, job, project, False, batch)  # the batch again, as a retry whose heartbeat was lost

    with db.transaction() as session:
        assert find_conflicts(session.connection(), job, project, 10) == (1, [(2, "b")])
        moved = swap_in(session.connection(), job, project, "insert-only", utcnow())
    with db.transaction() as session:  # a retry of the move changes nothing
        again = swap_in(session.connection(), job, project, "insert-only", utcnow())
        assert open_staging(session.connection(), job, "run-1", project, True) == Swapped(1, 1)

    assert moved == again == Swapped(written=1, conflicts=1)
    assert stored(db, project) == {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 30}}
    with db.transaction() as session:
        assert clear_swapped(session.connection(), job) == 2
    assert staged_count(db, job) == 0


def test_replace_swaps_in_the_staged_records_or_nothing(db: Database) -> None:
    project = project_with(db, {"old": {"v": 0}})
    failed = new_job(db, project)
    stage(db, failed, project, True, [(2, "new", '{"v": 1}')])
    with db.transaction() as session:
        discard_staging(session.connection(), failed)
    assert stored(db, project) == {"old": {"v": 0}}
    assert staged_count(db, failed) == 0

    job = new_job(db, project)
    stage(db, job, project, True, [(2, "stale", "{}")])
    fresh = [(2, "x", '{"v": 1}'), (3, "y", '{"v": 2}'), (4, "x", '{"v": 3}')]
    stage(db, job, project, True, fresh)  # a fresh start; a key twice: the last wins
    with db.transaction() as session:
        assert swap_in(session.connection(), job, project, "replace", utcnow()).written == 2
    assert stored(db, project) == {"x": {"v": 3}, "y": {"v": 2}}


def test_copy_keeps_keys_and_documents_with_tabs_newlines_and_backslashes(db: Database) -> None:
    project = project_with(db, {})
    rows = [
        ("tab\there", '{"a":\t"back\\\\slash \\n"}'),
        ("line\nbreak\r", '{"b": "\\t"}'),
        ("back\\slash", "[1,\r\n2]"),
    ]
    with db.transaction() as session:
        upsert_records(session.connection(), project, rows, utcnow())
    assert stored(db, project) == {
        "tab\there": {"a": "back\\slash \n"},
        "line\nbreak\r": {"b": "\t"},
        "back\\slash": [1, 2],
    }


def test_insert_only_counts_a_key_taken_between_the_check_and_the_move(db: Database) -> None:
    """Another import may write a staged key after the conflicts were looked up: the
    move skips it too, and says so, so that no row goes missing uncounted."""
    project = project_with(db, {"b": {"v": 2}})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "b", '{"v": 20}'), (3, "c", '{"v": 30}')])
    with db.transaction() as session:
        assert find_conflicts(session.connection(), job, project, 10)[0] == 1
    with db.transaction() as session:  # meanwhile, an upsert of another job's
        upsert_records(session.connection(), project, [("c", '{"v": 3}')], utcnow())
    with db.transaction() as session:
        moved = swap_in(session.connection(), job, project, "insert-only", utcnow())

    assert moved == Swapped(written=0, conflicts=2)
    assert stored(db, project) == {"b": {"v": 2}, "c": {"v": 3}}


def test_a_retry_of_the_job_is_a_new_run_that_stages_and_moves_afresh(db: Database) -> None:
    """The job's first run moved its file and failed later (say, merging its rejected
    rows); the retry may bring the file changed, and must not take the old move for its own."""
    project = project_with(db, {})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "a", '{"v": 1}')], run="first")
    with db.transaction() as session:
        swap_in(session.connection(), job, project, "replace", utcnow())

    stage(db, job, project, True, [(2, "a", '{"v": 2}'), (3, "b", '{"v": 3}')], run="retry")
    with db.transaction() as session:
        moved = swap_in(session.connection(), job, project, "replace", utcnow())

    assert moved == Swapped(written=2, conflicts=0)
    assert stored(db, project) == {"a": {"v": 2}, "b": {"v": 3}}


def test_a_staging_made_before_runs_counted_is_reset_by_a_new_runs_plan(db: Database) -> None:
    """Stagings from before migration 0018 have no run: a split import's plan, which
    comes before any move of its run, makes the staging its run's, empty."""
    project = project_with(db, {})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "a", '{"v": 1}')])
    with db.transaction() as session:
        swap_in(session.connection(), job, project, "replace", utcnow())
        before_runs = "UPDATE import_stagings SET run_id = NULL WHERE job_id = :j"
        session.execute(text(before_runs), {"j": job})
        reset_staging(session.connection(), job, "retry", project)
        stage_records(session.connection(), job, [(2, "b", '{"v": 2}')])
        moved = swap_in(session.connection(), job, project, "replace", utcnow())

    assert moved == Swapped(written=1, conflicts=0)
    assert stored(db, project) == {"b": {"v": 2}}


def test_clearing_leaves_the_rows_of_a_staging_not_yet_moved(db: Database) -> None:
    project = project_with(db, {})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "a", "{}")])
    with db.transaction() as session:
        assert clear_swapped(session.connection(), job) == 0
    assert staged_count(db, job) == 1


def test_a_move_held_up_by_another_writer_heartbeats_while_it_waits(
    db: Database, tmp_path: Path
) -> None:
    """Over millions of rows, or behind another transaction, the move takes longer than
    the heartbeat timeout: silent, it would be timed out and retried while still moving."""
    project = project_with(db, {"a": {"v": 1}})
    job = new_job(db, project)
    stage(db, job, project, True, [(n, f"k{n:05}", f'{{"v": {n}}}') for n in range(2, 502)])
    mover = Mover(db, tmp_path, job)

    with another_writer(db, job) as release:
        result = asyncio.run(mover.move_while_held(move_work(project), release))

    assert (result.imported, result.skipped) == (500, 0)
    assert len(stored(db, project)) == 501
    assert staged_count(db, job) == 0


def test_a_cancel_that_reaches_the_move_midway_comes_too_late(db: Database, tmp_path: Path) -> None:
    """The move's transaction cannot stop halfway: once it commits, the records are the
    file's, and the activity says what it moved rather than that it was cancelled."""
    project = project_with(db, {})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "a", '{"v": 1}')])
    mover = Mover(db, tmp_path, job)

    with another_writer(db, job) as release:
        held = mover.move_while_held(move_work(project), release, cancel=True, then_heartbeats=2)
        result = asyncio.run(held)

    assert result.imported == 1
    assert stored(db, project) == {"a": {"v": 1}}


def test_a_cancel_during_the_look_up_of_existing_keys_stops_the_move(
    db: Database, tmp_path: Path
) -> None:
    """Before the move's transaction, nothing is written yet: a cancel still stops it."""
    project = project_with(db, {"a": {"v": 1}})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "b", '{"v": 2}')])
    mover = Mover(db, tmp_path, job)

    work = move_work(project, "insert-only")
    with (
        another_writer(db, job, records_too=True) as release,
        pytest.raises(asyncio.CancelledError),
    ):
        asyncio.run(mover.move_while_held(work, release, cancel=True))

    assert stored(db, project) == {"a": {"v": 1}}
    assert staged_count(db, job) == 1


def test_a_move_retried_before_its_rows_were_cleared_reports_what_it_moved(
    db: Database, tmp_path: Path
) -> None:
    """The attempt that moved died while it cleared the staging: the rows left there are
    in the records now, not keys that existed before the import."""
    project = project_with(db, {"a": {"v": 1}})
    job = new_job(db, project)
    stage(db, job, project, True, [(2, "a", '{"v": 2}'), (3, "b", '{"v": 3}')])
    with db.transaction() as session:
        swap_in(session.connection(), job, project, "insert-only", utcnow())

    retried = Mover(db, tmp_path, job).move(move_work(project, "insert-only", "fail"))

    assert (retried.imported, retried.skipped, retried.errors) == (1, 1, [])
    assert stored(db, project) == {"a": {"v": 1}, "b": {"v": 3}}
    assert staged_count(db, job) == 0


class Mover:
    """The real `move_staged_import` activity of a job, run by Temporal's stand-in
    environment, which records its heartbeats and can cancel it."""

    def __init__(self, db: Database, data_dir: Path, job_id: str) -> None:
        settings = Settings(data_dir=data_dir, heartbeat_interval_seconds=0.05)
        self.activities = ImportActivities(ActivityContext(settings, db, open_storage(settings)))
        self.environment = ActivityEnvironment()
        self.environment.info = dataclasses.replace(
            self.environment.info, workflow_id=job_id, workflow_run_id=uuid.uuid4().hex
        )
        self.heartbeats: list[tuple[Any, ...]] = []
        self.environment.on_heartbeat = lambda *details: self.heartbeats.append(details)

    async def move_while_held(
        self,
        work: ImportWork,
        release: threading.Event,
        *,
        cancel: bool = False,
        then_heartbeats: int = 0,
    ) -> ImportResult:
        """The move, started while another writer holds it up; once it has heartbeated
        twice meanwhile (and been cancelled, and heartbeated `then_heartbeats` times more,
        if asked), the other writer lets go."""
        move = asyncio.ensure_future(self.environment.run(self.activities.move_staged, work))
        try:
            await self.heartbeated(2)
            if cancel:
                self.environment.cancel()
                await self.heartbeated(then_heartbeats)
        finally:
            release.set()
        return await asyncio.wait_for(move, timeout=30)

    async def heartbeated(self, count: int) -> None:
        """Until `count` more heartbeats came."""
        target = len(self.heartbeats) + count
        await asyncio.wait_for(until(lambda: len(self.heartbeats) >= target), timeout=10)

    def move(self, work: ImportWork) -> ImportResult:
        return asyncio.run(self.environment.run(self.activities.move_staged, work))


@contextmanager
def another_writer(
    db: Database, job_id: str, *, records_too: bool = False
) -> Iterator[threading.Event]:
    """A transaction in another thread holding what the move needs first (SQLite's write
    lock; on PostgreSQL the staging's row, and with `records_too` every read of the
    records) until the event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.writing() as connection:
            if connection.dialect.name == "postgresql":
                lock = "SELECT 1 FROM import_stagings WHERE job_id = :j FOR UPDATE"
                connection.execute(text(lock), {"j": job_id})
                if records_too:
                    connection.execute(text("LOCK TABLE records IN ACCESS EXCLUSIVE MODE"))
            held.set()
            release.wait(timeout=60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=30), "the other writer never got its lock"
        yield release
    finally:
        release.set()
        holder.join()


def move_work(project: str, mode: str = "upsert", on_error: str = "skip") -> ImportWork:
    last = Partition(index=1, count=2, job_total=200, bytes=ByteRange(start=100, end=200))
    params: dict[str, Any] = {"project_id": project, "source": "big.csv", "format": "csv"}
    params |= {"key_column": "id", "on_error": on_error, "max_examples": 5, "batch_rows": 100}
    return ImportWork.model_validate({**params, "mode": mode, "csv": {}, "partition": last})


async def until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.01)
