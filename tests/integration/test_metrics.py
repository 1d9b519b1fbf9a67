"""What Prometheus scrapes counts what happened: the API's `/metrics` (admin token) and
the worker's two ports, its own metrics and the Temporal SDK's."""

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, free_port, start_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metered_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobsApi]:
    base = tmp_path_factory.mktemp("metrics")
    ports = {
        "PASTOOLS_WORKER_METRICS_PORT": str(free_port()),
        "PASTOOLS_WORKER_SDK_METRICS_PORT": str(free_port()),
    }
    stack = start_stack(
        "metrics", base, temporal, f"sqlite:///{base / 'jobs.sqlite3'}", extra_env=ports
    )
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


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
