"""A project big enough that its jobs can be interrupted mid-work, shared per stack."""

import json
from typing import Any

from tests.support.jobs import JobsApi

ROWS = 120_000
TESTS = [
    {"kind": "not_null", "name": "n present", "field": "n"},
    {"kind": "unique", "name": "n unique", "field": "n"},
    {"kind": "range", "name": "n small", "field": "n", "min": 0, "max": 100_000},
    {"kind": "regex", "name": "tag shape", "field": "tag", "pattern": "^t[0-9]+$"},
]
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 100_000}}}
DATASET_JOBS: list[tuple[str, dict[str, Any]]] = [
    ("export", {"format": "jsonl", "batch_rows": 200}),
    ("validation", {"batch_rows": 100}),
    ("test_run", {}),
]
"""The jobs that read a project's records, with batches small enough to interrupt."""


class BigProject:
    """The project, its source file and the import that filled it."""

    def __init__(self, project: str, source: str, import_job: dict) -> None:
        self.id = project
        self.source = source
        self.import_job = import_job


_BIG: dict[str, BigProject] = {}


def big_project(api: JobsApi) -> BigProject:
    """One large project per stack, with a schema and tests, imported once."""
    if api.stack.name not in _BIG:
        project = api.create_project()
        lines = "".join(
            f'{{"id": "r{i:07d}", "n": {i}, "tag": "t{i % 97}"}}\n' for i in range(ROWS)
        )
        source = api.write_import(project, f"{project}.jsonl", lines)
        job = api.submit("import", project, source=source, key_column="id")
        done = api.wait_for_status(job["id"], "completed", timeout=120)
        assert done["status"] == "completed"
        assert api.http.put(f"/api/projects/{project}/schema", json=SCHEMA).status_code == 200
        assert (
            api.http.put(f"/api/projects/{project}/tests", json={"tests": TESTS}).status_code == 200
        )
        _BIG[api.stack.name] = BigProject(project, source, done)
    return _BIG[api.stack.name]


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
