"""Per-job logs without a worker: the buffer keeps the newest lines and counts the rest,
the table keeps the newest `cap` and says how many were dropped, a deleted job takes its
lines with it, on both databases."""

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import JobLogLine
from pastools_jobs.job_logs.capture import (
    JobLogHandler,
    LogBuffer,
    LogTarget,
    LogWriter,
    logging_for,
)
from pastools_jobs.job_logs.store import MESSAGE_MAX_CHARS, LogLine, read_lines
from pastools_jobs.repository import delete_finished
from tests.support.rows import write_finished


def line(message: str) -> LogLine:
    return LogLine(datetime.now(UTC), "INFO", message, attempt=1, run_id="run-1")


def finished_job(url: str) -> str:
    project = f"logs-{uuid.uuid4().hex[:8]}"
    write_finished(url, project, 1)
    return f"{project}-00000"


def messages(db: Database, job_id: str, after: int = 0, limit: int = 100) -> list[str]:
    with db.reading() as connection:
        return [line.message for line in read_lines(connection, job_id, after, limit).lines]


def dropped(db: Database, job_id: str) -> int:
    with db.reading() as connection:
        return read_lines(connection, job_id, 0, 1).dropped


def test_the_buffer_keeps_the_newest_lines_of_each_job_and_counts_the_others() -> None:
    buffer = LogBuffer(cap=3)
    for n in range(5):
        buffer.add("a", line(f"a{n}"))
    buffer.add("b", line("b0"))

    taken = buffer.take("a")
    assert [entry.message for entry in taken["a"].lines] == ["a2", "a3", "a4"]
    assert taken["a"].skipped == 2
    assert not buffer.has("a") and buffer.has("b")
    assert list(buffer.take()) == ["b"] and buffer.take() == {}


def test_the_handler_takes_info_and_above_logged_for_a_job_only() -> None:
    buffer = LogBuffer(cap=10)
    logger = logging.getLogger("tests.job_logs")
    logger.addHandler(JobLogHandler(buffer))
    logger.setLevel(logging.DEBUG)
    try:
        logger.info("outside any job")
        with logging_for(LogTarget("job", "run-7", attempt=2)):
            logger.debug("too fine")
            logger.log(25, "between INFO and WARNING")
            logger.warning("%d of %d", 3, 4)
            try:
                raise ValueError("bad row")
            except ValueError:
                logger.exception("gave up")
    finally:
        logger.handlers.clear()

    lines = [captured.line() for captured in buffer.take("job")["job"].lines]  # type: ignore[union-attr]
    assert [(entry.level, entry.message) for entry in lines] == [
        ("INFO", "between INFO and WARNING"),
        ("WARNING", "3 of 4"),
        ("ERROR", "gave up: ValueError: bad row"),
    ]
    assert {(entry.attempt, entry.run_id) for entry in lines} == {(2, "run-7")}
    assert buffer.take() == {}


def test_the_table_keeps_the_newest_lines_and_counts_the_dropped(
    db: Database, migrated_url: str
) -> None:
    job_id = finished_job(migrated_url)
    buffer = LogBuffer(cap=5)
    writer = LogWriter(db, buffer)
    for n in range(1, 9):
        buffer.add(job_id, line(f"line {n}"))
    writer.flush()
    assert messages(db, job_id) == [f"line {n}" for n in range(4, 9)]
    assert dropped(db, job_id) == 3

    buffer.add(job_id, line("line 9"))
    buffer.add(job_id, line("x" * (MESSAGE_MAX_CHARS + 10)))
    writer.flush(job_id)
    kept = messages(db, job_id)
    assert kept[:4] == ["line 6", "line 7", "line 8", "line 9"]
    assert len(kept[4]) == MESSAGE_MAX_CHARS and kept[4].endswith("…")
    assert dropped(db, job_id) == 5
    assert messages(db, job_id, after=7, limit=2) == ["line 8", "line 9"]


def test_a_deleted_job_takes_its_lines_with_it(db: Database, migrated_url: str) -> None:
    job_id = finished_job(migrated_url)
    buffer = LogBuffer(cap=10)
    buffer.add(job_id, line("kept until the job goes"))
    LogWriter(db, buffer).flush()

    with db.transaction() as session:
        assert delete_finished(session, [job_id]) == [(job_id, job_id.rsplit("-", 1)[0])]
    with db.reading() as connection:
        left = connection.scalar(
            select(func.count()).select_from(JobLogLine).where(JobLogLine.job_id == job_id)
        )
    assert left == 0


def test_lines_of_a_job_without_a_row_are_given_up(db: Database) -> None:
    buffer = LogBuffer(cap=10)
    buffer.add("no-such-job", line("lost"))
    LogWriter(db, buffer).flush()
    assert messages(db, "no-such-job") == [] and buffer.take() == {}
