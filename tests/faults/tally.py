"""What a fault scenario reports: submitted, acknowledged, completed, lost, duplicated, stuck.

Every scenario ends by tallying its project's jobs against what its clients were told,
and the suite asserts that nothing was lost, duplicated or left stuck.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tests.support.jobs import JobsApi
from tests.support.waiting import wait_for

FINAL = {"completed", "failed", "cancelled"}


@dataclass(frozen=True)
class Tally:
    submitted: int
    acknowledged: int
    completed: int
    lost: int
    duplicated: int
    stuck: int

    def __str__(self) -> str:
        return " ".join(f"{name}={value}" for name, value in vars(self).items())


def project_jobs(api: JobsApi, project_id: str) -> list[dict[str, Any]]:
    """Every job of the project, following the cursor."""
    jobs: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"project_id": project_id, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = api.http.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        jobs.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


def tally(
    api: JobsApi,
    project_id: str,
    *,
    submitted: int,
    acknowledged: Collection[str],
    timeout: float = 120.0,
) -> Tally:
    """Wait (up to `timeout`) for the project's jobs to settle, then count.

    `acknowledged` holds the job ids the API answered with, one per submission that
    got an answer; an id answered twice (an idempotent retry) counts once.
    """

    def settled() -> list[dict[str, Any]] | None:
        jobs = project_jobs(api, project_id)
        ids = {job["id"] for job in jobs}
        if set(acknowledged) <= ids and all(job["status"] in FINAL for job in jobs):
            return jobs
        return None

    try:
        jobs = wait_for(settled, timeout=timeout, interval=0.5, what="the jobs to settle")
    except AssertionError:
        jobs = project_jobs(api, project_id)
    ids = {job["id"] for job in jobs}
    distinct = set(acknowledged)
    result = Tally(
        submitted=submitted,
        acknowledged=len(distinct),
        completed=sum(job["status"] == "completed" for job in jobs),
        lost=len(distinct - ids),
        duplicated=max(0, len(jobs) - len(distinct)),
        stuck=sum(job["status"] not in FINAL for job in jobs),
    )
    print(f"fault tally for {project_id}: {result}")
    return result


def assert_nothing_lost(result: Tally) -> None:
    assert (result.lost, result.duplicated, result.stuck) == (0, 0, 0), str(result)
