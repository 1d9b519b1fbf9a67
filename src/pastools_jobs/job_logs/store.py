"""The job_logs table: lines appended in batches with the cap kept at write time, and
read back in order.

Every line a job logs gets the next `seq` of the job, whether it is kept or not, so the
lines dropped are always the seqs below the first one kept: the count needs no table
of its own and stays right however the lines were dropped (in the worker's buffer
before they were written, or deleted here past the cap).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select

from pastools_jobs.db.models import JobLogLine

MESSAGE_MAX_CHARS = 4096
"""A longer message is cut here (and says so): one line cannot fill the database."""


@dataclass(frozen=True)
class LogLine:
    """A line as it was logged; `seq` is given when it is written."""

    at: datetime
    level: str
    message: str
    attempt: int
    run_id: str


@dataclass(frozen=True)
class StoredLine:
    seq: int
    at: datetime
    level: str
    message: str
    attempt: int
    run_id: str


@dataclass(frozen=True)
class LogPage:
    lines: list[StoredLine]
    dropped: int
    """Lines of the job logged but no longer kept (the oldest)."""


def clipped(message: str) -> str:
    if len(message) <= MESSAGE_MAX_CHARS:
        return message
    return message[: MESSAGE_MAX_CHARS - 1] + "…"


def append_lines(
    connection: Connection, job_id: str, lines: Sequence[LogLine], skipped: int, cap: int
) -> None:
    """Write `lines`, the newest of `skipped + len(lines)` logged in a row (the older
    `skipped` were dropped before they got here), then delete what falls past `cap`.

    Two writers of one job at once (a stalled attempt and its retry) may pick the same
    seqs: the second gets an IntegrityError and is meant to try again."""
    last = connection.scalar(select(func.max(JobLogLine.seq)).where(JobLogLine.job_id == job_id))
    first = (last or 0) + skipped + 1
    connection.execute(
        insert(JobLogLine),
        [
            {
                "job_id": job_id,
                "seq": first + n,
                "at": line.at,
                "level": line.level,
                "message": clipped(line.message),
                "attempt": line.attempt,
                "run_id": line.run_id,
            }
            for n, line in enumerate(lines)
        ],
    )
    newest = first + len(lines) - 1
    if newest > cap:
        connection.execute(
            delete(JobLogLine).where(JobLogLine.job_id == job_id, JobLogLine.seq <= newest - cap)
        )


def read_lines(connection: Connection, job_id: str, after: int, limit: int) -> LogPage:
    """Up to `limit` kept lines with a seq above `after`, oldest first."""
    query = (
        select(JobLogLine)
        .where(JobLogLine.job_id == job_id, JobLogLine.seq > after)
        .order_by(JobLogLine.seq)
        .limit(limit)
    )
    lines = [
        StoredLine(row.seq, row.at, row.level, row.message, row.attempt, row.run_id)
        for row in connection.execute(query)
    ]
    first = connection.scalar(select(func.min(JobLogLine.seq)).where(JobLogLine.job_id == job_id))
    return LogPage(lines=lines, dropped=0 if first is None else first - 1)
