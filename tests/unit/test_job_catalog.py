"""The worker registers the workflow classes, the API and the mirror know the specs: both
lists must name the same job types, or a submitted type would have no workflow."""

import dataclasses

import pytest
from temporalio.workflow import _Definition

from pastools_jobs.job_catalog import JOB_TYPES, PROBE
from pastools_jobs.job_types import JOB_WORKFLOWS, workflow_class


def test_every_job_type_has_its_workflow_and_no_other() -> None:
    registered = [(wf.spec, _Definition.must_from_class(wf).name) for wf in JOB_WORKFLOWS]
    assert registered == [(spec, spec.workflow_name) for spec in JOB_TYPES]


def test_a_spec_naming_another_types_workflow_is_refused() -> None:
    """A spec's `workflow` path and the class's `spec` must point at each other."""
    wrong = dataclasses.replace(PROBE, workflow="workflows.export_job:ExportJob")
    with pytest.raises(TypeError, match="not the JobWorkflow of the 'probe' spec"):
        workflow_class(wrong)
