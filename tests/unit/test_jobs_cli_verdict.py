"""`pastools jobs show` states a data job's verdict on a line of its own, coloured, rather
than leaving it inside the result's JSON."""

from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from pastools_jobs.jobs_cli.render import job_detail
from pastools_jobs.jobs_cli.views import JobView


def shown(job_type: str, result: dict[str, Any]) -> dict[str, str]:
    job = JobView(
        id="j", type=job_type, project_id="p", status="completed", result=result,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    console = Console(width=200, record=True)
    console.print(job_detail(job))
    lines = [line.split(None, 1) for line in console.export_text().splitlines() if line.strip()]
    return {words[0]: words[1].strip() if len(words) > 1 else "" for words in lines}


def test_a_test_run_shows_its_overall_status_and_tally() -> None:
    result = {"tests": 3, "passed": 1, "warned": 1, "failed": 1, "status": "error"}
    assert shown("test_run", result)["verdict"] == "error (1 passed, 1 warned, 1 failed)"


def test_a_validation_shows_its_verdict_against_max_invalid() -> None:
    result = {"valid": 1, "invalid": 2, "verdict": "fail", "max_invalid": "50%"}
    assert shown("validation", result)["verdict"] == "fail (2 invalid of 3, max_invalid 50%)"


def test_a_result_from_before_verdicts_shows_none() -> None:
    assert "verdict" not in shown("validation", {"valid": 1, "invalid": 2})
    assert "verdict" not in shown("probe", {"status": "error"})
