"""The registry of job types: adding one means adding its workflow class here, nothing else.

The worker builds its registrations from this one tuple; the API and the mirror need
only the job types' specs (`job_catalog`), which each workflow class takes its name,
parameters and description from.
"""

from collections.abc import Iterable
from typing import Any

from activities.cleanup import CleanupActivities
from activities.context import ActivityGroup
from activities.mirror import MirrorActivities
from workflows.cleanup import CleanupFinishedJobs
from workflows.export_job import ExportJob
from workflows.import_job import ImportJob
from workflows.lifecycle import JobWorkflow
from workflows.probe_job import ProbeJob
from workflows.test_run_job import TestRunJob
from workflows.validation_job import ValidationJob

JOB_WORKFLOWS: tuple[type[JobWorkflow[Any, Any]], ...] = (
    ImportJob,
    ExportJob,
    ValidationJob,
    TestRunJob,
    ProbeJob,
)


def all_workflows() -> list[type]:
    return [*JOB_WORKFLOWS, CleanupFinishedJobs]


def all_activity_groups() -> list[type[ActivityGroup]]:
    groups: Iterable[type[ActivityGroup]] = (
        group for wf in JOB_WORKFLOWS for group in wf.activity_groups
    )
    return list(dict.fromkeys([MirrorActivities, CleanupActivities, *groups]))
