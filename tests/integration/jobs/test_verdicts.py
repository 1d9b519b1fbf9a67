"""Verdicts through the API: data tests judged by severity and thresholds (pass, warn,
error) with their JUnit XML, failing rows and history, and validation's `max_invalid`."""

import json
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from tests.integration.jobs.test_export_validation_tests import download, finished, project_with
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration

ROWS: list[dict[str, Any]] = [
    {"id": f"r{n:02d}", "score": n * 10, "email": "x@y.org" if n % 2 else "nope"} for n in range(20)
]  # score 0..190; 10 emails without an @
SUITE: list[dict[str, Any]] = [
    {"kind": "range", "name": "score small", "field": "score", "max": 100, "error_if": ">5"},
    {"kind": "regex", "name": "email shape", "field": "email", "pattern": "@",
     "severity": "warn", "warn_if": ">=25%"},
    {"kind": "not_null", "name": "score present", "field": "score"},
]  # fmt: skip


def set_suite(api: JobsApi, project: str, suite: list[dict[str, Any]]) -> None:
    response = api.http.put(f"/api/projects/{project}/tests", json={"tests": suite})
    assert response.status_code == 200, response.text


def history(http: httpx.Client, project: str, test: str, **query: Any) -> httpx.Response:
    return http.get(f"/api/projects/{project}/tests/{test}/history", params=query)


def test_a_run_judges_each_test_and_keeps_its_history(api: JobsApi) -> None:
    project = project_with(api, ROWS)
    set_suite(api, project, SUITE)

    first = finished(api, "test_run", project, failing_rows_per_test=3)

    assert first["status"] == "completed", first["error"]
    result = first["result"]
    verdicts = {v["name"]: (v["status"], v["failing"], v["total"]) for v in result["results"]}
    assert verdicts == {
        "score small": ("error", 9, 20),  # 9 scores over 100: more than 5
        "email shape": ("warn", 10, 20),  # half fail: at least 25 %, severity warn
        "score present": ("pass", 0, 20),
    }
    assert (result["status"], result["passed"], result["warned"], result["failed"]) == (
        "error", 1, 1, 1,
    )  # fmt: skip

    suite = ElementTree.fromstring(download(api, first["id"], "test-results.xml").content)[0]
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["email shape"].find("failure") is None
    assert (cases["email shape"].findtext("system-out") or "").startswith("WARNING")
    assert cases["score small"].find("failure") is not None

    written = download(api, first["id"], "failing-rows.jsonl").text.splitlines()
    rows = [json.loads(line) for line in written]
    assert rows[:3] == [
        {"test": "score small", "key": f"r{n}", "value": n * 10} for n in (11, 12, 13)
    ]
    assert [row["key"] for row in rows[3:]] == ["r00", "r02", "r04"]  # 3 of the 10 bad emails
    assert {row["test"] for row in rows[3:]} == {"email shape"}

    # A second run under a looser threshold: the error becomes a warning.
    set_suite(api, project, [{**SUITE[0], "error_if": ">50%"}, *SUITE[1:]])
    second = finished(api, "test_run", project)
    assert second["result"]["status"] == "warn"

    page = history(api.http, project, "score small").json()
    assert [(e["job_id"], e["status"], e["error_if"]) for e in page["items"]] == [
        (second["id"], "warn", ">50%"),
        (first["id"], "error", ">5"),
    ]
    assert (page["items"][0]["failing"], page["items"][0]["total"]) == (9, 20)
    assert page["next_cursor"] is None
    newest = history(api.http, project, "score small", limit=1).json()
    assert [e["job_id"] for e in newest["items"]] == [second["id"]]
    older = history(api.http, project, "score small", limit=1, cursor=newest["next_cursor"])
    assert [e["job_id"] for e in older.json()["items"]] == [first["id"]]

    assert history(api.http, project, "never run").json() == {"items": [], "next_cursor": None}
    for bad in (
        api.http.get(f"/api/projects/{project}/tests/a%00b/history"),  # no name holds a NUL
        history(
            api.http,
            project,
            "score small",
            cursor="WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImFcdTAwMDBiIl0",
        ),
        history(api.http, project, "x" * 201),
    ):
        assert bad.status_code == 422, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
    missing = history(api.http, "no-such-project", "score small")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    other = api.create_project()
    token = api.stack.create_token("viewer", other)
    with httpx.Client(base_url=api.stack.url, headers={"Authorization": f"Bearer {token}"}) as of:
        assert history(of, project, "score small").status_code == 404
        assert history(of, other, "score small").json()["items"] == []


def test_bad_thresholds_are_refused_with_422(api: JobsApi) -> None:
    project = api.create_project()
    good = {"kind": "not_null", "name": "n", "field": "n"}
    for bad in ({"warn_if": "more than 10"}, {"error_if": ">200%"}, {"severity": "fatal"}):
        response = api.http.put(f"/api/projects/{project}/tests", json={"tests": [{**good, **bad}]})
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith("application/problem+json")
        assert next(iter(bad)) in json.dumps(response.json()["errors"]), response.text
    for params in ({"max_invalid": "2 percent"}, {"max_invalid": -1}):
        response = api.http.post(
            "/api/jobs", json={"type": "validation", "project_id": project, "params": params}
        )
        assert response.status_code == 422, params
        assert "max_invalid" in response.text
    failing_rows = {
        "type": "test_run",
        "project_id": project,
        "params": {"failing_rows_per_test": -1},
    }
    assert api.http.post("/api/jobs", json=failing_rows).status_code == 422


def test_validation_passes_within_max_invalid(api: JobsApi) -> None:
    """Two of three records invalid: within a limit of 2 or 70 %, not of 1 or 50 % or the
    default, 0."""
    project = project_with(api, [{"id": "a", "n": 1}, {"id": "b", "n": "x"}, {"id": "c"}])
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    assert api.http.put(f"/api/projects/{project}/schema", json=schema).status_code == 200
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "fail"),
        ({"max_invalid": 1}, "fail"),
        ({"max_invalid": 2}, "pass"),
        ({"max_invalid": "70%"}, "pass"),
        ({"max_invalid": "50%"}, "fail"),
    ]
    for params, verdict in cases:
        done = finished(api, "validation", project, **params)

        assert done["status"] == "completed", done["error"]
        result = done["result"]
        assert (result["valid"], result["invalid"], result["verdict"]) == (1, 2, verdict), params
        assert result["max_invalid"] == params.get("max_invalid", 0)
        report = download(api, done["id"], result["report"]).text.splitlines()
        assert [json.loads(line)["key"] for line in report] == ["b", "c"]
