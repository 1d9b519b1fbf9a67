"""A `unique` test judged as a split test run judges it (`datasets/duplicates.py`: the
database picks the records whose value may repeat) gives the verdict, the failing records
and their order of a test that reads every record, on each database, for values whose
spellings differ but Python's `json` reads as equal, and for values it tells apart."""

import json
import uuid
from typing import Any

import pytest

from pastools_jobs.clock import utcnow
from pastools_jobs.datasets.duplicates import repeated_value_batches
from pastools_jobs.datasets.records import record_batches, upsert_records
from pastools_jobs.datasets.testsuite import Failures, Unique
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Project

SPELLINGS = [
    "1", "1.0", "1.00", "1e0", "10E-1", "-0", "0", "0.0", "-0.0", "1e-400", "0.1",
    "0.10000000000000001", "12345678901234567890", "12345678901234567891",
    "9007199254740993", "9007199254740992", "1e400", '"1"', '"\\u00e9"', '"\u00e9"',
    "true", "false", "null", '{"a": 1, "b": [2, 3]}', '{"b": [2, 3], "a": 1}', "[1, 2]",
    "[2, 1]", '"x"',
]  # fmt: skip
"""Each in a record of its own, twice over (k000… then k100…), plus once more alone."""


def records(db: Database) -> str:
    """A project whose documents hold each spelling at `v`, `n.v` and `we"ird`, as written."""
    project = f"p-{uuid.uuid4().hex[:10]}"
    rows = []
    for round_ in range(2):
        for n, spelling in enumerate(SPELLINGS[: len(SPELLINGS) - round_ * 3]):
            text = f'{{"v": {spelling}, "n": {{"v": {spelling}}}, "we\\"ird": {spelling}}}'
            rows.append((f"k{round_}{n:02d}", text))
    rows.append(("k900", '{"other": 1}'))
    rows.append(("k901", "[1]"))
    with db.transaction() as session:
        session.add(Project(id=project, created_at=utcnow(), updated_at=utcnow()))
        session.flush()
        upsert_records(session.connection(), project, rows, utcnow())
    return project


@pytest.mark.parametrize("field", ["v", "n.v", 'we"ird'])
def test_the_database_narrowed_unique_judges_as_reading_every_record(
    db: Database, field: str
) -> None:
    project = records(db)
    test = Unique(kind="unique", name="u", field=field)
    everything: list[dict[str, Any]] = []
    narrowed: list[dict[str, Any]] = []

    one = test.judge(record_batches(db, project), Failures(everything.append, 100))
    split = test.judge(
        repeated_value_batches(db, project, field, batch_size=7),
        Failures(narrowed.append, 100),
        total=one.total,
    )

    assert split == one
    assert narrowed == everything
    assert one.failing >= 15, "the spellings Python reads as equal repeat"
    same = {json.dumps(row["value"]) for row in everything}
    assert {"1.0", '"\\u00e9"', '{"a": 1, "b": [2, 3]}', "0.1"} <= same
    read = sum(map(len, repeated_value_batches(db, project, field)))
    assert one.total is not None
    if db.engine.dialect.name == "sqlite" and '"' in field:
        assert read == one.total, "a path SQLite cannot spell: every record read"
    else:
        assert read < one.total, "every record read: nothing narrowed"
