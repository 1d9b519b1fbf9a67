"""The registry of job types: adding one means adding its workflow class here, nothing else.

The API builds its request models, the worker its registrations and the mirror its
type mapping from this one tuple.
"""

from collections.abc import Iterable

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

JOB_WORKFLOWS: tuple[type[JobWorkflow], ...] = (
    ImportJob,
    ExportJob,
    ValidationJob,
    TestRunJob,
    ProbeJob,
)

BY_TYPE: dict[str, type[JobWorkflow]] = {wf.job_type: wf for wf in JOB_WORKFLOWS}


def workflow_name(workflow: type[JobWorkflow]) -> str:
    return str(workflow.__temporal_workflow_definition.name)  # type: ignore[attr-defined]


BY_WORKFLOW_NAME: dict[str, type[JobWorkflow]] = {workflow_name(wf): wf for wf in JOB_WORKFLOWS}


def all_workflows() -> list[type]:
    return [*JOB_WORKFLOWS, CleanupFinishedJobs]


def all_activity_groups() -> list[type[ActivityGroup]]:
    groups: Iterable[type[ActivityGroup]] = (
        group for wf in JOB_WORKFLOWS for group in wf.activity_groups
    )
    return list(dict.fromkeys([MirrorActivities, CleanupActivities, *groups]))
