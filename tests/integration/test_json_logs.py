"""`PASTOOLS_LOG_FORMAT=json`: every line the API and the worker write is one JSON object,
and a line logged for a job names it, as a log pipeline would select it."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.jobs import JobsApi, new_project
from tests.support.services import TemporalServer, start_stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def json_api(
    temporal: TemporalServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JobsApi]:
    base = tmp_path_factory.mktemp("json-logs")
    url = f"sqlite:///{base / 'jobs.sqlite3'}"
    stack = start_stack("json-logs", base, temporal, url, extra_env={"PASTOOLS_LOG_FORMAT": "json"})
    with stack.client() as client:
        yield JobsApi(client, stack)
    stack.stop()


def lines_of(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_every_line_is_json_and_a_jobs_lines_name_it(json_api: JobsApi) -> None:
    project = json_api.create_project(new_project())
    job = json_api.submit_failing_import(project)  # its activity fails: the SDK logs it
    json_api.wait_for_status(job["id"], "failed")
    worker_log = json_api.stack.base / "worker.log"

    about_the_job = wait_for(
        lambda: [line for line in lines_of(worker_log) if line.get("job_id") == job["id"]],
        what=f"a worker log line naming job {job['id']}",
    )

    assert about_the_job[0]["project_id"] == project
    assert about_the_job[0]["run_id"]
    assert {"time", "level", "logger", "message"} <= set(about_the_job[0])
    api_lines = lines_of(json_api.stack.base / "api.log")
    assert any(line["logger"] == "uvicorn.access" for line in api_lines)
