"""A job type of a package of its own, installed beside the platform (an entry point in
`pastools_jobs.job_types`): the API takes it, documents it and the worker runs it like
the platform's own, with no edit to the platform."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jobs import JobsApi, new_project
from tests.support.services import Stack, TemporalServer, start_stack

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).parents[2]


def install_greet(site: Path) -> None:
    """What `pip install` of a package declaring the entry point leaves on the path."""
    dist_info = site / "tiny_job-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-job\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[pastools_jobs.job_types]\ngreet = tests.support.tiny_job.spec:GREET\n"
    )


@pytest.fixture(scope="module")
def greet_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobsApi]:
    base = tmp_path_factory.mktemp("greet")
    install_greet(base / "site")
    path = [str(base / "site"), str(REPOSITORY), os.environ.get("PYTHONPATH", "")]
    stack: Stack = start_stack(
        "greet",
        base,
        temporal,
        f"sqlite:///{base / 'jobs.sqlite3'}",
        extra_env={"PYTHONPATH": os.pathsep.join(filter(None, path))},
    )
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


def test_an_installed_job_type_runs_through_the_api(greet_api: JobsApi) -> None:
    project = greet_api.create_project(new_project())

    job = greet_api.submit("greet", project, name="Ada")
    done = greet_api.wait_for_status(job["id"], "completed", "failed")

    assert done["status"] == "completed", done["error"]
    assert done["result"] == {"greeting": "Hello, Ada!"}
    assert (done["progress"]["done"], done["progress"]["total"]) == (1, 1)
    assert greet_api.temporal_status(job["id"]) == "COMPLETED"


def test_an_installed_job_type_is_documented_and_validated(greet_api: JobsApi) -> None:
    schemas = greet_api.http.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["GreetParams"]["properties"]["name"]["default"] == "world"
    assert schemas["Greeting"]["properties"]["greeting"]["type"] == "string"

    refused = greet_api.http.post(
        "/api/jobs",
        json={"type": "greet", "project_id": new_project(), "params": {"name": ""}},
    )
    assert refused.status_code == 422, refused.text
