"""A token sees its project only: another project's ids answer 404 exactly like ids that
do not exist, and listings, counts, the chart and the live feed leave them out."""

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.access.conftest import World, client_with
from tests.support.jobs import JobsApi
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["viewer", "operator"])
def of_b(request: pytest.FixtureRequest, world: World) -> Iterator[httpx.Client]:
    """A token of project B, which must not learn anything about project A."""
    with client_with(world.stack, world.stack.create_token(request.param, world.b.id)) as client:
        yield client


def same_answer(
    hidden: httpx.Response, missing: httpx.Response, hidden_id: str, missing_id: str
) -> None:
    assert hidden.status_code == missing.status_code == 404, (hidden.text, missing.text)
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    assert hidden.text.replace(hidden_id, "ID") == missing.text.replace(missing_id, "ID")


JOB_ROUTES = [
    ("GET", "/api/jobs/{}"),
    ("POST", "/api/jobs/{}/cancel"),
    ("POST", "/api/jobs/{}/retry"),
    ("GET", "/api/jobs/{}/artifacts"),
]


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
def test_another_projects_job_is_404_like_a_missing_one(
    world: World, of_b: httpx.Client, method: str, path: str
) -> None:
    nowhere = uuid.uuid4().hex
    same_answer(
        of_b.request(method, path.format(world.a.export_id)),
        of_b.request(method, path.format(nowhere)),
        world.a.export_id,
        nowhere,
    )


def test_another_projects_file_is_404_like_a_missing_one(world: World, of_b: httpx.Client) -> None:
    name = "export.csv"
    nowhere = uuid.uuid4().hex
    same_answer(
        of_b.get(f"/api/jobs/{world.a.export_id}/artifacts/{name}"),
        of_b.get(f"/api/jobs/{nowhere}/artifacts/{name}"),
        world.a.export_id,
        nowhere,
    )


PROJECT_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/api/projects/{}", None),
    ("GET", "/api/projects/{}/records", None),
    ("GET", "/api/projects/{}/records/1", None),
    ("PUT", "/api/projects/{}/schema", {"type": "object"}),
    ("PUT", "/api/projects/{}/tests", {"tests": []}),
    ("GET", "/api/jobs/projects/{}", None),
    ("GET", "/api/jobs/projects/{}/stats", None),
    ("GET", "/api/jobs?project_id={}", None),
    ("GET", "/api/jobs/timeseries?project_id={}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PROJECT_ROUTES)
def test_another_project_is_404_like_a_missing_one(
    world: World, of_b: httpx.Client, method: str, path: str, body: object
) -> None:
    nowhere = f"none-{uuid.uuid4().hex[:8]}"
    same_answer(
        of_b.request(method, path.format(world.a.id), json=body),
        of_b.request(method, path.format(nowhere), json=body),
        world.a.id,
        nowhere,
    )


def probes_in(world: World, project: str) -> int:
    stats = httpx.get(
        f"{world.stack.url}/api/jobs/projects/{project}/stats", headers=world.stack.auth_headers
    ).json()
    return int(stats["by_type"].get("probe", 0))


def test_submitting_to_another_project_is_404(world: World, of_b: httpx.Client) -> None:
    before = probes_in(world, world.a.id)
    response = of_b.post(
        "/api/jobs", json={"type": "probe", "project_id": world.a.id, "params": {}}
    )
    assert response.status_code == 404, response.text
    assert probes_in(world, world.a.id) == before, "a job was created in the hidden project"


def test_listings_and_counts_leave_other_projects_out(world: World, of_b: httpx.Client) -> None:
    admin = world.stack.client()
    with admin:
        b_stats = admin.get(f"/api/jobs/projects/{world.b.id}/stats").json()
        b_series = admin.get("/api/jobs/timeseries", params={"project_id": world.b.id}).json()
    listed = of_b.get("/api/jobs", params={"limit": 500}).json()["items"]
    assert {job["project_id"] for job in listed} == {world.b.id}
    assert len(listed) == b_stats["total"]
    assert of_b.get("/api/jobs/stats").json() == b_stats
    assert of_b.get("/api/jobs/timeseries").json()["buckets"] == b_series["buckets"]
    assert [p["id"] for p in of_b.get("/api/projects").json()] == [world.b.id]


def events(response: httpx.Response) -> Iterator[tuple[str, dict]]:
    """(event, data) pairs of a Server-Sent Events stream."""
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


def test_the_live_feed_shows_only_the_visible_project(world: World, of_b: httpx.Client) -> None:
    stack = world.stack
    admin = stack.client()
    seen_projects: set[str] = set()
    counts: list[dict] = []
    with admin, of_b.stream("GET", "/api/jobs/events", timeout=httpx.Timeout(30)) as feed:
        assert feed.status_code == 200
        hidden = admin.post(
            "/api/jobs", json={"type": "probe", "project_id": world.a.id, "params": {}}
        )
        wait_for(
            lambda: admin.get(f"/api/jobs/{hidden.json()['id']}").json()["status"] == "completed",
            what="the hidden project's job",
        )
        shown = admin.post(
            "/api/jobs", json={"type": "probe", "project_id": world.b.id, "params": {}}
        )
        shown_id = shown.json()["id"]
        completed = False
        for name, data in events(feed):
            if name == "stats":
                assert data["project_id"] in (world.b.id, None), data
                counts.append(data)
                # The counts of a round follow its jobs: stop at those after the completion.
                if completed and data["project_id"] is None:
                    break
            else:
                seen_projects |= {job["project_id"] for job in data["jobs"]}
                completed |= any(
                    j["id"] == shown_id and j["status"] == "completed" for j in data["jobs"]
                )
        b_stats = admin.get(f"/api/jobs/projects/{world.b.id}/stats").json()
    assert seen_projects == {world.b.id}
    overall = [c for c in counts if c["project_id"] is None]
    assert overall and overall[-1]["total"] == b_stats["total"], "'all projects' counted others"


def relationship_to(project_id: str) -> dict[str, object]:
    test = {"kind": "relationship", "name": "points", "field": "name", "to_project": project_id}
    return {"tests": [test]}


def test_a_relationship_to_another_project_is_404_like_a_missing_one(
    world: World, clients: dict[str, httpx.Client]
) -> None:
    """An operator of A who could set a test against B would learn from its verdicts
    which keys B holds."""
    operator, nowhere = clients["operator"], f"nowhere-{uuid.uuid4().hex[:8]}"
    tests = f"/api/projects/{world.a.id}/tests"
    same_answer(
        operator.put(tests, json=relationship_to(world.b.id)),
        operator.put(tests, json=relationship_to(nowhere)),
        world.b.id,
        nowhere,
    )
    assert operator.get(f"/api/projects/{world.a.id}").json()["test_suite"] is None
    assert clients["admin"].put(tests, json=relationship_to(nowhere)).status_code == 404


def test_a_relationship_is_checked_again_when_the_test_runs(
    world: World, clients: dict[str, httpx.Client]
) -> None:
    """An admin may point A's tests at B; an operator of A who runs them learns nothing
    of B: the run fails as if B did not exist, while the admin's own run reads B."""
    tests = f"/api/projects/{world.a.id}/tests"
    assert clients["admin"].put(tests, json=relationship_to(world.b.id)).status_code == 200
    by_operator = JobsApi(clients["operator"], world.stack)
    by_admin = JobsApi(clients["admin"], world.stack)

    refused = by_operator.submit("test_run", world.a.id)["id"]
    failed = by_operator.wait_for_status(refused, "failed", "completed")
    admins = by_admin.wait_for_status(by_admin.submit("test_run", world.a.id)["id"], "completed")

    assert failed["status"] == "failed", failed
    assert failed["error"]["type"] == "ProjectNotFound"
    assert failed["error"]["message"] == f"There is no project '{world.b.id}'."
    assert failed["result"] is None
    assert admins["result"]["results"][0]["name"] == "points"
    retried = clients["operator"].post(f"/api/jobs/{refused}/retry")
    assert retried.status_code == 200, retried.text
    again = by_operator.wait_for_job(
        refused, lambda job: job["attempt"] == 2 and job["status"] == "failed", what="refused"
    )
    assert again["error"]["type"] == "ProjectNotFound"
    assert clients["admin"].put(tests, json={"tests": []}).status_code == 200
