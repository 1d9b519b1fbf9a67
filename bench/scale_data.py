"""A year of jobs for the query benchmark, bulk-loaded by COPY into the migrated table.

The table is the platform's own (`upgrade_database`), so the indexes are exactly those
the migrations create. Distributions are skewed the way real ones are: projects by
Zipf's law (the largest has about a fifth of all jobs), most jobs completed, few
open; that is what makes a page 10,000 rows deep into one project's completed jobs
exist at all (100 projects x 5 statuses would average 2,000 rows each).
"""

import csv
import io
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pastools_jobs.counts import rebuild_counts
from pastools_jobs.db.migrate import upgrade_database

PROJECTS = [f"project-{rank:03d}" for rank in range(1, 101)]
PROJECT_WEIGHTS = [1 / rank for rank in range(1, 101)]
STATUSES = ["completed", "failed", "cancelled", "running", "queued"]
STATUS_WEIGHTS = [0.80, 0.10, 0.06, 0.02, 0.02]
TYPES = ["probe", "import", "export", "validation", "test_run"]
TYPE_WEIGHTS = [0.30, 0.25, 0.20, 0.15, 0.10]
RESULTS = {
    "probe": {"items": 1, "resumed_from": 0},
    "import": {
        "source": "x.csv",
        "format": "csv",
        "imported": 1,
        "skipped": 0,
        "errors": [],
        "resumed_from_row": 0,
    },
    "export": {"artifact": "export.csv", "format": "csv", "rows": 1, "bytes": 8},
    "validation": {"valid": 1, "invalid": 0, "errors_by_path": [], "report": "report.jsonl"},
    "test_run": {"tests": 0, "passed": 0, "failed": 0, "results": [], "artifacts": []},
}
"""A completed job's result, as its type's result model reads it."""
FORMATS = ["csv", "jsonl", "parquet"]
FORMAT_WEIGHTS = {"import": [0.50, 0.25, 0.25], "export": [0.60, 0.20, 0.20]}
SOURCE_FILES = 500
"""Distinct file names per month of uploads: an import's source is one of 6,000."""
YEAR_SECONDS = 365 * 24 * 3600
CHUNK = 20_000

COLUMNS = (
    "id, type, project_id, status, params, result, attempt, run_id, progress_done, "
    "progress_total, progress_message, error_type, error_message, created_at, started_at, "
    "completed_at, updated_at"
)


def _stamp(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def _params(rng: random.Random, kind: str, created: datetime) -> dict[str, Any]:
    """What a job of `kind` was asked, as users ask it: imports name an upload of their
    month and a format, exports a format, probes their items."""
    if kind == "probe":
        return {"items": 1}
    if kind not in FORMAT_WEIGHTS:
        return {}
    params: dict[str, Any] = {"format": rng.choices(FORMATS, FORMAT_WEIGHTS[kind])[0]}
    if kind == "import":
        number = rng.randrange(SOURCE_FILES)
        params["source"] = f"uploads/{created:%Y-%m}/file-{number:05d}.{params['format']}"
    return params


def _row(rng: random.Random, now: datetime, project: str, status: str, kind: str) -> list[Any]:
    created = now - timedelta(seconds=rng.random() * YEAR_SECONDS)
    started = None if status == "queued" else created + timedelta(seconds=rng.random() * 60)
    completed = None
    if started is not None and status not in ("queued", "running"):
        completed = started + timedelta(seconds=1 + rng.random() * 600)
    total = rng.randint(1, 100_000)
    done = total if status == "completed" else (0 if started is None else rng.randint(0, total))
    failed = status == "failed"
    return [
        uuid.UUID(int=rng.getrandbits(128)).hex,
        kind,
        project,
        status,
        json.dumps(_params(rng, kind, created)),
        json.dumps(RESULTS[kind]) if status == "completed" else "",
        1,
        uuid.UUID(int=rng.getrandbits(128)).hex,
        done,
        total,
        f"Processed item {done} of {total}",
        "SourceNotFound" if failed else "",
        "Import source 'x.csv' does not exist in the import directory." if failed else "",
        _stamp(created),
        _stamp(started),
        _stamp(completed),
        _stamp(completed or started or created),
    ]


def csv_chunks(rows: int, seed: int = 5) -> Iterator[str]:
    """`rows` jobs as CSV text in chunks; empty fields are NULL (COPY's CSV default)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for start in range(0, rows, CHUNK):
        count = min(CHUNK, rows - start)
        projects = rng.choices(PROJECTS, PROJECT_WEIGHTS, k=count)
        statuses = rng.choices(STATUSES, STATUS_WEIGHTS, k=count)
        kinds = rng.choices(TYPES, TYPE_WEIGHTS, k=count)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for project, status, kind in zip(projects, statuses, kinds, strict=True):
            writer.writerow(_row(rng, now, project, status, kind))
        yield buffer.getvalue()


def psycopg_dsn(url: str) -> str:
    """psycopg's connection string from the platform's SQLAlchemy URL."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load_jobs(url: str, rows: int, revision: str = "head") -> None:
    """Migrate (to `revision`), then COPY with the secondary indexes dropped and rebuilt afterwards
    (their definitions read back from the catalog, so they stay the migrations' own);
    COPY bypasses the platform's writers, so job_counts is recounted at the end."""
    upgrade_database(url, revision)
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as connection:
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' "
            "AND indexname <> 'jobs_pkey'"
        ).fetchall()
        for name, _definition in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        with connection.cursor().copy(f"COPY jobs ({COLUMNS}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in csv_chunks(rows):
                copy.write(chunk)
        for _name, definition in indexes:
            connection.execute(definition)
        connection.execute("VACUUM ANALYZE jobs")
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        rebuild_counts(session)
    engine.dispose()
    with psycopg.connect(psycopg_dsn(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE job_counts")
