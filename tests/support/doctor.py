"""`pastools doctor` run as an operator runs it: the CLI, with the stack's environment."""

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from tests.support.services import Stack


@dataclass(frozen=True)
class DoctorRun:
    exit_code: int
    report: dict[str, Any]

    def kinds(self) -> dict[str, str]:
        """Job id -> kind of difference, for the differences of single jobs."""
        return {d["job_id"]: d["kind"] for d in self.report["differences"] if d["job_id"]}

    def drifted_projects(self) -> set[str]:
        """The projects whose statistics disagree with the jobs table."""
        return {d["project_id"] for d in self.report["differences"] if d["kind"] == "count-drift"}


def doctor_command(stack: Stack, *flags: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "pastools_jobs", "doctor", *flags],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return completed


def run_doctor(stack: Stack, *flags: str) -> DoctorRun:
    completed = doctor_command(stack, "--json", *flags)
    return DoctorRun(completed.returncode, json.loads(completed.stdout))


def assert_consistent(stack: Stack) -> None:
    """What every fault scenario ends with: no difference between the table and Temporal."""
    run = run_doctor(stack)
    assert (run.exit_code, run.report["differences"]) == (0, []), run.report
