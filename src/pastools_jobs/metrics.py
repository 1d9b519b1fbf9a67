"""What operators scrape, in Prometheus's text format: `GET /metrics` on the API (an
admin token, as Prometheus's `authorization` sends it) and the worker's metrics port.

Labels stay bounded: job type, status, route template, difference; never a job id or a
project (a platform may hold thousands of projects). Counters count what happened in the
process that exports them; Prometheus sums the replicas. The jobs per status and type are
read from the `job_counts` table when scraped, so every replica reports the same truth.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from pastools_jobs.contracts import JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import JobCount
from pastools_jobs.domain import JobStatus

CONTENT_TYPE = CONTENT_TYPE_LATEST

JOBS_SUBMITTED = Counter(
    "pastools_jobs_submitted", "Jobs submitted through the API (replays not counted).", ["type"]
)
JOBS_FINISHED = Counter(
    "pastools_jobs_finished",
    "Jobs that reached a final status, recorded by the worker or repaired by the mirror.",
    ["type", "status"],
)
JOB_DURATION = Histogram(
    "pastools_job_duration_seconds",
    "From a job's start to its end.",
    ["type"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
JOB_QUEUE_WAIT = Histogram(
    "pastools_job_queue_wait_seconds",
    "From a run's start in Temporal (a submission, a retry) to its work's start.",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 3600),
)
ROWS_PROCESSED = Counter(
    "pastools_rows_processed", "Rows (records, items, tests) completed jobs went through.", ["type"]
)
MIRROR_LEADER = Gauge("pastools_mirror_leader", "1 while this replica's mirror holds the lease.")
MIRROR_LAST_SWEEP = Gauge(
    "pastools_mirror_last_sweep_timestamp_seconds",
    "When this replica's mirror last completed a sweep; its age is the mirror's lag.",
)
DISAGREEMENTS = Counter(
    "pastools_mirror_disagreements",
    "Rows found to disagree with Temporal, by difference and by whether the repair took.",
    ["difference", "outcome"],
)
HTTP_REQUESTS = Counter(
    "pastools_http_requests", "API requests answered.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "pastools_http_request_seconds", "Time to answer an API request.", ["route", "method"]
)


def observe_finished(event: JobEvent, started_at: datetime | None) -> None:
    """A run just reached its final status `event` (called once the write is committed);
    `started_at`: when its work started, as its row recorded it (None if it never did).

    A run waits from its own start in Temporal, not from the job's first submission: a
    retry a day later waited for a worker as long as its run was queued, not a day."""
    JOBS_FINISHED.labels(event.job_type, event.status).inc()
    if started_at is not None:
        JOB_QUEUE_WAIT.labels(event.job_type).observe(_seconds(event.created_at, started_at))
        JOB_DURATION.labels(event.job_type).observe(_seconds(started_at, event.at))
    if event.status is JobStatus.COMPLETED and event.result is not None:
        ROWS_PROCESSED.labels(event.job_type).inc(rows_of(event.result))


def rows_of(result: Mapping[str, Any]) -> int:
    """What a completed job went through, from its result, whatever its type names it."""
    counted = ("imported", "skipped", "rows", "valid", "invalid", "items", "tests")
    return sum(int(result[name]) for name in counted if isinstance(result.get(name), int))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


class TableCollector(Collector):
    """At each scrape: the jobs per status and type (`job_counts`), and the connections
    each of the process's databases has out of its pool. Nothing until `watch`."""

    def __init__(self) -> None:
        self._jobs_db: Database | None = None
        self._pools: Mapping[str, Database] = {}

    def watch(self, pools: Mapping[str, Database], jobs_db: Database | None = None) -> None:
        """`jobs_db`: the API's (one kind of process reports the table, so no sum counts
        it twice); `pools`: this process's databases, by engine."""
        self._jobs_db, self._pools = jobs_db, pools

    def forget(self) -> None:
        self._jobs_db, self._pools = None, {}

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self._jobs_db is not None:
            yield self._jobs(self._jobs_db)
        pool = GaugeMetricFamily(
            "pastools_db_connections",
            "Database connections, by engine.",
            labels=["engine", "state"],
        )
        for name, db in self._pools.items():
            queue: Any = db.engine.pool  # QueuePool (PostgreSQL) or SQLite's: both count
            pool.add_metric([name, "in_use"], float(queue.checkedout()))
            pool.add_metric([name, "idle"], float(queue.checkedin()))
        yield pool

    @staticmethod
    def _jobs(db: Database) -> GaugeMetricFamily:
        jobs = GaugeMetricFamily("pastools_jobs", "Jobs in the table.", labels=["status", "type"])
        with db.reading() as connection:
            rows = connection.execute(
                select(JobCount.status, JobCount.type, func.sum(JobCount.n)).group_by(
                    JobCount.status, JobCount.type
                )
            )
            for status, job_type, count in rows:
                jobs.add_metric([status, job_type], float(count or 0))
        return jobs


TABLES = TableCollector()
REGISTRY.register(TABLES)


def exposition() -> bytes:
    """The process's metrics as Prometheus reads them; reads the database: off the loop."""
    return generate_latest(REGISTRY)
