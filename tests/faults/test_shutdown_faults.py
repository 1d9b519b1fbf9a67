"""SIGTERM to the worker and to the API: each stops gracefully and nothing is lost.

The worker stops polling and its running activities stop at the checkpoint they just
heartbeated; after a restart they resume from there. The API finishes the requests
in flight; every submission it acknowledged runs to completion.
"""

import json
import threading

import httpx
import pytest

from pastools_jobs.worker import GRACEFUL_SHUTDOWN
from tests.faults.tally import assert_nothing_lost, tally
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ITEMS = 120
STOP_DEADLINE = GRACEFUL_SHUTDOWN.total_seconds() + 10


def previous_failure(api: JobsApi, job_id: str) -> str:
    """Why the work's last attempt before the one that completed ended (Temporal history)."""
    history = json.loads(
        api.stack.temporal.cli("workflow", "show", "-w", job_id, "-o", "json").stdout
    )
    [started] = [
        event["activityTaskStartedEventAttributes"]
        for event in history["events"]
        if "activityTaskStartedEventAttributes" in event
    ]
    return str(started["lastFailure"]["applicationFailureInfo"]["type"])


def test_worker_sigterm_stops_at_a_checkpoint_and_resumes_from_it(fault_api: JobsApi) -> None:
    api = fault_api
    project = new_project()
    ids = [api.submit("probe", project, items=ITEMS, item_ms=50)["id"] for _ in range(3)]
    for job_id in ids:
        api.wait_running(job_id, min_done=5)

    assert api.stack.terminate_worker(STOP_DEADLINE) == 0
    stopped = {job_id: api.get(job_id)["progress"]["done"] for job_id in ids}
    api.stack.start_worker()

    assert_nothing_lost(tally(api, project, submitted=len(ids), acknowledged=ids))
    for job_id in ids:
        done = api.get(job_id)
        assert done["status"] == "completed", done["error"]
        assert 0 < stopped[job_id] < ITEMS
        # The row written at the stop holds the checkpoint the retry resumed from.
        assert done["result"] == {"items": ITEMS, "resumed_from": stopped[job_id]}
        # Stopped by the shutdown, not noticed later through a heartbeat timeout.
        assert previous_failure(api, job_id) == "WorkerShutdown"
    assert_consistent(api.stack)


class Submitter(threading.Thread):
    """A client submitting jobs one after another until the API stops answering."""

    def __init__(self, stack: Stack, project: str) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.project = project
        self.submitted = 0
        self.acknowledged: list[str] = []

    def run(self) -> None:
        body = {"type": "probe", "project_id": self.project, "params": {"items": 3}}
        with self.stack.client() as http:
            while True:
                self.submitted += 1
                try:
                    response = http.post("/api/jobs", json=body)
                except httpx.TransportError:
                    return
                if response.status_code != 201:
                    return
                self.acknowledged.append(response.json()["id"])


def test_api_sigterm_finishes_in_flight_submissions_and_loses_none(fault_api: JobsApi) -> None:
    api = fault_api
    project = new_project()
    clients = [Submitter(api.stack, project) for _ in range(4)]
    for client in clients:
        client.start()
    wait_for(
        lambda: sum(len(c.acknowledged) for c in clients) >= 20,
        timeout=30,
        what="submissions under way",
    )

    assert api.stack.terminate_api(STOP_DEADLINE) == 0
    for client in clients:
        client.join(timeout=30)
        assert not client.is_alive()
    api.stack.start_api()

    acknowledged = [job_id for client in clients for job_id in client.acknowledged]
    submitted = sum(client.submitted for client in clients)
    assert_nothing_lost(tally(api, project, submitted=submitted, acknowledged=acknowledged))
    assert_consistent(api.stack)
