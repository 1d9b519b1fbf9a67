"""The worker's side of the job types: each spec's workflow class, and what to register.

The catalog (`job_catalog.JOB_TYPES`) is the one registry: this module finds the
workflow class each spec names, so a new job type is never listed twice.
"""

import importlib
from collections.abc import Iterable
from typing import Any

from activities.cleanup import CleanupActivities
from activities.context import ActivityGroup
from activities.holds import HoldActivities
from activities.mirror import MirrorActivities
from activities.slots import SlotActivities
from pastools_jobs.job_catalog import JOB_TYPES
from pastools_jobs.job_spec import JobTypeSpec
from workflows.cleanup import CleanupFinishedJobs
from workflows.lifecycle import JobWorkflow


def workflow_class(spec: JobTypeSpec[Any, Any]) -> type[JobWorkflow[Any, Any]]:
    """The class `spec.workflow` names, which must take this very spec."""
    module, _, name = spec.workflow.partition(":")
    found = getattr(importlib.import_module(module), name, None)
    if not (isinstance(found, type) and issubclass(found, JobWorkflow)) or found.spec != spec:
        raise TypeError(f"{spec.workflow} is not the JobWorkflow of the {spec.name!r} spec")
    return found


JOB_WORKFLOWS: tuple[type[JobWorkflow[Any, Any]], ...] = tuple(
    workflow_class(spec) for spec in JOB_TYPES
)


def all_workflows() -> list[type]:
    return [*JOB_WORKFLOWS, CleanupFinishedJobs]


def all_activity_groups() -> list[type[ActivityGroup]]:
    groups: Iterable[type[ActivityGroup]] = (
        group for wf in JOB_WORKFLOWS for group in wf.activity_groups
    )
    return list(
        dict.fromkeys(
            [MirrorActivities, SlotActivities, HoldActivities, CleanupActivities, *groups]
        )
    )
