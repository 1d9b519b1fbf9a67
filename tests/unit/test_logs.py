"""JSON log lines name what they are about; a request's id follows it into the log."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pastools_jobs.api.app import create_app
from pastools_jobs.config import Settings
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.logs import JOB_ID, PROJECT_ID, JsonLines
from tests.integration.test_api_errors import write_row
from tests.support.services import free_port


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, through the JSON formatter."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonLines())
    logging.getLogger().addHandler(handler)
    yield lines
    logging.getLogger().removeHandler(handler)


def test_a_json_line_carries_the_context_it_was_logged_in(json_lines: io.StringIO) -> None:
    job, project = JOB_ID.set("job-1"), PROJECT_ID.set("demo")
    try:
        try:
            raise ValueError("bad row")
        except ValueError:
            logging.getLogger("pastools_jobs.test").exception("import of %s failed", "x.csv")
    finally:
        JOB_ID.reset(job)
        PROJECT_ID.reset(project)

    line = json.loads(json_lines.getvalue().splitlines()[-1])
    assert line["level"] == "ERROR"
    assert line["logger"] == "pastools_jobs.test"
    assert line["message"] == "import of x.csv failed"
    assert (line["job_id"], line["project_id"]) == ("job-1", "demo")
    assert "run_id" not in line and "request_id" not in line
    assert line["time"].endswith("Z")
    assert "ValueError: bad row" in line["exception"]


def test_a_request_id_is_answered_and_names_what_was_logged_for_it(
    json_lines: io.StringIO, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(url)
    write_row(url, id="odd", status="bogus")  # a row the API fails to read: it logs why
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        temporal_address=f"127.0.0.1:{free_port()}",
        migrate_on_start=False,
        mirror_enabled=False,
        auth_enabled=False,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        failed = client.get("/api/jobs/odd", headers={"X-Request-ID": "req-42"})
        fresh = client.get("/healthz", headers={"X-Request-ID": "not sane\n"})

    assert (failed.status_code, failed.headers["X-Request-ID"]) == (500, "req-42")
    logged = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert any(line.get("request_id") == "req-42" and line["level"] == "ERROR" for line in logged)
    assert len(fresh.headers["X-Request-ID"]) == 32  # a new one, not the caller's
