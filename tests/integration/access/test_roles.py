"""Each role may do exactly its actions, on every route: REST, downloads, the live feed."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.access.conftest import World

pytestmark = pytest.mark.integration

ROLES = ["viewer", "operator", "admin"]
RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    path: str
    needs: str
    """The least role allowed to do it."""
    body: dict[str, Any] | None = None
    files: dict[str, Any] | None = None


def actions(world: World) -> list[Action]:
    a = world.a
    export_file = f"/api/jobs/{a.export_id}/artifacts/export.csv"
    probe = {"type": "probe", "project_id": a.id, "params": {"items": 1}}
    nothing = {"action": "cancel", "filter": {"project_id": a.id, "q": "matches-no-job"}}
    return [
        Action("list", "GET", "/api/jobs", "viewer"),
        Action("get", "GET", f"/api/jobs/{a.export_id}", "viewer"),
        Action("artifacts", "GET", f"/api/jobs/{a.export_id}/artifacts", "viewer"),
        Action("download", "GET", export_file, "viewer"),
        Action("stats", "GET", "/api/jobs/stats", "viewer"),
        Action("project stats", "GET", f"/api/jobs/projects/{a.id}/stats", "viewer"),
        Action("project jobs", "GET", f"/api/jobs/projects/{a.id}", "viewer"),
        Action("timeseries", "GET", "/api/jobs/timeseries", "viewer"),
        Action("projects", "GET", "/api/projects", "viewer"),
        Action("project", "GET", f"/api/projects/{a.id}", "viewer"),
        Action("records", "GET", f"/api/projects/{a.id}/records", "viewer"),
        Action("record", "GET", f"/api/projects/{a.id}/records/1", "viewer"),
        Action("submit", "POST", "/api/jobs", "operator", body=probe),
        # A completed job cannot be cancelled: 409 means the role was let through.
        Action("cancel", "POST", f"/api/jobs/{a.export_id}/cancel", "operator"),
        # Nor retried; the failed import could be, but is kept for other tests.
        Action("retry", "POST", f"/api/jobs/{a.export_id}/retry", "operator"),
        Action(
            "schema", "PUT", f"/api/projects/{a.id}/schema", "operator", body={"type": "object"}
        ),
        Action("tests", "PUT", f"/api/projects/{a.id}/tests", "operator", body={"tests": []}),
        Action(
            "upload",
            "POST",
            f"/api/projects/{a.id}/uploads",
            "operator",
            files={"file": ("x.csv", b"id\n1\n")},
        ),
        Action("bulk preview", "POST", "/api/jobs/bulk/preview", "operator", body=nothing),
        Action("bulk cancel", "POST", "/api/jobs/bulk", "operator", body=nothing),
        Action(
            "bulk delete preview",
            "POST",
            "/api/jobs/bulk/preview",
            "admin",
            body={**nothing, "action": "delete"},
        ),
        Action("cleanup", "POST", "/api/jobs/cleanup", "admin", body={"older_than_days": 3650}),
        Action(
            "create project",
            "POST",
            "/api/projects",
            "admin",
            body={"id": f"new-{uuid.uuid4().hex[:8]}"},
        ),
    ]


def send(client: httpx.Client, action: Action) -> httpx.Response:
    return client.request(action.method, action.path, json=action.body, files=action.files)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_its_actions(
    world: World, clients: dict[str, httpx.Client], role: str
) -> None:
    wrong = []
    for action in actions(world):
        response = send(clients[role], action)
        allowed = RANK[role] >= RANK[action.needs]
        ok = (
            response.status_code in (200, 201, 202, 409) if allowed else response.status_code == 403
        )
        if not ok:
            wrong.append(f"{action.name}: {response.status_code} {response.text[:200]}")
        if not allowed:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert not wrong, f"{role}: " + "; ".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_the_live_feed(
    world: World, clients: dict[str, httpx.Client], role: str
) -> None:
    with clients[role].stream("GET", "/api/jobs/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")


def test_a_retry_by_an_operator_runs_the_job_again(
    world: World, clients: dict[str, httpx.Client]
) -> None:
    job_url = f"/api/jobs/{world.a.failed_id}"
    before = clients["operator"].get(job_url).json()
    response = clients["operator"].post(f"{job_url}/retry")
    assert response.status_code == 200, response.text
    retried = response.json()
    # The new run may already have failed as the first did (its file is empty): the
    # answer says how the job stands, one attempt further on.
    assert retried["attempt"] == before["attempt"] + 1
    assert retried["status"] in ("queued", "running", "failed")
    assert retried["attempts"][-2]["status"] == "failed"
