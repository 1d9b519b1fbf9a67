"""Every error is RFC 9457 problem details with the right status; nothing half-done remains."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pastools_jobs.api.app import create_app
from pastools_jobs.config import Settings
from pastools_jobs.db.migrate import upgrade_database
from tests.support.jobs import JobsApi, new_project
from tests.support.services import free_port

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_unknown_job_is_404(api: JobsApi) -> None:
    for request in (
        api.http.get("/api/jobs/no-such-job"),
        api.http.post("/api/jobs/no-such-job/cancel"),
        api.http.post("/api/jobs/no-such-job/retry"),
    ):
        body = assert_problem(request, 404)
        assert "no-such-job" in body["detail"]


@pytest.mark.parametrize(
    ("submission", "field"),
    [
        ({"type": "nonsense", "project_id": "p"}, "body"),
        ({"type": "probe", "project_id": "p", "params": {"items": 0}}, "items"),
        ({"type": "probe", "project_id": "p", "params": {"colour": "red"}}, "colour"),
        ({"type": "probe", "project_id": "p", "status": "completed"}, "status"),
        ({"type": "probe", "project_id": ""}, "project_id"),
        ({"type": "import", "project_id": "p", "params": {"source": "../etc/passwd"}}, "source"),
        ({"type": "import", "project_id": "p", "params": {"source": "/etc/passwd"}}, "source"),
        ({"type": "probe", "project_id": "p", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_invalid_submission_is_422_naming_the_field(
    api: JobsApi, submission: dict, field: str
) -> None:
    before = api.http.get("/api/jobs/stats").json()["total"]
    body = assert_problem(api.http.post("/api/jobs", json=submission), 422)
    assert any(field in error["field"] for error in body["errors"]), body
    assert api.http.get("/api/jobs/stats").json()["total"] == before, "a job was created"


def test_malformed_json_is_422(api: JobsApi) -> None:
    response = api.http.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


def test_completed_job_cannot_be_cancelled_or_retried(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1)
    api.wait_for_status(job["id"], "completed")

    body = assert_problem(api.http.post(f"/api/jobs/{job['id']}/cancel"), 409)
    assert "completed" in body["detail"]
    assert_problem(api.http.post(f"/api/jobs/{job['id']}/retry"), 409)
    assert api.get(job["id"])["status"] == "completed"


def test_running_job_cannot_be_retried(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(job["id"])
    assert_problem(api.http.post(f"/api/jobs/{job['id']}/retry"), 409)
    api.http.post(f"/api/jobs/{job['id']}/cancel")
    api.wait_for_status(job["id"], "cancelled")


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"limit": 100000},
        {"status": "sleeping"},
        {"type": "nonsense"},
        {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"},
        {"created_from": "yesterday"},
    ],
)
def test_bad_list_query_is_422(api: JobsApi, query: dict) -> None:
    assert_problem(api.http.get("/api/jobs", params=query), 422)


@pytest.fixture
def app_without_temporal(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(url)
    settings = Settings(
        database_url=url,
        temporal_address=f"127.0.0.1:{free_port()}",
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,  # availability, not access, is under test here
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_submission_while_temporal_is_down_is_503_and_leaves_no_job(
    app_without_temporal: TestClient,
) -> None:
    response = app_without_temporal.post("/api/jobs", json={"type": "probe", "project_id": "p"})
    assert_problem(response, 503)
    assert app_without_temporal.get("/api/jobs").json()["items"] == []
    ready = assert_problem(app_without_temporal.get("/readyz"), 503)
    assert "temporal" in ready["detail"]
    assert app_without_temporal.get("/healthz").status_code == 200


def test_refused_submission_frees_its_idempotency_key(app_without_temporal: TestClient) -> None:
    for items in (1, 2):
        response = app_without_temporal.post(
            "/api/jobs",
            json={"type": "probe", "project_id": "p", "params": {"items": items}},
            headers={"Idempotency-Key": "retry-me"},
        )
        # 503 both times: the second, different body does not find the key taken (422).
        assert_problem(response, 503)
        assert response.headers["Retry-After"]
    assert app_without_temporal.get("/api/jobs").json()["items"] == []


def test_requests_while_the_database_is_down_are_503(temporal) -> None:
    settings = Settings(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/jobs",
        temporal_address=temporal.address,
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,  # availability, not access, is under test here
    )
    with TestClient(create_app(settings)) as client:
        assert_problem(client.get("/api/jobs"), 503)
        assert_problem(client.get("/api/jobs/stats"), 503)
        assert_problem(client.post("/api/jobs", json={"type": "probe", "project_id": "p"}), 503)
        ready = assert_problem(client.get("/readyz"), 503)
        assert "database" in ready["detail"]
