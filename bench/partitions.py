"""Benchmark of big jobs across workers (issue 15, item 2): the same split jobs over N
records with one worker process, then with two, on one stack — a validation, a test run
and a CSV export of records split into partitions of `--partition-rows` (PASTOOLS_PARTITION_ROWS),
and an import of a keyed CSV split into byte ranges of `--partition-bytes`
(PASTOOLS_PARTITION_BYTES; by default the file's size over as many partitions as the
records get).

    .venv/bin/python -m bench.partitions [--rows N] [--backend sqlite|postgresql]
                                         [--jobs validation,test_run,import,export]

Prints a Markdown table, one row per job: rows/s with one and with two workers, the
speed-up, the seconds spent in the partitions and in the activities before and after
them (the plan, the import's move, the export's merge: what two workers cannot share),
each worker's CPU seconds (how evenly the partitions were shared) and peak RSS, and the
machine's load average (two shared cores give two workers less than two cores). Both
runs of a job must give the same result: the validation's and the test run's result, the
import's record count, the export file's SHA-256.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.datasets import (
    SCHEMA,
    baseline_import,
    copy_source,
    database_url,
    generate_csv,
    run_job,
    timed,
)
from bench.memory import peak_mb, reset_peak
from pastools_jobs.partitions import partition_task_queue
from pastools_jobs.process import stop_process
from tests.support.jobs import JobsApi
from tests.support.services import PostgresCluster, Stack, start_stack, start_temporal
from tests.support.waiting import wait_for

JOBS = ("validation", "test_run", "import", "export")
RECORDS = "partitions"
"""The project the validation, the test run and the export read, its records written
straight in."""

TESTS = [
    {"kind": "not_null", "name": "email present", "field": "email"},
    {"kind": "regex", "name": "email shape", "field": "email", "pattern": "^[^@]+@[^@]+$"},
    {"kind": "range", "name": "score", "field": "score", "min": 0, "max": 999},
    {"kind": "accepted_values", "name": "city", "field": "city", "values": ["city 1"],
     "severity": "warn"},
    {"kind": "unique", "name": "email unique", "field": "email"},
    {"kind": "row_count", "name": "size", "min": 1},
]  # fmt: skip
"""The test run's suite over the generated records: every kind but `relationship`."""


@dataclass
class Timeline:
    """Where a job's time went, from its Temporal history (scheduled to closed)."""

    partitions: int = 0
    split_seconds: float = 0.0
    """From the first partition's scheduling to the last one's end."""
    serial: dict[str, float] = field(default_factory=dict)
    """Every other activity's seconds, by activity name: the plan, a move, a merge."""


@dataclass
class Run:
    """One job run by the workers of the moment, and what its workers spent on it."""

    rate: float
    timeline: Timeline
    cpu: list[float]
    peaks: list[float]
    load: float


@dataclass
class Measured:
    """One job's row of the table: its run with one worker and its run with two."""

    job: str
    one: Run
    two: Run

    def markdown(self) -> str:
        one, two = self.one, self.two

        def both(values: Callable[[Run], str]) -> str:
            return f"{values(one)} → {values(two)}"

        return " | ".join(
            [
                f"| {self.job}",
                f"{two.timeline.partitions}",
                f"{one.rate:,.0f}",
                f"{two.rate:,.0f}",
                f"**{two.rate / one.rate:.2f}**",
                both(lambda run: f"{run.timeline.split_seconds:.1f}"),
                both(lambda run: f"{sum(run.timeline.serial.values()):.1f}"),
                both(lambda run: " / ".join(f"{c:.1f}" for c in run.cpu)),
                both(lambda run: " / ".join(f"{p:.0f}" for p in run.peaks)),
                both(lambda run: f"{run.load:.1f}") + " |",
            ]
        )

    def serial_notes(self) -> str:
        """The activities outside the partitions, the slowest first."""

        def named(run: Run) -> str:
            slowest = sorted(run.timeline.serial.items(), key=lambda item: -item[1])[:3]
            return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest)

        return f"- {self.job}: 1 worker {named(self.one)}; 2 workers {named(self.two)}"


def partition_pollers(stack: Stack) -> int:
    """Worker processes polling the stack's partition queue, as Temporal sees them."""
    queue = partition_task_queue(stack.env["PASTOOLS_TASK_QUEUE"])
    described = stack.temporal.cli(
        "task-queue", "describe", "--task-queue", queue, "--task-queue-type", "activity",
        "-o", "json",
    )  # fmt: skip
    found = json.loads(described.stdout)
    pollers = found.get("pollers") or []
    if not pollers:  # the newer layout: pollers per version, per queue type
        for version in (found.get("versionsInfo") or {}).values():
            for info in (version.get("typesInfo") or {}).values():
                pollers += info.get("pollers") or []
    return len({poller.get("identity") for poller in pollers})


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timeline(stack: Stack, job_id: str) -> Timeline:
    """The job's activities from its history: the partitions (on their own task queue)
    as one span, every other activity by name."""
    shown = stack.temporal.cli("workflow", "show", "-w", job_id, "-o", "json").stdout
    queue = partition_task_queue(stack.task_queue)
    scheduled: dict[str, tuple[str, bool, datetime]] = {}
    spans: list[tuple[str, bool, datetime, datetime]] = []
    for event in json.loads(shown)["events"]:
        at = datetime.fromisoformat(event["eventTime"])
        if attributes := event.get("activityTaskScheduledEventAttributes"):
            name = attributes["activityType"]["name"]
            on_partitions = attributes["taskQueue"]["name"] == queue
            scheduled[str(event["eventId"])] = (name, on_partitions, at)
        for closed in ("Completed", "Failed", "TimedOut", "Canceled"):
            if attributes := event.get(f"activityTask{closed}EventAttributes"):
                name, on_partitions, since = scheduled[str(attributes["scheduledEventId"])]
                spans.append((name, on_partitions, since, at))
    found = Timeline()
    split = [(since, until) for _, on_partitions, since, until in spans if on_partitions]
    if split:
        found.partitions = len(split)
        first, last = min(since for since, _ in split), max(until for _, until in split)
        found.split_seconds = (last - first).total_seconds()
    for name, on_partitions, since, until in spans:
        if not on_partitions:
            found.serial[name] = found.serial.get(name, 0.0) + (until - since).total_seconds()
    return found


def measure(
    api: JobsApi, workers: list[int], rows: int, job_type: str, project: str, **params: Any
) -> tuple[Run, dict[str, Any]]:
    """One job, submitted and waited for, and what it cost the workers; its final state."""
    reset_peak(*workers)
    before = [cpu_seconds(pid) for pid in workers]
    done: dict[str, Any] = {}
    seconds = timed(lambda: done.update(run_job(api, job_type, project, **params)))
    cpu = [cpu_seconds(pid) - start for pid, start in zip(workers, before, strict=True)]
    peaks = [peak_mb(pid) for pid in workers]
    load = os.getloadavg()[0]
    return Run(rows / seconds, timeline(api.stack, done["id"]), cpu, peaks, load), done


def record_count(api: JobsApi, project: str) -> int:
    engine = create_engine(api.stack.database_url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM records WHERE project_id = :p")
            return int(connection.execute(query, {"p": project}).scalar_one())
    finally:
        engine.dispose()


def artifact_sha256(api: JobsApi, job: dict[str, Any]) -> str:
    """The export file's digest, downloaded as a user would."""
    digest = hashlib.sha256()
    path = f"/api/jobs/{job['id']}/artifacts/{job['result']['artifact']}"
    with api.http.stream("GET", path) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Bench:
    """The jobs of one run on one stack: each gives its measurement and what both runs
    must agree on."""

    api: JobsApi
    source: Path
    rows: int
    records: str = RECORDS
    """The project the validation, the test run and the export read."""

    def validation(self, workers: list[int]) -> tuple[Run, Any]:
        run, done = measure(self.api, workers, self.rows, "validation", self.records)
        return run, done["result"]

    def test_run(self, workers: list[int]) -> tuple[Run, Any]:
        run, done = measure(self.api, workers, self.rows, "test_run", self.records)
        return run, done["result"]

    def import_(self, workers: list[int]) -> tuple[Run, Any]:
        """Into a project of its own each time: both runs insert every row."""
        project = self.api.create_project(f"{self.records}-import-{len(workers)}-workers")
        copy_source(self.api, project, self.source)
        params = {"source": self.source.name, "key_column": "id"}
        run, done = measure(self.api, workers, self.rows, "import", project, **params)
        return run, (record_count(self.api, project), done["result"]["skipped"])

    def export(self, workers: list[int]) -> tuple[Run, Any]:
        run, done = measure(self.api, workers, self.rows, "export", self.records, format="csv")
        return run, artifact_sha256(self.api, done)

    def run(self, job: str, workers: list[int]) -> tuple[Run, Any]:
        jobs = {
            "validation": self.validation,
            "test_run": self.test_run,
            "import": self.import_,
            "export": self.export,
        }
        return jobs[job](workers)

    def prepare(self, jobs: list[str]) -> None:
        """The records the validation, the test run and the export read, written straight
        in, the schema the validation checks and the tests the test run runs."""
        if {"validation", "test_run", "export"} & set(jobs):
            baseline_import(self.api.stack.database_url, self.source, self.records, self.rows)
        if "validation" in jobs:
            schema = self.api.http.put(f"/api/projects/{self.records}/schema", json=SCHEMA)
            assert schema.is_success, schema.text
        if "test_run" in jobs:
            suite = {"tests": TESTS}
            tests = self.api.http.put(f"/api/projects/{self.records}/tests", json=suite)
            assert tests.is_success, tests.text


def measure_jobs(bench: Bench, jobs: list[str]) -> list[Measured]:
    """Every job with the stack's one worker, then every job again with a second one,
    stopped at the end: the stack is left as it was found."""
    stack = bench.api.stack
    assert stack.worker is not None
    bench.prepare(jobs)
    wait_for(lambda: partition_pollers(stack) == 1, timeout=60, what="one worker")
    alone = {job: bench.run(job, [stack.worker.pid]) for job in jobs}
    second = stack.start_worker_replica()
    try:
        wait_for(lambda: partition_pollers(stack) == 2, timeout=60, what="two workers")
        paired = {job: bench.run(job, [stack.worker.pid, second.pid]) for job in jobs}
    finally:
        stop_process(second)
        stack.worker_replicas.remove(second)
    for job in jobs:
        assert paired[job][1] == alone[job][1], f"{job}: two workers gave otherwise than one"
    return [Measured(job, alone[job][0], paired[job][0]) for job in jobs]


def table(measured: list[Measured]) -> list[str]:
    return [
        "| job | partitions | 1 worker rows/s | 2 workers rows/s | speed-up "
        "| in partitions (s), 1 → 2 workers | other activities (s) | worker CPU (s) "
        "| worker peak RSS (MB) | load average (1 min) |",
        "|---|---:|---:|---:|---:|---|---|---|---|---|",
        *(row.markdown() for row in measured),
        "",
        "Other activities, the slowest first:",
        "",
        *(row.serial_notes() for row in measured),
    ]


def run(
    rows: int, backend: str, jobs: list[str], partition_rows: int, partition_bytes: int | None
) -> str:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        source = scratch / "people.csv"
        generate_csv(source, rows)
        size = source.stat().st_size
        partition_bytes = partition_bytes or -(-size // -(-rows // partition_rows))
        temporal = start_temporal(scratch / "temporal")
        clusters: list[PostgresCluster] = []
        stack: Stack | None = None
        try:
            url = database_url(backend, scratch, clusters)
            env = {
                "PASTOOLS_PARTITION_ROWS": str(partition_rows),
                "PASTOOLS_PARTITION_BYTES": str(partition_bytes),
            }
            stack = start_stack(backend, scratch / backend, temporal, url, extra_env=env)
            with stack.client(timeout=60) as http:
                measured = measure_jobs(Bench(JobsApi(http, stack), source, rows), jobs)
        finally:
            if stack is not None:
                stack.stop()
            for cluster in clusters:
                cluster.stop()
                shutil.rmtree(cluster.data.parent, ignore_errors=True)
            temporal.stop()
    return "\n".join(
        [
            f"{rows:,} records, {backend}; partitions of {partition_rows:,} records and of "
            f"{partition_bytes:,} bytes of the {size:,}-byte CSV; "
            f"Python {platform.python_version()}, {os.cpu_count()} cores",
            "",
            *table(measured),
        ]
    )


def job_list(text: str) -> list[str]:
    """`validation,test_run,import,export`, or a part of it, in the order given."""
    jobs = [job.strip() for job in text.split(",") if job.strip()]
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown or not jobs or len(set(jobs)) < len(jobs):
        raise argparse.ArgumentTypeError(f"one or more of {', '.join(JOBS)}, each once")
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="sqlite")
    parser.add_argument("--jobs", type=job_list, default=list(JOBS), help="comma-separated")
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument(
        "--partition-bytes", type=int, help="default: the CSV's size over its partitions' count"
    )
    args = parser.parse_args()
    print(run(args.rows, args.backend, args.jobs, args.partition_rows, args.partition_bytes))


if __name__ == "__main__":
    main()
