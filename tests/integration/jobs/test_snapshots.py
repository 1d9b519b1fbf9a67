"""A job runs against the schema or test suite its project had when the job started,
even when its work is retried after the project changed (the worker killed, a PUT in
between), and its result names that version by its digest."""

import hashlib
import json
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.support.datasets import work_attempts
from tests.support.jobs import JobsApi
from tests.support.services import Stack

pytestmark = pytest.mark.integration

ROWS = 120_000
BOUNDS = range(10_000, 90_000, 10_000)
ORIGINAL_SUITE = [
    {"kind": "range", "name": f"n at most {bound}", "field": "n", "min": 0, "max": bound}
    for bound in BOUNDS
]
CHANGED_SUITE = [
    {"kind": "not_null", "name": f"f{index} present", "field": f"f{index}"} for index in range(12)
]
ORIGINAL_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 59_999}}}
CHANGED_SCHEMA = {"type": "object", "required": ["missing"]}


@pytest.fixture(scope="module")
def numbered(stack: Stack) -> str:
    """A project whose jobs run long enough to be interrupted: keys r0000000…, `n` from 0."""
    with stack.client() as client:
        api = JobsApi(client, stack)
        project = api.create_project()
        lines = "".join(f'{{"id": "r{n:07d}", "n": {n}}}\n' for n in range(ROWS))
        source = api.write_import(project, f"{project}.jsonl", lines)
        job = api.submit("import", project, source=source, key_column="id")
        assert api.wait_for_status(job["id"], "completed", "failed", timeout=120)["status"] == (
            "completed"
        )
    return project


def digest(document: Any) -> str:
    """The digest of a schema or suite as the README says to compute it."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def change_while_no_worker_runs(api: JobsApi, path: str, body: Any) -> None:
    """Kill the worker mid-work, change the project, start a worker: the work is retried."""
    api.stack.kill_worker()
    changed = api.http.put(path, json=body)
    api.stack.start_worker()
    assert changed.status_code == 200, changed.text


def test_a_test_run_retried_after_its_suite_changed_runs_the_suite_it_started_with(
    api: JobsApi, numbered: str
) -> None:
    tests_path = f"/api/projects/{numbered}/tests"
    assert api.http.put(tests_path, json={"tests": ORIGINAL_SUITE}).status_code == 200
    original = api.http.get(f"/api/projects/{numbered}").json()["test_suite"]
    job = api.submit("test_run", numbered)
    api.wait_checkpointed(job["id"])

    change_while_no_worker_runs(api, tests_path, {"tests": CHANGED_SUITE})

    done = api.wait_for_status(job["id"], "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["error"]
    assert work_attempts(api, job["id"]) >= 2, "the kill did not interrupt the run"
    result = done["result"]
    assert [(v["name"], v["failing"]) for v in result["results"]] == [
        (f"n at most {bound}", ROWS - 1 - bound) for bound in BOUNDS
    ]
    assert result["suite_sha256"] == digest(original)
    junit = api.http.get(f"/api/jobs/{job['id']}/artifacts/test-results.xml").content
    recorded = ElementTree.fromstring(junit).find("testsuite/properties/property")
    assert recorded is not None
    assert (recorded.get("name"), recorded.get("value")) == ("suite_sha256", digest(original))


def test_a_validation_retried_after_its_schema_changed_checks_the_schema_it_started_with(
    api: JobsApi, numbered: str
) -> None:
    schema_path = f"/api/projects/{numbered}/schema"
    assert api.http.put(schema_path, json=ORIGINAL_SCHEMA).status_code == 200
    job = api.submit("validation", numbered, batch_rows=100)
    api.wait_running(job["id"])

    change_while_no_worker_runs(api, schema_path, CHANGED_SCHEMA)

    done = api.wait_for_status(job["id"], "completed", "failed", timeout=120)
    assert done["status"] == "completed", done["error"]
    assert work_attempts(api, job["id"]) >= 2, "the kill did not interrupt the validation"
    result = done["result"]
    assert (result["valid"], result["invalid"]) == (60_000, 60_000)
    assert [group["path"] for group in result["errors_by_path"]] == ["/properties/n/maximum"]
    assert result["schema_sha256"] == digest(ORIGINAL_SCHEMA)
    report = api.http.get(f"/api/jobs/{job['id']}/artifacts/{result['report']}").text
    paths = {error["path"] for line in report.splitlines() for error in json.loads(line)["errors"]}
    assert paths == {"/properties/n/maximum"}
