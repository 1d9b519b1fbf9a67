"""Export, validation and test-run jobs on real records, with their artifacts."""

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pastools_jobs.db.models import Project
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration


def project_with(api: JobsApi, rows: list[dict], key: str = "id") -> str:
    project = api.create_project()
    import_rows(api, project, rows, key)
    return project


def import_rows(api: JobsApi, project: str, rows: list[dict], key: str = "id") -> None:
    content = "".join(json.dumps(row) + "\n" for row in rows)
    source = api.write_import(project, f"{uuid.uuid4().hex}.jsonl", content)
    job = api.submit("import", project, source=source, key_column=key)
    assert api.wait_for_status(job["id"], "completed", "failed")["status"] == "completed"


def created_over_http(api: JobsApi, project: str) -> None:
    api.create_project(project)


def left_by_an_older_release(api: JobsApi, project: str) -> None:
    """A project created before the rule for new ids existed, which must keep working."""
    engine = create_engine(api.stack.database_url)
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            session.add(Project(id=project, name=None, created_at=now, updated_at=now))
    finally:
        engine.dispose()


def finished(api: JobsApi, job_type: str, project: str, **params) -> dict:
    job = api.submit(job_type, project, **params)
    return api.wait_for_status(job["id"], "completed", "failed", timeout=60)


def download(api: JobsApi, job_id: str, name: str):
    return api.http.get(f"/api/jobs/{job_id}/artifacts/{name}")


PEOPLE: list[dict[str, Any]] = [
    {"id": "a1", "name": "Ada", "age": 36, "tags": ["x"]},
    {"id": "b2", "name": "Bob", "age": 17},
    {"id": "c3", "name": None, "age": "old"},
]


@pytest.mark.parametrize("export_format", ["csv", "jsonl", "parquet"])
def test_export_writes_a_downloadable_artifact(api: JobsApi, export_format: str) -> None:
    project = project_with(api, PEOPLE)
    done = finished(api, "export", project, format=export_format)
    assert done["status"] == "completed", done["error"]
    name = done["result"]["artifact"]

    listed = api.http.get(f"/api/jobs/{done['id']}/artifacts").json()
    assert [a["name"] for a in listed] == [name]
    response = download(api, done["id"], name)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) == listed[0]["bytes"]

    if export_format == "jsonl":
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert lines[0] == {"key": "a1", "data": PEOPLE[0]}
        assert [line["key"] for line in lines] == ["a1", "b2", "c3"]
    elif export_format == "csv":
        table = list(csv.DictReader(io.StringIO(response.text)))
        assert table[0] == {"key": "a1", "id": "a1", "name": "Ada", "age": "36", "tags": '["x"]'}
        assert table[2]["name"] == ""
    else:
        rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
        assert rows[1] == {"key": "b2", "id": "b2", "name": "Bob", "age": "17", "tags": ""}


@pytest.mark.parametrize(
    ("project", "make"),
    [("team:{}", created_over_http), ("_{}", left_by_an_older_release)],
    ids=["colon", "leading-underscore"],
)
def test_export_of_any_valid_project_id_completes_and_downloads(
    api: JobsApi, project: str, make: Callable[[JobsApi, str], None]
) -> None:
    project = project.format(uuid.uuid4().hex[:10])
    make(api, project)
    import_rows(api, project, PEOPLE)

    done = finished(api, "export", project, format="csv")

    assert done["status"] == "completed", done["error"]
    assert api.activity_attempts(done["id"]) == [1, 1], "its plan and one activity, once each"
    response = download(api, done["id"], done["result"]["artifact"])
    assert response.status_code == 200
    assert [row["key"] for row in csv.DictReader(io.StringIO(response.text))] == ["a1", "b2", "c3"]


def test_export_of_a_missing_project_fails_on_its_first_attempt(api: JobsApi) -> None:
    project = f"_{uuid.uuid4().hex[:10]}"

    failed = finished(api, "export", project)

    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "ProjectNotFound"
    assert project in failed["error"]["message"]
    assert api.activity_attempts(failed["id"]) == [1, 1], (
        "an input error was retried (after the plan)"
    )


def test_unknown_or_escaping_artifact_names_are_404(api: JobsApi) -> None:
    project = project_with(api, PEOPLE)
    done = finished(api, "export", project)
    for name in ("nope.csv", "..%2F..%2Fjobs.sqlite3", "%2Fetc%2Fpasswd", ".hidden"):
        assert download(api, done["id"], name).status_code == 404, name
    assert api.http.get("/api/jobs/no-such-job/artifacts").status_code == 404


def test_export_filtered_by_key_prefix(api: JobsApi) -> None:
    project = project_with(api, PEOPLE)
    done = finished(api, "export", project, key_prefix="b")
    assert done["result"]["rows"] == 1


FRUIT: list[dict[str, Any]] = [
    {"id": "apricot", "sweet": True},
    {"id": "Apple", "colour": "red"},
    {"id": "ap_x", "odd": 1},
    {"id": "apXx", "odd": 2},
]


@pytest.mark.parametrize(
    ("prefix", "keys", "header"),
    [("Ap", ["Apple"], ["key", "colour", "id"]), ("ap_", ["ap_x"], ["key", "id", "odd"])],
)
def test_key_prefix_matches_exactly_and_with_case_on_either_database(
    api: JobsApi, prefix: str, keys: list[str], header: list[str]
) -> None:
    project = project_with(api, FRUIT)

    done = finished(api, "export", project, format="csv", key_prefix=prefix)

    assert done["status"] == "completed", done["error"]
    assert done["result"]["rows"] == len(keys)
    table = list(csv.reader(io.StringIO(download(api, done["id"], "export.csv").text)))
    assert table[0] == header
    assert [row[0] for row in table[1:]] == keys


def test_worker_killed_mid_export_gives_a_byte_identical_file(api: JobsApi) -> None:
    rows = [{"id": f"k{i:06d}", "n": i, "text": "x" * 40} for i in range(60_000)]
    project = project_with(api, rows)
    reference = finished(api, "export", project, format="csv", batch_rows=500)
    expected = download(api, reference["id"], reference["result"]["artifact"]).content

    job = api.submit("export", project, format="csv", batch_rows=500)
    api.wait_for_job(job["id"], lambda j: j["progress"]["percent"] >= 10, what="some rows out")
    api.stack.kill_worker()
    api.stack.start_worker()
    done = api.wait_for_status(job["id"], "completed", timeout=90)

    assert download(api, job["id"], done["result"]["artifact"]).content == expected


def test_validation_groups_errors_by_schema_path_and_writes_a_report(api: JobsApi) -> None:
    project = project_with(api, PEOPLE)
    schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18}},
    }
    assert api.http.put(f"/api/projects/{project}/schema", json=schema).status_code == 200

    done = finished(api, "validation", project)

    assert done["status"] == "completed", done["error"]
    result = done["result"]
    assert (result["valid"], result["invalid"]) == (1, 2)
    by_path = {group["path"]: group for group in result["errors_by_path"]}
    assert by_path["/properties/age/minimum"]["count"] == 1
    assert by_path["/properties/age/minimum"]["examples"][0]["key"] == "b2"
    assert by_path["/properties/age/type"]["examples"][0]["key"] == "c3"
    report = download(api, done["id"], result["report"]).text.splitlines()
    assert [json.loads(line)["key"] for line in report] == ["b2", "c3"]


def test_invalid_schema_is_refused_when_set(api: JobsApi) -> None:
    project = api.create_project()
    for schema in ({"type": "wrongtype"}, {"$ref": "http://example.invalid/schema.json"}):
        response = api.http.put(f"/api/projects/{project}/schema", json=schema)
        assert response.status_code == 422, response.text
        assert "JSON Schema" in response.json()["detail"]


def test_validation_without_a_schema_fails_saying_what_to_do(api: JobsApi) -> None:
    project = project_with(api, PEOPLE)
    failed = finished(api, "validation", project)
    assert failed["error"]["type"] == "NoSchema"
    assert f"/api/projects/{project}/schema" in failed["error"]["message"]


def test_test_run_reports_each_test_as_json_and_junit(api: JobsApi) -> None:
    countries = project_with(api, [{"code": "FR"}, {"code": "DE"}], key="code")
    project = project_with(
        api,
        [
            {"id": "1", "email": "a@x.org", "country": "FR", "score": 5},
            {"id": "2", "email": "bad", "country": "XX", "score": 50},
            {"id": "3", "email": "a@x.org", "country": "DE", "score": None},
        ],
    )
    tests = [
        {"kind": "not_null", "name": "score present", "field": "score"},
        {"kind": "unique", "name": "emails unique", "field": "email"},
        {"kind": "accepted_values", "name": "known country", "field": "country",
         "values": ["FR", "DE"]},
        {"kind": "row_count", "name": "three rows", "min": 3, "max": 3},
        {"kind": "regex", "name": "email shape", "field": "email", "pattern": "^[^@]+@[^@]+$"},
        {"kind": "range", "name": "score range", "field": "score", "min": 0, "max": 10},
        {"kind": "relationship", "name": "country exists", "field": "country",
         "to_project": countries},
    ]  # fmt: skip
    assert api.http.put(f"/api/projects/{project}/tests", json={"tests": tests}).status_code == 200

    done = finished(api, "test_run", project)

    assert done["status"] == "completed", done["error"]
    verdicts = {v["name"]: v for v in done["result"]["results"]}
    assert {name: v["passed"] for name, v in verdicts.items()} == {
        "score present": False,
        "emails unique": False,
        "known country": False,
        "three rows": True,
        "email shape": False,
        "score range": False,
        "country exists": False,
    }
    assert verdicts["known country"]["examples"] == [{"key": "2", "value": "XX"}]
    assert verdicts["emails unique"]["failing"] == 1
    assert done["progress"]["done"] == 7
    junit = ElementTree.fromstring(download(api, done["id"], "test-results.xml").content)
    suite = junit.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("7", "6")
    assert download(api, done["id"], "test-results.json").json()[3]["passed"] is True


def test_invalid_test_suite_is_422(api: JobsApi) -> None:
    project = api.create_project()
    bad = [
        {"tests": [{"kind": "regex", "name": "r", "field": "a", "pattern": "(("}]},
        {"tests": [{"kind": "teleport", "name": "t"}]},
        {"tests": [{"kind": "range", "name": "r", "field": "a"}]},
        {"tests": [{"kind": "not_null", "name": "x", "field": "a"}] * 2},
    ]
    for suite in bad:
        response = api.http.put(f"/api/projects/{project}/tests", json=suite)
        assert response.status_code == 422, suite
