"""The audit trail: every operator action with who, through what, on what and why, read
through GET /api/audit and a job's timeline; actions taken in Temporal itself appear in
the timeline with the identity and reason Temporal recorded."""

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pastools_jobs.db.models import Job
from tests.integration.test_doctor import edit_rows
from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def token_client(stack: Stack, role: str, project: str | None, name: str) -> httpx.Client:
    token = stack.create_token(role, project, name=name)
    return httpx.Client(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def audit(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = http.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def timeline(api: JobsApi, job_id: str) -> dict[str, Any]:
    response = api.http.get(f"/api/jobs/{job_id}/timeline")
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


def history(stack: Stack, job_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
    args = ["workflow", "show", "-w", job_id, "-o", "json"]
    args += ["--run-id", run_id] if run_id else []
    events: list[dict[str, Any]] = json.loads(stack.temporal.cli(*args).stdout)["events"]
    return events


def test_a_cancel_and_a_retry_say_who_and_why_in_the_trail_and_in_temporal(api: JobsApi) -> None:
    project = api.create_project()
    alice = token_client(api.stack, "operator", project, "alice")
    submitted = alice.post(
        "/api/jobs",
        json={"type": "probe", "project_id": project, "params": {"items": 1000, "item_ms": 50}},
    )
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()
    api.wait_running(job["id"])

    cancel = alice.post(f"/api/jobs/{job['id']}/cancel", json={"reason": "wrong file"})
    assert cancel.status_code == 202, cancel.text
    first_run = api.wait_for_status(job["id"], "cancelled")["attempts"][-1]["run_id"]
    retry = alice.post(f"/api/jobs/{job['id']}/retry", json={"reason": "file fixed"})
    assert retry.status_code == 200, retry.text

    entries = audit(alice, job_id=job["id"])
    assert [e["action"] for e in entries] == ["job.retry", "job.cancel", "job.submit"]
    assert [e["reason"] for e in entries] == ["file fixed", "wrong file", None]
    token_id = entries[0]["actor"]["id"]
    for entry in entries:
        assert entry["actor"]["kind"] == "token"
        assert (entry["actor"]["id"], entry["actor"]["name"]) == (token_id, "alice")
        assert entry["actor"]["channel"] == "api"
        assert entry["project_id"] == project
        assert entry["request_id"]

    # Temporal's own history says who and why: the cancel's reason, the retry's signal.
    cancelled = [
        e["workflowExecutionCancelRequestedEventAttributes"]
        for e in history(api.stack, job["id"], first_run)
        if "workflowExecutionCancelRequestedEventAttributes" in e
    ]
    assert len(cancelled) == 1
    assert cancelled[0]["cause"] == f"token {token_id} (alice): wrong file"
    first_events = history(api.stack, job["id"])
    signal = first_events[1]["workflowExecutionSignaledEventAttributes"]
    assert signal["signalName"] == "retry"
    [sent] = [json.loads(base64.b64decode(p["data"])) for p in signal["input"]["payloads"]]
    assert (sent["actor"], sent["channel"], sent["reason"]) == (
        f"token {token_id} (alice)",
        "api",
        "file fixed",
    )

    # The platform's own requests are in the trail once: the timeline adds nothing for them.
    shown = timeline(api, job["id"])
    assert shown["temporal_read"] is True
    assert [e["action"] for e in shown["entries"]] == ["job.submit", "job.cancel", "job.retry"]
    api.wait_for_status(job["id"], "queued", "running")
    assert api.http.post(f"/api/jobs/{job['id']}/cancel").status_code == 202


def test_actions_taken_in_temporal_appear_in_the_jobs_timeline(api: JobsApi) -> None:
    job = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(job["id"])
    api.stack.temporal.cli("workflow", "signal", "-w", job["id"], "--name", "nudge")
    api.stack.temporal.cli("workflow", "terminate", "-w", job["id"], "--reason", "disk is gone")
    api.wait_for_status(job["id"], "failed", timeout=15)

    shown = timeline(api, job["id"])
    by_action = {e["action"]: e for e in shown["entries"]}
    assert [e["action"] for e in shown["entries"]] == [
        "job.submit",
        "temporal.signal",
        "temporal.terminate",
    ]
    terminated = by_action["temporal.terminate"]
    assert terminated["reason"] == "disk is gone"
    assert terminated["actor"]["kind"] == "temporal"
    assert terminated["actor"]["channel"] == "temporal"
    identity = terminated["actor"]["name"]
    assert identity and not identity.startswith("pastools-"), identity
    assert terminated["run_id"] == api.get(job["id"])["attempts"][-1]["run_id"]
    assert by_action["temporal.signal"]["details"] == {"signal": "nudge"}

    cancelled = api.submit("probe", new_project(), items=1000, item_ms=50)
    api.wait_running(cancelled["id"])
    api.stack.temporal.cli("workflow", "cancel", "-w", cancelled["id"])
    api.wait_for_status(cancelled["id"], "cancelled")
    actions = [e["action"] for e in timeline(api, cancelled["id"])["entries"]]
    assert actions == ["job.submit", "temporal.cancel"]


def test_a_job_started_and_reset_in_temporal_shows_both_in_its_timeline(api: JobsApi) -> None:
    project = new_project()
    job_id = f"cli-{project}"
    api.stack.temporal.cli(
        "workflow", "start", "--type", "ImportJob", "--task-queue",
        api.stack.env["PASTOOLS_TASK_QUEUE"], "--workflow-id", job_id,
        "--input", json.dumps({"project_id": project, "params": {"source": "missing.csv"}}),
    )  # fmt: skip
    recorded = wait_for(lambda: api.http.get(f"/api/jobs/{job_id}").status_code == 200)
    assert recorded, "the workflow recorded its own row"
    failed = api.wait_for_status(job_id, "failed")
    api.stack.temporal.cli(
        "workflow", "reset", "-w", job_id, "--type", "FirstWorkflowTask",
        "--reason", "try it once more",
    )  # fmt: skip

    def reset_shown() -> list[dict[str, Any]] | None:
        entries = timeline(api, job_id)["entries"]
        return entries if any(e["action"] == "temporal.reset" for e in entries) else None

    entries = wait_for(reset_shown, timeout=30, what="the reset in the timeline")
    actions = [e["action"] for e in entries]
    assert actions[0] == "temporal.start", actions
    reset = next(e for e in entries if e["action"] == "temporal.reset")
    assert reset["reason"].endswith("try it once more"), "as Temporal recorded it"
    assert reset["details"]["base_run_id"] == failed["attempts"][-1]["run_id"]


def test_a_project_token_reads_only_its_projects_entries(api: JobsApi) -> None:
    mine, theirs = api.create_project(), api.create_project()
    viewer = token_client(api.stack, "viewer", mine, "auditor")
    own = api.submit("probe", mine, items=1)
    other = api.submit("probe", theirs, items=1)

    seen = audit(viewer, limit=500)
    assert {e["project_id"] for e in seen} == {mine}
    assert own["id"] in {e["job_id"] for e in seen}
    assert audit(viewer, job_id=other["id"]) == []
    refused = viewer.get("/api/audit", params={"project_id": theirs})
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert viewer.get(f"/api/jobs/{other['id']}/timeline").status_code == 404
    assert audit(api.http, project_id=theirs, job_id=other["id"])[0]["action"] == "job.submit"


def test_pages_follow_the_cursor_and_bad_filters_are_refused(api: JobsApi) -> None:
    project = api.create_project()
    for _ in range(5):
        api.submit("probe", project, items=1)
    first = api.http.get("/api/audit", params={"project_id": project, "limit": 4}).json()
    rest = api.http.get(
        "/api/audit", params={"project_id": project, "limit": 4, "cursor": first["next_cursor"]}
    ).json()
    ids = [e["id"] for e in first["items"] + rest["items"]]
    assert len(ids) == 6 and ids == sorted(ids, reverse=True), "create, then five submits"
    assert rest["next_cursor"] is None
    assert api.http.get("/api/audit", params={"cursor": "x1"}).status_code == 422
    assert api.http.get("/api/audit", params={"action": "job.explode"}).status_code == 422
    too_long = api.http.post(
        f"/api/jobs/{first['items'][0]['job_id']}/cancel", json={"reason": "x" * 1001}
    )
    assert too_long.status_code == 422


def test_tokens_sessions_schema_changes_and_cleanup_are_recorded(api: JobsApi) -> None:
    stack = api.stack
    project = api.create_project()
    token = stack.create_token("operator", project, name="dash")
    token_id = token.split("_")[1]
    revoked_id = stack.create_token("viewer", project, name="short-lived").split("_")[1]
    assert stack.tokens("revoke", revoked_id).returncode == 0

    browser = httpx.Client(base_url=stack.url, timeout=30)
    assert browser.post("/api/session", json={"token": token}).status_code == 200
    assert browser.delete("/api/session").status_code == 204
    schema = api.http.put(f"/api/projects/{project}/schema", json={"type": "object"})
    assert schema.status_code == 200, schema.text

    job = api.wait_for_status(api.submit("probe", project, items=1)["id"], "completed")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    edit_rows(api.stack, update(Job).where(Job.id == job["id"]).values(completed_at=long_ago))
    cleanup = api.http.post("/api/jobs/cleanup", json={"older_than_days": 30})
    assert cleanup.status_code == 200 and cleanup.json()["deleted"] >= 1
    assert api.http.get(f"/api/jobs/{job['id']}").status_code == 404

    entries = audit(api.http, project_id=project, limit=500)
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "project.create",
        "token.create",
        "token.create",
        "token.revoke",
        "session.sign_in",
        "session.sign_out",
        "project.schema",
        "job.submit",
    ], "the cleaned-up job's entry stays"
    by_action = {e["action"]: e for e in entries}
    assert by_action["token.revoke"]["details"]["token_id"] == revoked_id
    assert by_action["token.revoke"]["actor"]["kind"] == "command-line"
    assert by_action["token.revoke"]["actor"]["channel"] == "cli"
    for action in ("session.sign_in", "session.sign_out"):
        assert by_action[action]["actor"]["id"] == token_id
        assert by_action[action]["actor"]["channel"] == "dashboard"
    cleaned = audit(api.http, action="jobs.cleanup")[0]
    assert cleaned["details"]["deleted"] == cleanup.json()["deleted"]
    assert cleaned["actor"]["kind"] == "token"


def test_a_job_id_used_again_after_cleanup_does_not_inherit_the_old_jobs_entries(
    api: JobsApi,
) -> None:
    """The trail outlives cleanup and the `temporal` CLI names its own workflow ids: a new
    job under an old id, in another project, shows only what was done to it."""
    job_id = f"reused-{new_project()}"

    def start_from_the_cli(project: str) -> None:
        request = {"project_id": project, "params": {"items": 1000, "item_ms": 50}}
        api.stack.temporal.cli(
            "workflow", "start", "--type", "ProbeJob", "--task-queue",
            api.stack.env["PASTOOLS_TASK_QUEUE"], "--workflow-id", job_id,
            "--input", json.dumps(request),
        )  # fmt: skip
        wait_for(lambda: api.http.get(f"/api/jobs/{job_id}").status_code == 200)

    start_from_the_cli(new_project())
    api.wait_running(job_id)
    cancel = api.http.post(f"/api/jobs/{job_id}/cancel", json={"reason": "the old one"})
    assert cancel.status_code == 202, cancel.text
    api.wait_for_status(job_id, "cancelled")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    edit_rows(api.stack, update(Job).where(Job.id == job_id).values(completed_at=long_ago))
    assert api.http.post("/api/jobs/cleanup", json={"older_than_days": 30}).status_code == 200

    start_from_the_cli(new_project())
    api.wait_running(job_id)
    actions = [e["action"] for e in timeline(api, job_id)["entries"]]
    assert actions == ["temporal.start"], "the old job's cancel is not the new job's"
    assert api.http.post(f"/api/jobs/{job_id}/cancel").status_code == 202
