"""The job_counts table: jobs per (project, status, type), kept exact by every writer.

Statistics over a million jobs cannot scan them on each request (100 to 300 ms); this
table answers in about a millisecond. Every insert, delete and status change of a job
calls `record_counts` in the same transaction, as increments by UPSERT, which two
concurrent writers can both apply without losing one. `count_drift` and
`rebuild_counts` are for checking and repairing it (e.g. by `pastools doctor`).
"""

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    TextClause,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from pastools_jobs.db.models import Job, JobCount

TABLE = JobCount.__tablename__

CountKey = tuple[str, str, str]
"""(project_id, status, type)"""


def count_change(
    project_id: str, job_type: str, old: str | None, new: str | None
) -> Counter[CountKey]:
    """The counts' change when a job moves from `old` to `new` (None: does not exist)."""
    change: Counter[CountKey] = Counter()
    if old is not None:
        change[(project_id, old, job_type)] -= 1
    if new is not None:
        change[(project_id, new, job_type)] += 1
    return change


ROWS_PER_UPSERT = 100
"""Keys per statement: a bulk delete's change may hold many; this bounds the statement's
parameters (SQLite allows 32,766) and the number of statement shapes kept."""


def record_counts(connection: Connection, change: Counter[CountKey]) -> None:
    """Apply `change` as UPSERTs of up to `ROWS_PER_UPSERT` keys (one for a status change),
    in sorted order, so that concurrent writers lock the same rows in the same order and
    cannot deadlock each other."""
    rows = [(key, n) for key, n in sorted(change.items()) if n != 0]
    for start in range(0, len(rows), ROWS_PER_UPSERT):
        batch = rows[start : start + ROWS_PER_UPSERT]
        connection.execute(_increment(len(batch)), _numbered(batch))


def _numbered(rows: list[tuple[CountKey, int]]) -> dict[str, str | int]:
    """The parameters of `_increment`'s rows: the columns' names suffixed with the row's index."""
    parameters: dict[str, str | int] = {}
    for index, ((project_id, status, job_type), n) in enumerate(rows):
        parameters[f"project_id_{index}"] = project_id
        parameters[f"status_{index}"] = status
        parameters[f"type_{index}"] = job_type
        parameters[f"n_{index}"] = n
    return parameters


@functools.cache
def _increment(rows: int) -> TextClause:
    """INSERT of `rows` rows … ON CONFLICT DO UPDATE, built once per row count: one
    statement instead of an executemany, which psycopg pipelines at a cost for the two
    rows of a status change. Text because SQLAlchemy compiles a multi-row INSERT anew on
    every call (it never caches one); PostgreSQL and SQLite spell this one the same."""
    values = ", ".join(
        f"(:project_id_{index}, :status_{index}, :type_{index}, :n_{index})"
        for index in range(rows)
    )
    return text(
        f"INSERT INTO {TABLE} (project_id, status, type, n) VALUES {values} "
        f"ON CONFLICT (project_id, status, type) DO UPDATE SET n = {TABLE}.n + excluded.n"
    )


def counted(rows: Iterable[tuple[str, str, str]]) -> Counter[CountKey]:
    """The counts' change when the jobs (project_id, status, type) of `rows` are deleted."""
    change: Counter[CountKey] = Counter()
    for key in rows:
        change[key] -= 1
    return change


@dataclass(frozen=True)
class CountDrift:
    """A (project, status, type) whose count in job_counts differs from the jobs table."""

    project_id: str
    status: str
    type: str
    counted: int
    actual: int


def actual_counts(session: Session) -> dict[CountKey, int]:
    query = select(Job.project_id, Job.status, Job.type, func.count()).group_by(
        Job.project_id, Job.status, Job.type
    )
    return {(p, s, t): n for p, s, t, n in session.execute(query)}


def count_drift(session: Session) -> list[CountDrift]:
    """Every difference between job_counts and a GROUP BY of jobs; empty when exact.

    One statement, so one snapshot even while jobs change; it scans the jobs table,
    so it is a check to run now and then, not per request.
    """
    both = union_all(
        select(
            JobCount.project_id,
            JobCount.status,
            JobCount.type,
            JobCount.n.label("counted"),
            literal(0).label("actual"),
        ),
        select(
            Job.project_id, Job.status, Job.type, literal(0), func.count().label("actual")
        ).group_by(Job.project_id, Job.status, Job.type),
    ).subquery()
    counted_n, actual_n = func.sum(both.c.counted), func.sum(both.c.actual)
    query = (
        select(both.c.project_id, both.c.status, both.c.type, counted_n, actual_n)
        .group_by(both.c.project_id, both.c.status, both.c.type)
        .having(counted_n != actual_n)
        .order_by(both.c.project_id, both.c.status, both.c.type)
    )
    return [CountDrift(p, s, t, int(c), int(a)) for p, s, t, c, a in session.execute(query)]


def rebuild_counts(session: Session) -> int:
    """Recount job_counts from jobs; returns how many (project, status, type) rows it holds.

    On PostgreSQL the lock makes concurrent writers wait with their increments until
    the recount commits, so none is lost or counted twice; SQLite has one writer anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE job_counts IN SHARE ROW EXCLUSIVE MODE"))
    session.execute(delete(JobCount))
    actual = actual_counts(session)
    if actual:
        session.execute(
            insert(JobCount),
            [{"project_id": p, "status": s, "type": t, "n": n} for (p, s, t), n in actual.items()],
        )
    return len(actual)
