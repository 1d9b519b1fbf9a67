"""Cancel mid-work and SIGKILL mid-work, for every job type that works on a dataset."""

import json

import pytest

from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration

ROWS = 120_000
_BIG: dict[str, str] = {}

TESTS = [
    {"kind": "not_null", "name": "n present", "field": "n"},
    {"kind": "unique", "name": "n unique", "field": "n"},
    {"kind": "range", "name": "n small", "field": "n", "min": 0, "max": 100_000},
    {"kind": "regex", "name": "tag shape", "field": "tag", "pattern": "^t[0-9]+$"},
]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 100_000}}}


def big_project(api: JobsApi) -> str:
    """One large project per stack, with a schema and tests, shared by these tests."""
    if api.stack.name not in _BIG:
        project = api.create_project()
        lines = "".join(
            f'{{"id": "r{i:07d}", "n": {i}, "tag": "t{i % 97}"}}\n' for i in range(ROWS)
        )
        source = api.write_import(f"{project}.jsonl", lines)
        job = api.submit("import", project, source=source, key_column="id")
        assert api.wait_for_status(job["id"], "completed", timeout=120)["status"] == "completed"
        assert api.http.put(f"/api/projects/{project}/schema", json=SCHEMA).status_code == 200
        assert (
            api.http.put(f"/api/projects/{project}/tests", json={"tests": TESTS}).status_code == 200
        )
        _BIG[api.stack.name] = project
    return _BIG[api.stack.name]


JOBS = [
    ("export", {"format": "jsonl", "batch_rows": 200}),
    ("validation", {"batch_rows": 100}),
    ("test_run", {}),
]


def work_attempts(api: JobsApi, job_id: str) -> int:
    """How many times the job's work activity was started, from its Temporal history."""
    history = json.loads(
        api.stack.temporal.cli("workflow", "show", "-w", job_id, "-o", "json").stdout
    )
    return max(
        event["activityTaskStartedEventAttributes"].get("attempt", 1)
        for event in history["events"]
        if "activityTaskStartedEventAttributes" in event
    )


@pytest.mark.parametrize(("job_type", "params"), JOBS)
def test_cancel_mid_work_stops_and_leaves_no_finished_looking_file(
    api: JobsApi, job_type: str, params: dict
) -> None:
    project = big_project(api)
    job = api.submit(job_type, project, **params)
    api.wait_running(job["id"])

    assert api.http.post(f"/api/jobs/{job['id']}/cancel").status_code == 202
    cancelled = api.wait_for_status(job["id"], "cancelled", timeout=20)

    assert cancelled["progress"]["percent"] < 100
    assert api.http.get(f"/api/jobs/{job['id']}/artifacts").json() == []


@pytest.mark.parametrize(("job_type", "params"), JOBS)
def test_worker_killed_mid_work_finishes_with_the_same_result(
    api: JobsApi, job_type: str, params: dict
) -> None:
    project = big_project(api)
    reference = api.submit(job_type, project, **params)
    expected = api.wait_for_status(reference["id"], "completed", timeout=120)

    job = api.submit(job_type, project, **params)
    api.wait_for_job(
        job["id"],
        lambda j: j["status"] == "running" and j["progress"]["done"] > 0,
        what="work under way",
    )
    api.stack.kill_worker()
    api.stack.start_worker()
    done = api.wait_for_status(job["id"], "completed", "failed", timeout=120)

    assert done["status"] == "completed", done["error"]
    assert work_attempts(api, job["id"]) >= 2, "the kill did not interrupt the work"
    assert done["result"] == expected["result"]
    for artifact in api.http.get(f"/api/jobs/{reference['id']}/artifacts").json():
        before = api.http.get(artifact["url"]).content
        after = api.http.get(f"/api/jobs/{job['id']}/artifacts/{artifact['name']}").content
        assert after == before, f"{artifact['name']} differs after the crash"
