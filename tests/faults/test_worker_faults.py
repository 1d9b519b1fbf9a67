"""SIGKILL of the worker in the middle of an import, an export, a validation and a test
run, all at once; after a restart every job ends as an uninterrupted run does."""

from typing import Any

import pytest

from tests.faults.tally import assert_nothing_lost, tally
from tests.support.datasets import DATASET_JOBS, ROWS, big_project, work_attempts
from tests.support.doctor import assert_consistent
from tests.support.jobs import JobsApi

pytestmark = pytest.mark.integration


def without_resume_point(result: dict[str, Any]) -> dict[str, Any]:
    """An import's result names the row it resumed from; everything else must match."""
    return {key: value for key, value in result.items() if key != "resumed_from_row"}


def assert_same_artifacts(api: JobsApi, reference: str, job: str) -> None:
    for artifact in api.http.get(f"/api/jobs/{reference}/artifacts").json():
        before = api.http.get(artifact["url"]).content
        after = api.http.get(f"/api/jobs/{job}/artifacts/{artifact['name']}").content
        assert after == before, f"{artifact['name']} differs after the crash"


def test_worker_killed_mid_work_finishes_with_the_same_results(fault_api: JobsApi) -> None:
    api = fault_api
    big = big_project(api)
    references = {kind: api.submit(kind, big.id, **params)["id"] for kind, params in DATASET_JOBS}
    expected = {
        kind: api.wait_for_status(job_id, "completed", timeout=120)
        for kind, job_id in references.items()
    }
    target = api.create_project()
    with api.stack.storage.open_source(big.id, big.source) as source:
        api.write_import(target, big.source, source.read())  # each project reads its own
    jobs = {
        "import": api.submit("import", target, source=big.source, key_column="id", batch_rows=100)[
            "id"
        ]
    }
    jobs |= {kind: api.submit(kind, big.id, **params)["id"] for kind, params in DATASET_JOBS}
    for job_id in jobs.values():
        api.wait_running(job_id)
    api.wait_checkpointed(jobs["import"])

    api.stack.kill_worker()
    api.stack.start_worker()

    done = {
        kind: api.wait_for_status(job_id, "completed", "failed", timeout=120)
        for kind, job_id in jobs.items()
    }
    for kind, job in done.items():
        assert job["status"] == "completed", (kind, job["error"])
        assert work_attempts(api, job["id"]) >= 2, f"the kill did not interrupt the {kind}"
    imported = done["import"]["result"]
    assert without_resume_point(imported) == without_resume_point(big.import_job["result"])
    assert imported["resumed_from_row"] > 0
    assert api.http.get(f"/api/projects/{target}").json()["records"] == ROWS
    for kind, reference in references.items():
        assert done[kind]["result"] == expected[kind]["result"], kind
        assert_same_artifacts(api, reference, jobs[kind])

    dataset_jobs = [big.import_job["id"], *references.values(), *list(jobs.values())[1:]]
    assert_nothing_lost(tally(api, big.id, submitted=7, acknowledged=dataset_jobs))
    assert_nothing_lost(tally(api, target, submitted=1, acknowledged=[jobs["import"]]))
    assert_consistent(api.stack)
