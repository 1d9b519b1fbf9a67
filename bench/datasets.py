"""Benchmark of the dataset jobs (issue 3): import, export and validation through the
platform, each against a plain single-process baseline on the same data, same run.

    .venv/bin/python -m bench.datasets [--rows N]

Prints a Markdown table: rows/s of the platform and of the baseline, their ratio, and
the worker's peak RSS during the platform's run.
"""

import argparse
import csv
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text

from bench.memory import peak_mb, reset_peak
from pastools_jobs.datasets.schema import compile_schema
from tests.support.jobs import JobsApi
from tests.support.services import (
    PostgresCluster,
    Stack,
    TemporalServer,
    start_postgres,
    start_stack,
    start_temporal,
)

COLUMNS = ["id", "name", "email", "city", "score", "created"]
SCHEMA = {
    "type": "object",
    "required": ["id", "email"],
    "properties": {"email": {"type": "string", "pattern": "^[^@]+@[^@]+$"}},
}


@dataclass
class Row:
    benchmark: str
    backend: str
    platform_rate: float
    baseline_rate: float
    peak_rss_mb: float

    def markdown(self) -> str:
        ratio = self.platform_rate / self.baseline_rate
        return (
            f"| {self.benchmark} | {self.backend} | {self.platform_rate:,.0f} | "
            f"{self.baseline_rate:,.0f} | {ratio:.2f} | {self.peak_rss_mb:.0f} |"
        )


def generate_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow(
                [i, f"name {i}", f"user{i}@example.org", f"city {i % 500}", i % 1000,
                 f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"]
            )  # fmt: skip


def parsed_rows(path: Path) -> Iterator[tuple[str, str]]:
    """The baseline's parsing: the same CSV module, one JSON document per row."""
    with path.open(newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        for values in reader:
            yield values[0], json.dumps(dict(zip(header, values, strict=True)))


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run_job(api: JobsApi, job_type: str, project: str, **params: Any) -> dict[str, Any]:
    job = api.submit(job_type, project, **params)
    done = api.wait_for_status(job["id"], "completed", "failed", timeout=1800)
    assert done["status"] == "completed", done["error"]
    return done


def platform_rate(
    api: JobsApi, job_type: str, project: str, rows: int, **params: Any
) -> tuple[float, float]:
    """Rows per second through the platform, and the worker's peak RSS meanwhile."""
    assert api.stack.worker is not None
    pid = api.stack.worker.pid
    reset_peak(pid)
    seconds = timed(lambda: run_job(api, job_type, project, **params))
    return rows / seconds, peak_mb(pid)


def baseline_import(url: str, path: Path, project: str, rows: int) -> float:
    """PostgreSQL: COPY of the parsed rows; SQLite: executemany, a transaction per batch."""
    engine = create_engine(url)
    now = "now()" if engine.dialect.name == "postgresql" else "datetime()"
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO projects (id, created_at, updated_at) VALUES (:p, {now}, {now})"),
            {"p": project},
        )
    engine.dispose()

    def copy_postgresql() -> None:
        dsn = url.replace("postgresql+psycopg", "postgresql")
        with (
            psycopg.connect(dsn) as connection,
            connection.cursor().copy(
                "COPY records (project_id, key, data, updated_at) FROM STDIN"
            ) as copy,
        ):
            for key, document in parsed_rows(path):
                copy.write_row((project, key, document, "2026-01-01T00:00:00Z"))

    def executemany_sqlite() -> None:
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        batch: list[tuple[str, str, str, str]] = []
        sql = "INSERT INTO records (project_id, key, data, updated_at) VALUES (?, ?, ?, ?)"
        for key, document in parsed_rows(path):
            batch.append((project, key, document, "2026-01-01 00:00:00.000000"))
            if len(batch) == 5000:
                with connection:
                    connection.executemany(sql, batch)
                batch = []
        with connection:
            connection.executemany(sql, batch)
        connection.close()

    work = copy_postgresql if url.startswith("postgresql") else executemany_sqlite
    return rows / timed(work)


def baseline_export(url: str, project: str, rows: int, target: Path) -> float:
    """PostgreSQL: COPY TO of the same rows; SQLite: a cursor written out as CSV."""

    def copy_out() -> None:
        dsn = url.replace("postgresql+psycopg", "postgresql")
        with (
            psycopg.connect(dsn) as connection,
            target.open("wb") as out,
            connection.cursor().copy(
                "COPY (SELECT key, data FROM records WHERE project_id = %s ORDER BY key) "
                "TO STDOUT WITH CSV",
                (project,),
            ) as copy,
        ):
            for chunk in copy:
                out.write(chunk)

    def cursor_out() -> None:
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        with target.open("w", newline="") as out:
            writer = csv.writer(out)
            for key, data in connection.execute(
                "SELECT key, data FROM records WHERE project_id = ? ORDER BY key", (project,)
            ):
                writer.writerow([key, data])
        connection.close()

    return rows / timed(copy_out if url.startswith("postgresql") else cursor_out)


def baseline_validation(url: str, project: str, rows: int) -> float:
    """A plain loop of the same compiled validator over the records read in one query."""
    validator = compile_schema(SCHEMA)
    engine = create_engine(url)

    def loop() -> None:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=5000).execute(
                text("SELECT data FROM records WHERE project_id = :p"), {"p": project}
            )
            for (data,) in result:
                document = data if isinstance(data, dict) else json.loads(data)
                validator.is_valid(document)

    rate = rows / timed(loop)
    engine.dispose()
    return rate


def copy_source(api: JobsApi, project: str, source: Path) -> None:
    """Into the project's import files, as an upload would (a symlink out is refused)."""
    sink = api.stack.storage.upload(project, source.name)
    with source.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            sink.write(chunk)
    sink.commit()


def measure_backend(api: JobsApi, source: Path, rows: int, scratch: Path) -> list[Row]:
    name = api.stack.name
    baseline_project = f"baseline-{name}"
    base_import = baseline_import(api.stack.database_url, source, baseline_project, rows)
    project = api.create_project(f"bench-{name}")
    copy_source(api, project, source)
    import_rate, import_rss = platform_rate(
        api, "import", project, rows, source=source.name, key_column="id"
    )
    export_rate, export_rss = platform_rate(api, "export", project, rows, format="csv")
    base_export = baseline_export(api.stack.database_url, project, rows, scratch / f"{name}.csv")
    api.http.put(f"/api/projects/{project}/schema", json=SCHEMA)
    validation_rate, validation_rss = platform_rate(api, "validation", project, rows)
    base_validation = baseline_validation(api.stack.database_url, project, rows)
    return [
        Row("import rows/s", name, import_rate, base_import, import_rss),
        Row("export rows/s", name, export_rate, base_export, export_rss),
        Row("validation records/s", name, validation_rate, base_validation, validation_rss),
    ]


def database_url(backend: str, scratch: Path, clusters: list[PostgresCluster]) -> str:
    if backend == "sqlite":
        return f"sqlite:///{scratch / 'bench.sqlite3'}"
    base = Path(tempfile.mkdtemp(prefix="pastools-bench-pg-"))
    clusters.append(start_postgres(base))
    return clusters[-1].create_database("bench")


def run(rows: int, backends: list[str]) -> list[Row]:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        source = scratch / "people.csv"
        generate_csv(source, rows)
        temporal: TemporalServer = start_temporal(scratch / "temporal")
        clusters: list[PostgresCluster] = []
        stacks: list[Stack] = []
        results: list[Row] = []
        try:
            for name in backends:
                url = database_url(name, scratch, clusters)
                stack = start_stack(name, scratch / name, temporal, url)
                stacks.append(stack)
                with stack.client(timeout=60) as http:
                    results += measure_backend(JobsApi(http, stack), source, rows, scratch)
        finally:
            for stack in stacks:
                stack.stop()
            for cluster in clusters:
                cluster.stop()
                shutil.rmtree(cluster.data.parent, ignore_errors=True)
            temporal.stop()
        return results


def table(rows: int, results: list[Row]) -> str:
    lines = [
        f"{rows:,} rows of {len(COLUMNS)} columns (CSV); Python {platform.python_version()}",
        "",
        "| benchmark | backend | platform | baseline | ratio | worker peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|",
        *(row.markdown() for row in results),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], action="append")
    args = parser.parse_args()
    backends = args.backend or ["postgresql", "sqlite"]
    print(table(args.rows, run(args.rows, backends)))


if __name__ == "__main__":
    main()
