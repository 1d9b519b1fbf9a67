"""Scheduled jobs end to end: Temporal Schedules made through the API, their runs as jobs
in the table, overlap policies and project scoping. The schedules are due yearly (or
paused), so every run in these tests is one a test triggered."""

import json
from typing import Any

import httpx
import pytest

from tests.support.jobs import JobsApi
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

YEARLY = ["0 3 1 1 *"]
LONG_PROBE = {"items": 600, "item_ms": 100}
"""A minute of work: still running when a test triggers its schedule again."""


def schedules_path(project: str) -> str:
    return f"/api/projects/{project}/schedules"


def create(http: httpx.Client, project: str, schedule_id: str, **fields: Any) -> dict[str, Any]:
    body = {"id": schedule_id, "type": "probe", "params": {"items": 1}, "cron": YEARLY, **fields}
    response = http.post(schedules_path(project), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def described(api: JobsApi, project: str, schedule_id: str) -> dict[str, Any]:
    """The schedule as `temporal schedule describe` shows it to an operator."""
    shown = api.stack.temporal.cli(
        "schedule",
        "describe",
        "--schedule-id",
        f"pastools-schedule/{project}/{schedule_id}",
        "-o",
        "json",
    )
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def schedule(api: JobsApi, project: str, schedule_id: str) -> dict[str, Any]:
    response = api.http.get(f"{schedules_path(project)}/{schedule_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def post(api: JobsApi, project: str, schedule_id: str, action: str, **body: Any) -> dict[str, Any]:
    path = f"{schedules_path(project)}/{schedule_id}/{action}"
    response = api.http.post(path, json=body or None)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def runs(api: JobsApi, project: str, schedule_id: str, count: int) -> list[dict[str, Any]]:
    """The schedule's runs, once Temporal lists `count` of them and each has its row."""

    def enough() -> list[dict[str, Any]] | None:
        recent: list[dict[str, Any]] = schedule(api, project, schedule_id)["recent_runs"]
        return recent if len(recent) >= count and all(r["status"] for r in recent) else None

    return wait_for(enough, what=f"{count} runs of {schedule_id}")


def test_a_schedule_in_temporal_and_its_runs_as_jobs(api: JobsApi) -> None:
    project = api.create_project()
    made = create(
        api.http, project, "nightly", time_zone="Europe/Berlin", catchup_window_seconds=60
    )
    assert made["cron"] == YEARLY and made["time_zone"] == "Europe/Berlin"
    assert made["paused"] is False and made["next_run_times"]

    listed = api.stack.temporal.cli("schedule", "list", "-o", "json")
    assert f"pastools-schedule/{project}/nightly" in listed.stdout
    api_list = wait_for(lambda: api.http.get(schedules_path(project)).json() or None, what="listed")
    assert [s["id"] for s in api_list] == ["nightly"]
    assert described(api, project, "nightly")["schedule"]["policies"]["catchupWindow"] == "60s"

    post(api, project, "nightly", "trigger")
    [run] = runs(api, project, "nightly", 1)
    job = api.wait_for_status(run["job_id"], "completed")
    assert job["schedule_id"] == "nightly" and job["project_id"] == project
    assert job["params"] == {"items": 1, "item_ms": 0, "log_every": 0}
    assert schedule(api, project, "nightly")["recent_runs"][0]["status"] == "completed"

    paused = post(api, project, "nightly", "pause", note="until the migration is done")
    assert paused["paused"] is True and paused["note"] == "until the migration is done"
    state = described(api, project, "nightly")["schedule"]["state"]
    assert state["paused"] is True and state["notes"] == "until the migration is done"
    assert post(api, project, "nightly", "unpause")["paused"] is False
    assert described(api, project, "nightly")["schedule"]["state"].get("paused") is not True

    changed = api.http.patch(
        f"{schedules_path(project)}/nightly",
        json={"interval_seconds": 86400, "overlap": "allow_all", "params": {"items": 2}},
    )
    assert changed.status_code == 200, changed.text
    edited = changed.json()
    assert edited["cron"] is None and edited["interval_seconds"] == 86400
    assert edited["overlap"] == "allow_all" and edited["params"] == {
        "items": 2,
        "item_ms": 0,
        "log_every": 0,
    }
    assert edited["time_zone"] == "Europe/Berlin" and edited["catchup_window_seconds"] == 60
    policies = described(api, project, "nightly")["schedule"]["policies"]
    assert policies["overlapPolicy"] == "SCHEDULE_OVERLAP_POLICY_ALLOW_ALL"

    assert api.http.delete(f"{schedules_path(project)}/nightly").status_code == 204
    gone = api.http.get(f"{schedules_path(project)}/nightly")
    assert gone.status_code == 404 and gone.json()["title"] == "Schedule not found"
    assert api.get(run["job_id"])["schedule_id"] == "nightly", "its jobs stay"

    audit = api.http.get("/api/audit", params={"project_id": project, "limit": 20}).json()
    actions = [entry["action"] for entry in audit["items"]]
    for action in ("create", "trigger", "pause", "unpause", "update", "delete"):
        assert f"schedule.{action}" in actions


def test_overlap_skip_starts_no_second_run_allow_all_does(api: JobsApi) -> None:
    project = api.create_project()
    create(api.http, project, "skipping", params=LONG_PROBE)
    create(api.http, project, "overlapping", params=LONG_PROBE, overlap="allow_all")
    try:
        for schedule_id in ("skipping", "overlapping"):
            post(api, project, schedule_id, "trigger")
            [first] = runs(api, project, schedule_id, 1)
            # A run's workflow id ends in its time to the second: the next trigger comes
            # a second later, or Temporal would take it for the same run.
            api.wait_running(first["job_id"], min_done=12)
            post(api, project, schedule_id, "trigger")

        skipped = wait_for(
            lambda: (s := schedule(api, project, "skipping"))["skipped_for_overlap"] and s,
            what="the second trigger skipped",
        )
        assert skipped["running"] == 1 and len(skipped["recent_runs"]) == 1
        both = runs(api, project, "overlapping", 2)
        assert len({run["job_id"] for run in both}) == 2
        assert schedule(api, project, "overlapping")["skipped_for_overlap"] == 0
    finally:
        for schedule_id in ("skipping", "overlapping"):
            for run in schedule(api, project, schedule_id)["recent_runs"]:
                api.http.post(f"/api/jobs/{run['job_id']}/cancel")


def test_schedules_are_seen_only_within_their_project(api: JobsApi) -> None:
    project, other = api.create_project(), api.create_project()
    create(api.http, project, "hourly", paused=True)
    stranger = api.stack.create_token("operator", other)
    viewer = api.stack.create_token("viewer", project)
    operator = api.stack.create_token("operator", project)
    path = f"{schedules_path(project)}/hourly"
    with api.stack.client() as http:
        http.headers["Authorization"] = f"Bearer {stranger}"
        for method, suffix in (("GET", ""), ("POST", "/trigger"), ("DELETE", "")):
            assert http.request(method, path + suffix).status_code == 404
        assert http.get(schedules_path(project)).status_code == 404
        assert http.get(schedules_path(other)).json() == []

        http.headers["Authorization"] = f"Bearer {viewer}"
        assert http.get(path).json()["paused"] is True
        assert http.post(f"{path}/trigger").status_code == 403

        http.headers["Authorization"] = f"Bearer {operator}"
        created = create(http, project, "daily", paused=True)
        assert created["paused"] is True
        assert http.post(f"{path}/unpause").json()["paused"] is False


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        ({"cron": ["61 * * * *"]}, 422, "Minute is not in range"),
        ({"cron": ["every day"]}, 422, "5-7 fields"),
        ({"time_zone": "Mars/Olympus"}, 422, "IANA time zone"),
        ({"params": {"items": 0}}, 422, "params.items"),
        ({"type": "bulk"}, 422, "not a job type a schedule can run"),
        ({"interval_seconds": 60}, 422, "not both"),
        ({"overlap": "cancel_other"}, 422, "overlap"),
        ({"catchup_window_seconds": 1}, 422, "catchup_window_seconds"),
        ({"id": "a/b"}, 422, "id"),
    ],
)
def test_bad_schedules_are_refused_saying_why(
    api: JobsApi, fields: dict[str, Any], status: int, says: str
) -> None:
    project = api.create_project()
    body = {"id": "bad", "type": "probe", "cron": YEARLY, **fields}
    response = api.http.post(schedules_path(project), json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.text
    assert api.http.get(f"{schedules_path(project)}/bad").status_code == 404


def test_a_schedule_id_is_taken_once_per_project(api: JobsApi) -> None:
    project = api.create_project()
    create(api.http, project, "once", paused=True)
    again = api.http.post(
        schedules_path(project), json={"id": "once", "type": "probe", "cron": YEARLY}
    )
    assert again.status_code == 409, again.text
    missing = api.http.post(f"{schedules_path(project)}/none/trigger")
    assert missing.status_code == 404
    assert (
        api.http.post(
            "/api/projects/nope-none/schedules", json={"id": "x", "type": "probe", "cron": YEARLY}
        ).status_code
        == 404
    )
