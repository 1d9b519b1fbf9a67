"""Finding jobs by their parameters and error type, the same on SQLite and PostgreSQL."""

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest

from pastools_jobs.db.engine import Database
from pastools_jobs.domain import InvalidJobInput
from pastools_jobs.param_filters import ParamFilter, parse_param_filters
from pastools_jobs.repository import JobFilter, add_job, list_jobs, queued_job
from tests.support.rows import LONG_AGO

JOBS: dict[str, dict[str, Any]] = {
    "parquet": {"source": "uploads/2026-01/a.parquet", "format": "parquet", "batch_rows": 500},
    "csv": {"source": "uploads/2026-02/b.csv", "format": "csv", "batch_rows": 3},
    "upper": {"source": "Uploads/c.csv", "format": "csv"},
    "percent": {"source": "50%_off.csv", "format": "csv"},
    "digits": {"source": "3", "format": "csv"},
    "flags": {"dry_run": True, "note": None, "ratio": 0.5},
    "unflagged": {"dry_run": False, "note": "none"},
    "nested": {"format": {"name": "csv"}, "tags": ["csv"]},
}


@pytest.fixture(scope="module")
def jobs(db: Database) -> tuple[str, dict[str, str]]:
    """One project with a job per entry of JOBS, created a minute apart in that order."""
    project = f"params-{uuid.uuid4().hex[:8]}"
    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in JOBS}
    with db.transaction() as session:
        for index, (name, params) in enumerate(JOBS.items()):
            created = LONG_AGO + timedelta(minutes=index)
            add_job(session, queued_job(ids[name], "import", project, params, created))
    return project, ids


def found(db: Database, project: str, ids: dict[str, str], query: str, **where: Any) -> set[str]:
    """The names of the jobs a list query `param.…=…&…` finds, over every page."""
    items = [tuple(item.split("=", 1)) for item in query.split("&")]
    params = parse_param_filters((key, value) for key, value in items)
    names = {job_id: name for name, job_id in ids.items()}
    seen: list[str] = []
    cursor = None
    with db.transaction() as session:
        while True:
            filter_ = JobFilter(project_id=project, params=params, **where)
            page = list_jobs(session, filter_, limit=2, cursor=cursor)
            seen += [names[job.id] for job in page.jobs]
            if (cursor := page.next_cursor) is None:
                break
    assert len(seen) == len(set(seen)), "a job was listed twice across pages"
    return set(seen)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("param.format=csv", {"csv", "upper", "percent", "digits"}),
        ("param.format=parquet", {"parquet"}),
        ("param.format=csv&param.format=parquet", {"csv", "upper", "percent", "digits", "parquet"}),
        ("param.format=csv&param.source=uploads/*", {"csv"}),
        ("param.source=uploads/*", {"parquet", "csv"}),
        ("param.source=uploads/2026-02/b.csv", {"csv"}),
        ("param.source=UPLOADS/*", set()),
        ("param.source=50%*", {"percent"}),
        ("param.source=5_%*", set()),
        ("param.source=*", {"parquet", "csv", "upper", "percent", "digits"}),
        ("param.source=3", {"digits"}),
        ("param.batch_rows=500", {"parquet"}),
        ("param.batch_rows=3", {"csv"}),
        ("param.batch_rows=5*", set()),
        ("param.dry_run=true", {"flags"}),
        ("param.dry_run=false", {"unflagged"}),
        ("param.note=null", {"flags"}),
        ("param.note=none", {"unflagged"}),
        ("param.ratio=0.5", {"flags"}),
        ("param.ratio=5e-1", {"flags"}),
        ("param.missing=csv", set()),
        ("param.tags=csv", set()),
    ],
)
def test_a_parameter_filter_finds_exactly_the_jobs_with_that_value(
    db: Database, jobs: tuple[str, dict[str, str]], query: str, expected: set[str]
) -> None:
    project, ids = jobs
    assert found(db, project, ids, query) == expected


def test_parameter_filters_combine_with_the_other_filters(
    db: Database, jobs: tuple[str, dict[str, str]]
) -> None:
    project, ids = jobs
    assert found(db, project, ids, "param.format=csv", types=["export"]) == set()
    assert found(db, project, ids, "param.format=csv", id_contains="upper") == {"upper"}
    later = LONG_AGO + timedelta(minutes=3)
    assert found(db, project, ids, "param.format=csv", created_from=later) == {"percent", "digits"}
    assert found(db, "another-project", ids, "param.format=csv") == set()


def test_the_error_type_filter_finds_the_failures_of_that_kind(db: Database) -> None:
    project = f"errors-{uuid.uuid4().hex[:8]}"
    with db.transaction() as session:
        for kind in ("SourceNotFound", "SourceNotFound", "InvalidParameters", None):
            job = queued_job(uuid.uuid4().hex, "import", project, {}, LONG_AGO)
            job.status, job.error_type = ("failed", kind) if kind else ("completed", None)
            add_job(session, job)
    with db.transaction() as session:

        def kinds(*wanted: str) -> list[str]:
            page = list_jobs(session, JobFilter(project_id=project, error_types=wanted), 50, None)
            return sorted(job.error_type or "" for job in page.jobs)

        assert kinds("SourceNotFound") == ["SourceNotFound", "SourceNotFound"]
        assert kinds("SourceNotFound", "InvalidParameters") == [
            "InvalidParameters",
            "SourceNotFound",
            "SourceNotFound",
        ]
        assert kinds("Nothing") == []


def test_parsing_keeps_order_groups_values_and_ignores_other_keys() -> None:
    query = [("status", "failed"), ("param.format", "csv"), ("param.a_1", "x")]
    query.append(("param.format", "parquet"))
    assert parse_param_filters(query) == (
        ParamFilter("format", ("csv", "parquet")),
        ParamFilter("a_1", ("x",)),
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([("param.", "x")], "'param.' is not a parameter filter"),
        ([("param.a.b", "x")], "'param.a.b' is not a parameter filter"),
        ([('param.a"]', "x")], "is not a parameter filter"),
        ([("param.9a", "x")], "'param.9a' is not a parameter filter"),
        ([("param.a", "x" * 1001)], "'param.a' is longer than 1000 characters"),
        ([("param.a", "x")] * 21, "'param.a' is given more than 20 times"),
        ([(f"param.a{n}", "x") for n in range(11)], "At most 10 parameters"),
    ],
)
def test_a_filter_that_cannot_be_made_is_refused_with_its_reason(
    query: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(InvalidJobInput, match=re.escape(message)):
        parse_param_filters(query)
