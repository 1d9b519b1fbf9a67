"""PostgreSQL stopped for ten seconds while jobs run.

Meanwhile the API answers 503 problem details (never a 500, never a hang), stays up
with its worker, and the workflows go on. Afterwards the table catches up with
Temporal: every job reaches the final status Temporal holds, none is failed because
the database was away, and the live feed reports it.
"""

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.tally import assert_nothing_lost, project_jobs, tally
from tests.integration.test_api_errors import assert_problem
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.services import (
    PostgresCluster,
    Stack,
    TemporalServer,
    start_postgres,
    start_stack,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 10.0
"""A request that takes longer during the outage is a hang, and fails the test."""

SHORT_JOB = {"items": 8, "item_ms": 500}
"""Finishes while the database is down: its own final write is lost, the mirror's is not."""
LONG_JOB = {"items": 40, "item_ms": 500}
"""Runs through the whole outage and finishes after it."""
JOBS_OF_EACH = 3

TEMPORAL_STATUS = {
    "WORKFLOW_EXECUTION_STATUS_RUNNING": "running",
    "WORKFLOW_EXECUTION_STATUS_COMPLETED": "completed",
    "WORKFLOW_EXECUTION_STATUS_FAILED": "failed",
    "WORKFLOW_EXECUTION_STATUS_CANCELED": "cancelled",
    "WORKFLOW_EXECUTION_STATUS_TERMINATED": "failed",
    "WORKFLOW_EXECUTION_STATUS_TIMED_OUT": "failed",
}


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """Not the session's cluster: this one gets stopped."""
    base = Path(tempfile.mkdtemp(prefix="pastools-pg-outage-"))
    cluster = start_postgres(base)
    yield cluster
    with contextlib.suppress(subprocess.CalledProcessError):
        cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def outage_stack(
    own_postgres: PostgresCluster, temporal: TemporalServer, tmp_path: Path
) -> Iterator[Stack]:
    url = own_postgres.create_database("jobs_outage")
    stack = start_stack(f"db-outage-{uuid.uuid4().hex[:6]}", tmp_path, temporal, url)
    yield stack
    stack.stop()


class FeedWatcher:
    """Follows the live feed in a thread: the last status it reported for each job."""

    def __init__(self, stack: Stack) -> None:
        self.statuses: dict[str, str] = {}
        self._client = httpx.Client(
            headers=stack.auth_headers, timeout=httpx.Timeout(10, read=None)
        )
        request = self._client.build_request("GET", f"{stack.url}/api/jobs/events")
        self._response = self._client.send(request, stream=True)
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        event = ""
        with contextlib.suppress(httpx.HTTPError):
            for line in self._response.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:") and event == "jobs":
                    for job in json.loads(line.removeprefix("data:"))["jobs"]:
                        self.statuses[job["id"]] = job["status"]

    def close(self) -> None:
        """Hang up now, or the API's graceful shutdown would wait for the stream."""
        stream = self._response.extensions["network_stream"]
        stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._response.close()
        self._client.close()


def temporal_status(temporal: TemporalServer, job_id: str) -> str:
    described = json.loads(temporal.cli("workflow", "describe", "-w", job_id, "-o", "json").stdout)
    return TEMPORAL_STATUS[described["workflowExecutionInfo"]["status"]]


def assert_unavailable(response: httpx.Response) -> None:
    body = assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "SELECT" not in response.text and "psycopg" not in response.text, body


def assert_alive(stack: Stack) -> None:
    assert stack.api is not None and stack.api.poll() is None, "the API exited"
    assert stack.worker is not None and stack.worker.poll() is None, "the worker exited"


def ride_out_outage(http: httpx.Client, stack: Stack, submission: dict[str, Any]) -> int:
    """Probe the API for the outage's length; returns how many rounds of probes ran."""
    rounds = 0
    ends = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < ends:
        assert_unavailable(http.get("/api/jobs", params={"project_id": submission["project_id"]}))
        assert_unavailable(
            http.post("/api/jobs", json=submission, headers={"Idempotency-Key": "in-outage"})
        )
        assert http.get("/healthz").status_code == 200
        assert "database" in assert_problem(http.get("/readyz"), 503)["detail"]
        assert_alive(stack)
        rounds += 1
        time.sleep(0.5)  # pacing the probes, not waiting for anything
    return rounds


def submit_when_back(http: httpx.Client, submission: dict[str, Any]) -> str:
    """The submission refused during the outage, retried with its key once the API is back."""

    def attempt() -> str | None:
        response = http.post("/api/jobs", json=submission, headers={"Idempotency-Key": "in-outage"})
        if response.status_code == 503:
            return None
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return wait_for(attempt, timeout=30, interval=0.5, what="the API to accept submissions again")


def test_database_outage_is_ridden_out(outage_stack: Stack, own_postgres: PostgresCluster) -> None:
    project = new_project()
    with (
        outage_stack.client(timeout=REQUEST_TIMEOUT_SECONDS) as http,
        contextlib.closing(FeedWatcher(outage_stack)) as feed,
    ):
        api = JobsApi(http, outage_stack)
        # The short ones last, so that they are sure to finish while the database is away.
        long = [api.submit("probe", project, **LONG_JOB)["id"] for _ in range(JOBS_OF_EACH)]
        short = [api.submit("probe", project, **SHORT_JOB)["id"] for _ in range(JOBS_OF_EACH)]
        for job_id in long + short:
            api.wait_running(job_id)

        own_postgres.stop()
        submission = {"type": "probe", "project_id": project, "params": SHORT_JOB}
        rounds = ride_out_outage(http, outage_stack, submission)
        own_postgres.start()
        print(f"the API answered {rounds} rounds of probes with 503 during the outage")

        late = submit_when_back(http, submission)
        acknowledged = [*long, *short, late]
        result = tally(api, project, submitted=len(acknowledged), acknowledged=acknowledged)
        assert_nothing_lost(result)
        jobs = project_jobs(api, project)
        unfinished = [
            (j["id"], j["status"], j["error"]) for j in jobs if j["status"] != "completed"
        ]
        assert result.completed == len(acknowledged), f"{result}: {unfinished}"
        for job in jobs:
            assert job["status"] == temporal_status(outage_stack.temporal, job["id"]), job
            assert job["progress"]["done"] == job["progress"]["total"], job
            assert job["result"] is not None, job
        wait_for(
            lambda: all(feed.statuses.get(job_id) == "completed" for job_id in acknowledged),
            timeout=30,
            what="the live feed to report every job completed",
        )
        assert_alive(outage_stack)
    assert_consistent(outage_stack)
