"""The REST API as a test (or a user) drives it."""

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pastools_jobs.counts import CountDrift, count_drift
from tests.support.services import Stack
from tests.support.waiting import wait_for


def new_project() -> str:
    """A project per test, so that tests sharing a stack never count each other's jobs."""
    return f"p-{uuid.uuid4().hex[:10]}"


@dataclass
class JobsApi:
    http: httpx.Client
    stack: Stack

    def submit(self, job_type: str, project_id: str, **params: Any) -> dict[str, Any]:
        response = self.http.post(
            "/api/jobs", json={"type": job_type, "project_id": project_id, "params": params}
        )
        assert response.status_code == 201, response.text
        return response.json()

    def submit_failing_import(self, project_id: str, name: str = "empty.csv") -> dict[str, Any]:
        """An import that is accepted (its file exists) and fails when it runs: the file is
        empty, an input error, so it fails at once without retries."""
        source = self.write_import(project_id, f"{uuid.uuid4().hex[:10]}-{name}", b"")
        return self.submit("import", project_id, source=source)

    def create_project(self, project_id: str | None = None) -> str:
        project_id = project_id or new_project()
        response = self.http.post("/api/projects", json={"id": project_id})
        assert response.status_code == 201, response.text
        return project_id

    def write_import(self, project_id: str, name: str, content: str | bytes) -> str:
        """One of the project's import sources, written through the stack's storage (its
        import directory, or its bucket); returns its name as a source."""
        self.stack.put_source(project_id, name, content)
        return name

    def get(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_job(
        self, job_id: str, condition: Any, *, timeout: float = 30.0, what: str = "job state"
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            job = self.get(job_id)
            return job if condition(job) else None

        return wait_for(probe, timeout=timeout, what=f"{what} of job {job_id}")

    def wait_for_status(self, job_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for_job(
            job_id,
            lambda job: job["status"] in statuses,
            timeout=timeout,
            what=f"status in {statuses}",
        )

    def wait_running(self, job_id: str, min_done: int = 1) -> dict[str, Any]:
        return self.wait_for_job(
            job_id,
            lambda job: job["status"] == "running" and job["progress"]["done"] >= min_done,
            what=f"running with {min_done} items done",
        )

    def temporal_status(self, job_id: str) -> str | None:
        """What `temporal workflow describe` says of the job's latest run (`COMPLETED`,
        `CANCELED`, …), None if Temporal has no workflow of that id."""
        described = self.stack.temporal.cli(
            "workflow", "describe", "-w", job_id, "-o", "json", check=False
        )
        if described.returncode != 0:
            return None
        status: str = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
        return status.removeprefix("WORKFLOW_EXECUTION_STATUS_")

    def wait_checkpointed(self, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Until Temporal holds a heartbeat of the job's work past its start: the checkpoint a
        retry resumes from. The row shows progress at once; the heartbeat that carries it
        reaches Temporal up to one throttle interval later, so a kill in between would
        leave the retry nothing to resume from."""

        def checkpoint() -> dict[str, Any] | None:
            described = self.stack.temporal.cli("workflow", "describe", "-w", job_id, "-o", "json")
            for pending in json.loads(described.stdout).get("pendingActivities", []):
                # The CLI prints JSON payloads decoded: the details are the heartbeat's values.
                for progress in pending.get("heartbeatDetails") or []:
                    if progress.get("done", 0) > 0:
                        return progress
            return None

        return wait_for(checkpoint, timeout=timeout, what=f"a checkpoint of job {job_id}")

    def activity_attempts(self, job_id: str) -> list[int]:
        """The attempt number of each activity start in the job's Temporal history: `[1]`
        for work that ran once and was never retried."""
        history = self.stack.temporal.cli("workflow", "show", "-w", job_id, "-o", "json").stdout
        return [
            event["activityTaskStartedEventAttributes"].get("attempt", 1)
            for event in json.loads(history)["events"]
            if "activityTaskStartedEventAttributes" in event
        ]

    def count_drift(self) -> list[CountDrift]:
        """job_counts against a GROUP BY of jobs in the stack's database; empty when equal."""
        engine = create_engine(self.stack.database_url)
        try:
            with Session(engine) as session:
                return count_drift(session)
        finally:
            engine.dispose()
