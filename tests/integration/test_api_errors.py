"""Every error is RFC 9457 problem details with the right status; nothing half-done remains."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pastools_jobs.api.app import create_app
from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import PROJECT_ID_PATTERN
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
        ({"type": "import", "project_id": "p", "params": {"source": "a.csv", "x": 1}}, "x"),
        ({"type": "probe", "project_id": "p", "timeout_seconds": 0}, "timeout_seconds"),
        ({"type": "export", "project_id": "p", "params": {"key_prefix": "a\x00"}}, "key_prefix"),
        (
            {
                "type": "import",
                "project_id": "p",
                "params": {"source": "a.csv", "null_values": ["\x00"]},
            },
            "null_values",
        ),
        (
            {
                "type": "import",
                "project_id": "p",
                "params": {"source": "a.csv", "column_types": {"a\x00": "integer"}},
            },
            "column_types",
        ),
    ],
)
def test_invalid_submission_is_422_naming_the_field(
    api: JobsApi, submission: dict, field: str
) -> None:
    before = api.http.get("/api/jobs/stats").json()["total"]
    body = assert_problem(api.http.post("/api/jobs", json=submission), 422)
    assert any(field in error["field"] for error in body["errors"]), body
    assert api.http.get("/api/jobs/stats").json()["total"] == before, "a job was created"


def test_a_column_name_with_nul_is_refused_and_changes_nothing(api: JobsApi) -> None:
    """PostgreSQL refuses NUL in text: refused on both databases, before anything is kept."""
    project = api.create_project()
    url = f"/api/projects/{project}/column-types"
    body = assert_problem(api.http.put(url, json={"column_types": {"a\x00": "integer"}}), 422)
    assert "column_types" in str(body["errors"])
    assert api.http.get(url).json() == {"column_types": {}}


@pytest.mark.parametrize("template", ["_{}", ".{}", "-{}", "a/{}", "{}" + "x" * 190])
def test_project_id_outside_the_rule_is_refused_at_creation(api: JobsApi, template: str) -> None:
    project = template.format(uuid.uuid4().hex)
    body = assert_problem(api.http.post("/api/projects", json={"id": project}), 422)
    assert PROJECT_ID_PATTERN in str(body["errors"]), "the answer does not say what is allowed"
    assert project not in [p["id"] for p in api.http.get("/api/projects").json()]


def test_malformed_json_is_422(api: JobsApi) -> None:
    response = api.http.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


def import_of(api: JobsApi, source: str, project_id: str | None = None) -> httpx.Response:
    project_id = project_id or new_project()
    submission = {"type": "import", "project_id": project_id, "params": {"source": source}}
    return api.http.post("/api/jobs", json=submission)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("../etc/passwd", "'..'"),
        ("a/../../jobs.sqlite3", "'..'"),
        ("/etc/passwd", "outside the import directory"),
        ("no-such-file.csv", "does not exist"),
        ("uploads", "does not exist"),
    ],
)
def test_import_source_outside_the_import_directory_or_missing_is_400(
    api: JobsApi, source: str, words: str
) -> None:
    before = api.http.get("/api/jobs/stats").json()["total"]
    body = assert_problem(import_of(api, source), 400)
    assert words in body["detail"]
    assert str(api.stack.base) not in body["detail"], "a server path reached the client"
    assert api.http.get("/api/jobs/stats").json()["total"] == before, "a job was created"


def local_disk_only(api: JobsApi) -> None:
    if api.stack.on_object_store:
        pytest.skip("symlinks and absolute paths are things of local disk, not of an object store")


def test_symlink_out_of_the_import_directory_is_400(api: JobsApi, tmp_path: Path) -> None:
    local_disk_only(api)
    project = api.create_project()
    secret = tmp_path / "secret.csv"
    secret.write_text("id\n1\n")
    link = api.stack.base / "imports" / project / f"{uuid.uuid4().hex}.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    body = assert_problem(import_of(api, link.name, project), 400)
    assert "outside the import directory" in body["detail"]


def test_absolute_path_inside_the_import_directory_is_accepted(api: JobsApi) -> None:
    local_disk_only(api)
    project = api.create_project()
    name = api.write_import(project, f"{project}.csv", "id\n1\n")
    source = str(api.stack.base / "imports" / project / name)
    job = api.submit("import", project, source=source)
    assert api.wait_for_status(job["id"], "completed", "failed")["status"] == "completed"


def test_a_project_cannot_import_another_projects_file(api: JobsApi) -> None:
    owner, other = api.create_project(), api.create_project()
    source = api.write_import(owner, "private.csv", "id,secret\n1,x\n")
    body = assert_problem(import_of(api, source, other), 400)
    assert "does not exist" in body["detail"]
    for climb in (f"../{owner}/{source}", f"uploads/../../{owner}/{source}"):
        assert "'..'" in assert_problem(import_of(api, climb, other), 400)["detail"]


def test_body_past_the_limit_is_413_whether_its_length_is_declared_or_not(api: JobsApi) -> None:
    big = b'{"id": "' + b"x" * (2 << 20) + b'"}'
    json_type = {"content-type": "application/json"}
    body = assert_problem(api.http.post("/api/projects", content=big, headers=json_type), 413)
    assert "1048576 bytes" in body["detail"]

    def chunks() -> Iterator[bytes]:
        yield from (big[i : i + 65536] for i in range(0, len(big), 65536))

    assert_problem(api.http.post("/api/projects", content=chunks(), headers=json_type), 413)


def test_framework_errors_are_problems_too(api: JobsApi) -> None:
    assert_problem(api.http.get("/api/no-such-thing"), 404)
    assert_problem(api.http.delete("/api/jobs"), 405)
    wrong_type = api.http.post(
        "/api/projects", content=b'{"id": "x"}', headers={"content-type": "text/plain"}
    )
    assert_problem(wrong_type, 422)
    not_utf8 = api.http.post(
        "/api/projects", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert_problem(not_utf8, 400)


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
        {"created_from": "0001-01-01T00:00:00+05:00"},
        {"created_to": "9999-12-31T23:59:59-05:00"},
        {"status": ["queued"] * 21},
        {"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgMV0"},
        {"cursor": "eyJhIjogMX0"},
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


def write_row(url: str, **fields: Any) -> None:
    """A probe job row of project p, as it stands in the table, `fields` overriding."""
    now = datetime.now(UTC)
    row = {"type": "probe", "project_id": "p", "params": {}, "attempt": 1, "progress_done": 0}
    database = Database(url, application_name="pastools-tests")
    with database.transaction() as session:
        session.add(Job(**{**row, "created_at": now, "updated_at": now, **fields}))
    database.dispose()


def test_an_unexpected_error_is_a_generic_500_without_details(tmp_path: Path) -> None:
    """A row the code cannot read (an unknown status, as a bad manual edit would leave)."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(url)
    write_row(url, id="odd", status="bogus")
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,  # the error is the subject here, not access
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/api/jobs/odd")
    body = assert_problem(response, 500)
    assert body["detail"] == "The server failed; the error has been logged."
    for leak in ("bogus", "ValueError", "File ", str(tmp_path), "SELECT"):
        assert leak not in response.text


def test_submission_while_temporal_is_down_is_kept_queued_for_the_mirror(
    app_without_temporal: TestClient,
) -> None:
    """The row is the job: a client told 201 holds an id that exists, and the mirror starts
    the workflow once Temporal answers (a start that reached Temporal is found started)."""
    response = app_without_temporal.post("/api/jobs", json={"type": "probe", "project_id": "p"})
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["status"], job["cancel_requested"]) == ("queued", False)
    assert app_without_temporal.get(f"/api/jobs/{job['id']}").json()["status"] == "queued"
    ready = assert_problem(app_without_temporal.get("/readyz"), 503)
    assert "temporal" in ready["detail"]
    assert app_without_temporal.get("/healthz").status_code == 200


def test_replay_while_temporal_is_down_is_the_same_job(app_without_temporal: TestClient) -> None:
    """Whatever Temporal answered the first request, its key never makes a second job, and
    the id a replay answers with exists."""
    body = {"type": "probe", "project_id": "p", "params": {"items": 1}}
    key = {"Idempotency-Key": "retry-me"}
    first = app_without_temporal.post("/api/jobs", json=body, headers=key)
    again = app_without_temporal.post("/api/jobs", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"]
    assert app_without_temporal.get(f"/api/jobs/{first.json()['id']}").status_code == 200
    other = {**body, "params": {"items": 2}}
    assert_problem(app_without_temporal.post("/api/jobs", json=other, headers=key), 422)
    assert len(app_without_temporal.get("/api/jobs").json()["items"]) == 1


def test_cancel_that_cannot_reach_temporal_is_503_and_not_stamped(
    app_without_temporal: TestClient,
) -> None:
    """The row says "cancelling" only once Temporal has accepted the cancel."""
    job = app_without_temporal.post("/api/jobs", json={"type": "probe", "project_id": "p"}).json()
    assert_problem(app_without_temporal.post(f"/api/jobs/{job['id']}/cancel"), 503)
    after = app_without_temporal.get(f"/api/jobs/{job['id']}").json()
    assert (after["status"], after["cancel_requested"]) == ("queued", False)


def test_cancel_of_a_running_job_that_cannot_reach_temporal_is_503_and_not_stamped(
    app_without_temporal: TestClient, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    write_row(url, id="running", status="running", run_id="run-1", started_at=datetime.now(UTC))
    assert_problem(app_without_temporal.post("/api/jobs/running/cancel"), 503)
    after = app_without_temporal.get("/api/jobs/running").json()
    assert (after["status"], after["cancel_requested"]) == ("running", False)


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
