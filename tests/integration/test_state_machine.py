"""Property: any sequence of submit / cancel / retry / completion / failure leaves every
job in a legal state, answers each request as the state machine says, and ends with the
table equal to Temporal's view of each job (the original module's tasks 19.2 and 19.4),
and job_counts equal to a GROUP BY of the table."""

import functools
import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.support.jobs import JobsApi, new_project

pytestmark = pytest.mark.integration

TEMPORAL_STATUS = {
    "WORKFLOW_EXECUTION_STATUS_RUNNING": {"queued", "running"},
    "WORKFLOW_EXECUTION_STATUS_COMPLETED": {"completed"},
    "WORKFLOW_EXECUTION_STATUS_FAILED": {"failed"},
    "WORKFLOW_EXECUTION_STATUS_CANCELED": {"cancelled"},
    "WORKFLOW_EXECUTION_STATUS_TERMINATED": {"failed"},
    "WORKFLOW_EXECUTION_STATUS_TIMED_OUT": {"failed"},
}
LEGAL = {"queued", "running", "completed", "failed", "cancelled"}


class JobLifecycle(RuleBasedStateMachine):
    """The model: what each job must be once it settles, and how many attempts it had."""

    jobs = Bundle("jobs")

    def __init__(self, api: JobsApi) -> None:
        super().__init__()
        self.api = api
        self.project = new_project()
        self.expected: dict[str, str] = {}
        self.attempts: dict[str, int] = {}

    def settle(self, job_id: str) -> dict:
        """Wait until the job is where the model says it goes next."""
        expected = self.expected[job_id]
        if expected == "running":
            return self.api.wait_running(job_id)
        return self.api.wait_for_status(job_id, expected)

    @rule(target=jobs)
    def submit_one_that_completes(self) -> str:
        job = self.api.submit("probe", self.project, items=2)
        return self.track(job["id"], "completed")

    @rule(target=jobs)
    def submit_one_that_fails(self) -> str:
        job = self.api.submit_failing_import(self.project)
        return self.track(job["id"], "failed")

    @rule(target=jobs)
    def submit_one_that_keeps_running(self) -> str:
        job = self.api.submit("probe", self.project, items=10_000, item_ms=50)
        return self.track(job["id"], "running")

    def track(self, job_id: str, expected: str) -> str:
        self.expected[job_id] = expected
        self.attempts[job_id] = 1
        self.settle(job_id)
        return job_id

    @rule(job_id=jobs)
    def cancel(self, job_id: str) -> None:
        response = self.api.http.post(f"/api/jobs/{job_id}/cancel")
        if self.expected[job_id] == "running":
            assert response.status_code == 202, response.text
            self.expected[job_id] = "cancelled"
        else:
            assert response.status_code == 409, response.text
        self.settle(job_id)

    @rule(job_id=jobs)
    def retry(self, job_id: str) -> None:
        before = self.expected[job_id]
        response = self.api.http.post(f"/api/jobs/{job_id}/retry")
        if before in ("failed", "cancelled"):
            assert response.status_code == 200, response.text
            self.attempts[job_id] += 1
            # A failed import fails again; a cancelled long job runs again.
            self.expected[job_id] = "failed" if before == "failed" else "running"
        else:
            assert response.status_code == 409, response.text
        self.settle(job_id)

    @invariant()
    def table_equals_temporal(self) -> None:
        for job_id, expected in self.expected.items():
            job = self.api.get(job_id)
            assert job["status"] in LEGAL
            assert job["status"] == expected
            assert job["attempt"] == self.attempts[job_id] == len(job["attempts"])
            described = self.api.stack.temporal.cli(
                "workflow", "describe", "-w", job_id, "-o", "json"
            )
            status = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
            assert job["status"] in TEMPORAL_STATUS[status], (job_id, job["status"], status)

    @invariant()
    def counts_equal_jobs(self) -> None:
        assert self.api.count_drift() == []

    def teardown(self) -> None:
        for job_id, expected in self.expected.items():
            if expected == "running":
                self.api.http.post(f"/api/jobs/{job_id}/cancel")
                self.api.wait_for_status(job_id, "cancelled")


def test_any_sequence_of_actions_keeps_table_and_temporal_equal(api: JobsApi) -> None:
    factory: Any = functools.partial(JobLifecycle, api)  # hypothesis types this as a class
    run_state_machine_as_test(
        factory,
        settings=settings(max_examples=5, stateful_step_count=8, deadline=None),
    )
