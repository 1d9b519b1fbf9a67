"""Listing projects shows each one's record count, counted for all listed projects in
one grouped query rather than one query per project."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from pastools_jobs.clock import utcnow
from pastools_jobs.datasets.projects import create_project, list_counted
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.db.engine import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_listed_projects_carry_their_record_counts(db: Database) -> None:
    run = uuid.uuid4().hex[:8]
    sizes = {f"counted-{run}-{n}": n for n in (0, 1, 3)}
    hidden = f"hidden-{run}"
    with db.transaction() as session:
        for project_id, size in [*sizes.items(), (hidden, 2)]:
            create_project(session, project_id, None)
            rows = [(f"k{i}", "{}") for i in range(size)]
            if rows:
                upsert_records(session.connection(), project_id, rows, utcnow())

    with db.transaction() as session, statements(db) as seen:
        listed = list_counted(session, lambda project_id: project_id in sizes)

    assert {c.project.id: c.records for c in listed} == sizes
    assert [c.project.id for c in listed] == sorted(sizes)
    assert len([s for s in seen if "records" in s]) == 1
