"""Benchmark of big jobs across workers (issue 15, item 2): the same validation (or test
run, `--job test_run`) of N records with one worker process, then with two, on one stack;
the records split into partitions of `--partition-rows` (PASTOOLS_PARTITION_ROWS).

    .venv/bin/python -m bench.partitions [--rows N] [--backend sqlite|postgresql]
        [--job validation|test_run]

Prints a Markdown table: records/s with one and with two workers, the speed-up, each
worker's CPU seconds (how evenly the partitions were shared) and peak RSS, and the
machine's load average (two shared cores give two workers less than two cores). Both
runs must give the same result.
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.datasets import SCHEMA, baseline_import, database_url, generate_csv, run_job, timed
from bench.memory import peak_mb, reset_peak
from pastools_jobs.partitions import partition_task_queue
from tests.support.jobs import JobsApi
from tests.support.services import PostgresCluster, Stack, start_stack, start_temporal
from tests.support.waiting import wait_for


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


TESTS = [
    {"kind": "not_null", "name": "email present", "field": "email"},
    {"kind": "regex", "name": "email shape", "field": "email", "pattern": "^[^@]+@[^@]+$"},
    {"kind": "range", "name": "score", "field": "score", "min": 0, "max": 999},
    {"kind": "accepted_values", "name": "city", "field": "city", "values": ["city 1"],
     "severity": "warn"},
    {"kind": "unique", "name": "email unique", "field": "email"},
    {"kind": "row_count", "name": "size", "min": 1},
]  # fmt: skip
"""A test run's suite over the generated records: every kind but `relationship`."""


def judge(
    api: JobsApi, job: str, project: str, rows: int, workers: list[int]
) -> tuple[float, Any, str]:
    """Records per second, the result, and each worker's CPU seconds and peak RSS."""
    reset_peak(*workers)
    before = [cpu_seconds(pid) for pid in workers]
    done: dict[str, Any] = {}
    seconds = timed(lambda: done.update(run_job(api, job, project)))
    cpu = [cpu_seconds(pid) - start for pid, start in zip(workers, before, strict=True)]
    peaks = [peak_mb(pid) for pid in workers]
    cells = " / ".join(f"{c:.1f}" for c in cpu) + " | " + " / ".join(f"{p:.0f}" for p in peaks)
    return rows / seconds, done["result"], cells


def run(rows: int, backend: str, partition_rows: int, job: str) -> str:
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        source = scratch / "people.csv"
        generate_csv(source, rows)
        temporal = start_temporal(scratch / "temporal")
        clusters: list[PostgresCluster] = []
        stack: Stack | None = None
        try:
            url = database_url(backend, scratch, clusters)
            env = {"PASTOOLS_PARTITION_ROWS": str(partition_rows)}
            stack = start_stack(backend, scratch / backend, temporal, url, extra_env=env)
            project = "partitions"
            baseline_import(url, source, project, rows)
            with stack.client(timeout=60) as http:
                api = JobsApi(http, stack)
                assert api.http.put(f"/api/projects/{project}/schema", json=SCHEMA).is_success
                suite = {"tests": TESTS}
                assert api.http.put(f"/api/projects/{project}/tests", json=suite).is_success
                assert stack.worker is not None
                wait_for(lambda: partition_pollers(stack) == 1, timeout=60, what="one worker")
                one, first, one_cells = judge(api, job, project, rows, [stack.worker.pid])
                second = stack.start_worker_replica()
                wait_for(lambda: partition_pollers(stack) == 2, timeout=60, what="two workers")
                pids = [stack.worker.pid, second.pid]
                two, again, two_cells = judge(api, job, project, rows, pids)
            assert again == first, "two workers found otherwise than one"
        finally:
            if stack is not None:
                stack.stop()
            for cluster in clusters:
                cluster.stop()
                shutil.rmtree(cluster.data.parent, ignore_errors=True)
            temporal.stop()
    parts = -(-rows // partition_rows) if rows > partition_rows else 1
    return "\n".join(
        [
            f"{job}: {rows:,} records, {parts} partitions, {backend}; "
            f"Python {platform.python_version()}",
            "",
            f"load average (1 min) {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores",
            "",
            "| workers | records/s | speed-up | worker CPU (s) | worker peak RSS (MB) |",
            "|---:|---:|---:|---|---|",
            f"| 1 | {one:,.0f} | 1.00 | {one_cells} |",
            f"| 2 | {two:,.0f} | {two / one:.2f} | {two_cells} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="sqlite")
    parser.add_argument("--partition-rows", type=int, default=500_000)
    parser.add_argument("--job", choices=["validation", "test_run"], default="validation")
    args = parser.parse_args()
    print(run(args.rows, args.backend, args.partition_rows, args.job))


if __name__ == "__main__":
    main()
