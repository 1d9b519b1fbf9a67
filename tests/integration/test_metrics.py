"""What Prometheus scrapes counts what happened: the API's `/metrics` (admin token) and
the worker's two ports, its own metrics and the Temporal SDK's; with metrics off, none of
them is served and nothing is recorded."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import ActivityEnvironment

from activities.context import ActivityContext
from activities.mirror import MirrorActivities
from pastools_jobs.api.app import create_app
from pastools_jobs.clock import utcnow
from pastools_jobs.config import Settings
from pastools_jobs.contracts import JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.leadership import mirror_lease
from pastools_jobs.storage import open_storage
from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, free_port, port_open, start_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def stack_with_worker_ports(
    name: str, temporal: TemporalServer, base: Path, **env: str
) -> Iterator[JobsApi]:
    """A SQLite stack whose worker is given both its metrics ports."""
    ports = {
        "PASTOOLS_WORKER_METRICS_PORT": str(free_port()),
        "PASTOOLS_WORKER_SDK_METRICS_PORT": str(free_port()),
    }
    url = f"sqlite:///{base / 'jobs.sqlite3'}"
    stack = start_stack(name, base, temporal, url, extra_env=ports | env)
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


@pytest.fixture(scope="module")
def metered_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobsApi]:
    yield from stack_with_worker_ports("metrics", temporal, tmp_path_factory.mktemp("metrics"))


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def worker_port(api: JobsApi, name: str) -> str:
    return f"http://127.0.0.1:{api.stack.env[name]}/metrics"


def test_the_scraped_metrics_count_the_jobs_that_ran(metered_api: JobsApi) -> None:
    project = metered_api.create_project(new_project())
    done = metered_api.submit("probe", project, items=3)
    failed = metered_api.submit_failing_import(project)
    metered_api.wait_for_status(done["id"], "completed")
    metered_api.wait_for_status(failed["id"], "failed")

    api = samples(metered_api.http.get("/metrics").text)
    assert value(api, "pastools_jobs_submitted_total", type="probe") >= 1
    assert value(api, "pastools_jobs_submitted_total", type="import") >= 1
    assert value(api, "pastools_jobs", status="completed", type="probe") >= 1
    assert (
        value(api, "pastools_http_requests_total", route="/api/jobs", method="POST", status="201")
        >= 2
    )
    assert value(api, "pastools_mirror_leader") == 1
    assert ("pastools_db_connections", frozenset({("engine", "api"), ("state", "idle")})) in api

    def worker() -> Samples | None:
        scraped = samples(httpx.get(worker_port(metered_api, "PASTOOLS_WORKER_METRICS_PORT")).text)
        finished = value(scraped, "pastools_jobs_finished_total", type="import", status="failed")
        return scraped if finished >= 1 else None

    scraped = wait_for(worker, what="the worker's metrics counting the failed import")
    assert value(scraped, "pastools_jobs_finished_total", type="probe", status="completed") >= 1
    assert value(scraped, "pastools_rows_processed_total", type="probe") >= 3
    assert value(scraped, "pastools_job_duration_seconds_count", type="probe") >= 1
    sdk = httpx.get(worker_port(metered_api, "PASTOOLS_WORKER_SDK_METRICS_PORT")).text
    assert "temporal_workflow_completed" in sdk or "temporal_activity_execution" in sdk


def test_metrics_need_an_admin_token(metered_api: JobsApi) -> None:
    viewer = metered_api.stack.create_token("viewer", new_project())
    url = f"{metered_api.stack.url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {viewer}"}).status_code == 403


@pytest.fixture(scope="module")
def unmetered_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobsApi]:
    """Metrics off, with the worker's ports set: the switch wins over them."""
    base = tmp_path_factory.mktemp("no-metrics")
    yield from stack_with_worker_ports(
        "no-metrics", temporal, base, PASTOOLS_METRICS_ENABLED="false"
    )


def test_metrics_off_serves_none(unmetered_api: JobsApi) -> None:
    job = unmetered_api.submit("probe", new_project(), items=2)
    unmetered_api.wait_for_status(job["id"], "completed")
    assert unmetered_api.http.get("/metrics").status_code == 404
    for name in ("PASTOOLS_WORKER_METRICS_PORT", "PASTOOLS_WORKER_SDK_METRICS_PORT"):
        assert not port_open(int(unmetered_api.stack.env[name])), name


def recorded() -> Samples:
    """The platform's own samples in this process's registry."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith("pastools_")
        for sample in family.samples
    }


def test_metrics_off_records_nothing(temporal: TemporalServer, tmp_path: Path) -> None:
    """The real API app in process (requests, a submission, the mirror leading and
    sweeping) and the worker's record of a job's end, all with metrics off."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        temporal_address=temporal.address,
        task_queue=f"no-metrics-{uuid.uuid4().hex[:8]}",  # no worker: the job stays queued
        mirror_interval_seconds=0.1,
        auth_enabled=False,  # what is recorded, not access, is under test here
        metrics_enabled=False,
    )
    before = recorded()
    with TestClient(create_app(settings)) as api:
        submitted = api.post("/api/jobs", json={"type": "probe", "project_id": "p"})
        assert submitted.status_code == 201, submitted.text
        assert api.get("/metrics").status_code == 404
        db = Database(settings.resolved_database_url, application_name="tests")
        try:
            wait_for(mirror_lease(db, settings).leader, what="the mirror leading")
            # Terminated from the CLI: only a sweep of the mirror can see it, and count it.
            terminated = api.post("/api/jobs", json={"type": "probe", "project_id": "p"})
            terminated_id = terminated.json()["id"]
            temporal.cli("workflow", "terminate", "-w", terminated_id, "--reason", "swept")
            wait_for(
                lambda: api.get(f"/api/jobs/{terminated_id}").json()["status"] != "queued",
                what="the mirror recording the terminate",
            )
            job_id = submitted.json()["id"]
            now = utcnow()
            ended = JobEvent(
                job_id=job_id,
                run_id=f"run-{uuid.uuid4().hex}",
                job_type="probe",
                project_id="p",
                status=JobStatus.COMPLETED,
                at=now,
                created_at=now,
                started_at=now,
                result={"items": 1},
            )
            worker = MirrorActivities(ActivityContext(settings, db, open_storage(settings)))
            asyncio.run(ActivityEnvironment().run(worker.record_job_event, ended))
        finally:
            db.dispose()
        assert api.get(f"/api/jobs/{job_id}").json()["status"] == "completed"
    assert recorded() == before
