"""The worker registers the workflow classes, the API and the mirror know the specs: both
lists must name the same job types, or a submitted type would have no workflow."""

from temporalio.workflow import _Definition

from pastools_jobs.job_catalog import JOB_TYPES
from pastools_jobs.job_types import JOB_WORKFLOWS


def test_every_job_type_has_its_workflow_and_no_other() -> None:
    registered = [(wf.spec, _Definition.must_from_class(wf).name) for wf in JOB_WORKFLOWS]
    assert registered == [(spec, spec.workflow_name) for spec in JOB_TYPES]
