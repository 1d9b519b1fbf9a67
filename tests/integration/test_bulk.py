"""Bulk actions by filter: a preview, then a `bulk` job that acts a page at a time.

The 10,000 finished jobs of the deletion test are written straight into the table (no
workflow needs to run for a finished job); cancel and retry act on real workflows.
"""

import uuid
from typing import Any

import httpx
import pytest

from pastools_jobs.counts import count_drift
from pastools_jobs.db.engine import Database
from tests.support.jobs import JobsApi, new_project
from tests.support.rows import write_finished

pytestmark = pytest.mark.integration

MANY = 10_000


def bulk(api: JobsApi, body: dict[str, Any], **headers: str) -> httpx.Response:
    return api.http.post("/api/jobs/bulk", json=body, headers=headers)


def finished_bulk(api: JobsApi, response: httpx.Response, timeout: float = 120) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["type"] == "bulk"
    return api.wait_for_status(job["id"], "completed", "failed", timeout=timeout)


def test_a_bulk_delete_of_ten_thousand_finished_jobs_deletes_exactly_those(api: JobsApi) -> None:
    project, other = new_project(), new_project()
    write_finished(api.stack.database_url, project, MANY)
    write_finished(api.stack.database_url, other, 20)
    body = {"action": "delete", "filter": {"project_id": project}, "page_size": 1000}

    preview = api.http.post("/api/jobs/bulk/preview", json=body)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert (shown["matched"], shown["would_change"], len(shown["sample"])) == (MANY, MANY, 10)
    assert shown["sample"][0]["id"] == f"{project}-{MANY - 1:05d}", "newest first"

    done = finished_bulk(api, bulk(api, {**body, "reason": "tidy up"}))
    assert done["status"] == "completed", done["error"]
    assert done["result"] == {
        "action": "delete",
        "matched": MANY,
        "changed": MANY,
        "skipped": 0,
        "failed": 0,
        "failures": [],
    }
    assert done["progress"]["percent"] == 100
    started = api.http.get("/api/audit", params={"project_id": project, "action": "bulk.start"})
    [entry] = started.json()["items"]
    assert (entry["job_id"], entry["reason"]) == (done["id"], "tidy up")
    assert entry["details"]["action"] == "delete"
    deleted, cursor = set(), None
    while True:
        params: dict[str, str | int] = {"project_id": project, "action": "job.delete", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = api.http.get("/api/audit", params=params).json()
        for each in page["items"]:
            assert each["actor"] == {
                "kind": "bulk-job",
                "id": done["id"],
                "name": None,
                "channel": "worker",
                "label": f"bulk job {done['id']}",
            }
            assert each["reason"] == "tidy up"
            deleted.add(each["job_id"])
        if (cursor := page["next_cursor"]) is None:
            break
    assert deleted == {f"{project}-{n:05d}" for n in range(MANY)}, "one entry per deleted job"
    left = api.http.get(f"/api/jobs/projects/{project}/stats").json()
    assert (left["total"], left["by_type"]) == (1, {"bulk": 1}), "only the bulk job is left"
    assert api.http.get(f"/api/jobs/projects/{other}/stats").json()["total"] == 20
    listed = api.http.get("/api/jobs", params={"type": "bulk", "project_id": project}).json()
    assert [job["id"] for job in listed["items"]] == [done["id"]]
    db = Database(api.stack.database_url, application_name="tests")
    try:
        with db.transaction() as session:
            assert count_drift(session) == []
    finally:
        db.dispose()


def test_a_bulk_delete_leaves_open_jobs_and_other_filters_alone(api: JobsApi) -> None:
    project = new_project()
    write_finished(api.stack.database_url, project, 30, status="failed")
    running = api.submit("probe", project, items=10_000, item_ms=50)["id"]
    body = {"action": "delete", "filter": {"project_id": project, "params": {"items": ["1"]}}}

    shown = api.http.post("/api/jobs/bulk/preview", json=body).json()
    assert (shown["matched"], shown["would_change"]) == (10, 10)
    everything = {"action": "delete", "filter": {"project_id": project}}
    shown = api.http.post("/api/jobs/bulk/preview", json=everything).json()
    assert (shown["matched"], shown["would_change"]) == (31, 30)

    done = finished_bulk(api, bulk(api, everything))
    assert (done["result"]["changed"], done["result"]["skipped"]) == (30, 1)
    assert api.get(running)["status"] in ("queued", "running")
    api.http.post(f"/api/jobs/{running}/cancel")


def test_bulk_cancel_then_bulk_retry_of_real_workflows(api: JobsApi) -> None:
    project = new_project()
    slow = [api.submit("probe", project, items=10_000, item_ms=50)["id"] for _ in range(40)]
    quick = api.submit("probe", project, items=1)["id"]
    api.wait_for_status(quick, "completed")
    body = {"action": "cancel", "filter": {"project_id": project, "type": ["probe"]}}

    shown = api.http.post("/api/jobs/bulk/preview", json=body).json()
    assert (shown["matched"], shown["would_change"]) == (41, 40)
    done = finished_bulk(api, bulk(api, {**body, "page_size": 10}))
    assert done["status"] == "completed", done["error"]
    assert {k: done["result"][k] for k in ("matched", "changed", "skipped", "failed")} == {
        "matched": 41,
        "changed": 40,
        "skipped": 1,
        "failed": 0,
    }
    for job_id in slow:
        api.wait_for_status(job_id, "cancelled")
    assert api.get(quick)["status"] == "completed"
    cancels = api.http.get(
        "/api/audit", params={"project_id": project, "action": "job.cancel", "limit": 100}
    ).json()["items"]
    assert sorted(e["job_id"] for e in cancels) == sorted(slow)
    assert {e["actor"]["id"] for e in cancels} == {done["id"]}, "each names the bulk job"

    again = {"action": "retry", "filter": {"project_id": project, "status": ["cancelled"]}}
    retried = finished_bulk(api, bulk(api, again))
    assert (retried["result"]["changed"], retried["result"]["failed"]) == (40, 0)
    for job_id in slow:
        job = api.wait_for_job(job_id, lambda j: j["attempt"] == 2, what="a second attempt")
        assert job["attempts"][0]["status"] == "cancelled"
    finished_bulk(api, bulk(api, {"action": "cancel", "filter": {"project_id": project}}))


def test_a_repeated_request_with_the_same_key_is_the_same_bulk_job(api: JobsApi) -> None:
    project = new_project()
    body = {"action": "cancel", "filter": {"project_id": project}}
    key = uuid.uuid4().hex
    first = bulk(api, body, **{"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = bulk(api, body, **{"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert finished_bulk(api, first)["result"]["matched"] == 0


def test_a_scoped_operator_acts_on_its_own_project_only(api: JobsApi) -> None:
    mine, theirs = new_project(), new_project()
    write_finished(api.stack.database_url, mine, 5, status="failed")
    write_finished(api.stack.database_url, theirs, 5, status="failed")
    token = api.stack.create_token("operator", mine)
    url = f"{api.stack.url}/api/jobs/bulk"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as operator:
        # No project in the filter: the token's own, never every project.
        shown = operator.post(f"{url}/preview", json={"action": "cancel"}).json()
        assert shown["matched"] == 5
        other = {"action": "cancel", "filter": {"project_id": theirs}}
        assert operator.post(f"{url}/preview", json=other).status_code == 404
        assert operator.post(url, json=other).status_code == 404
        refused = operator.post(url, json={"action": "delete"})
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"
        started = operator.post(url, json={"action": "cancel"})
        assert started.status_code == 201, started.text
        assert started.json()["project_id"] == mine


def test_an_impossible_filter_is_refused_before_anything_starts(api: JobsApi) -> None:
    for body, words in (
        ({"action": "explode"}, "action"),
        ({"action": "cancel", "filter": {"params": {"a.b": ["x"]}}}, "'param.a.b'"),
        ({"action": "cancel", "filter": {"status": ["lost"]}}, "status"),
        ({"action": "cancel", "filter": {"type": ["inport"]}}, "No job type is called 'inport'"),
        (
            {
                "action": "cancel",
                "filter": {"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01"},
            },
            "created_from",
        ),
    ):
        response = bulk(api, body)
        assert response.status_code == 422, (body, response.text)
        assert words in response.text


def test_a_bulk_job_cannot_be_submitted_as_a_job(api: JobsApi) -> None:
    """Only its own route checks the role its action needs (delete: admin)."""
    body = {"type": "bulk", "project_id": new_project(), "params": {"action": "delete"}}
    response = api.http.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
