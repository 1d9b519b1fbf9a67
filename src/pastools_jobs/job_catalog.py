"""The job types: what the API and the mirror need to know of each, without its workflow.

The workflow classes (and through them every activity module, with pyarrow and the
work's SQL) are the worker's business: the API builds its request and response models, starts
workflows by name and reads Temporal's records from these specs alone. Each workflow
class takes its spec, whose parameters and result models are its type arguments: mypy
sees that a workflow's `execute` takes and returns what its spec says.

A job type is one entry here, or, from a package of its own, one entry point in the group
`pastools_jobs.job_types` naming its spec: installed, it is served like these.
"""

from importlib.metadata import entry_points
from typing import Any

from pastools_jobs.job_spec import JobTypeSpec
from workflows.params import (
    BulkParams,
    ExportParams,
    ImportParams,
    ItemsParams,
    TestRunParams,
    ValidationParams,
)
from workflows.results import (
    BulkResult,
    ExportResult,
    ImportResult,
    ProbeResult,
    TestRunResult,
    ValidationResult,
)

INSTALLED_GROUP = "pastools_jobs.job_types"

ALL_PROJECTS = "*"
"""The project of a bulk job over every project (an admin's): no project's id can be it
(`PROJECT_ID_PATTERN`), and only those who see every project see it."""

IMPORT = JobTypeSpec(
    "import",
    "ImportJob",
    ImportParams,
    ImportResult,
    "Import a CSV, JSON Lines or Parquet file into the project's records.",
    "workflows.import_job:ImportJob",
)
EXPORT = JobTypeSpec(
    "export",
    "ExportJob",
    ExportParams,
    ExportResult,
    "Export the project's records to a CSV, JSON Lines or Parquet file.",
    "workflows.export_job:ExportJob",
)
VALIDATION = JobTypeSpec(
    "validation",
    "ValidationJob",
    ValidationParams,
    ValidationResult,
    "Validate the project's records against its JSON Schema.",
    "workflows.validation_job:ValidationJob",
)
TEST_RUN = JobTypeSpec(
    "test_run",
    "TestRunJob",
    TestRunParams,
    TestRunResult,
    "Run the project's data tests, one after another.",
    "workflows.test_run_job:TestRunJob",
)
PROBE = JobTypeSpec(
    "probe",
    "ProbeJob",
    ItemsParams,
    ProbeResult,
    "Process a number of items at a set pace (smoke tests, drills, benchmarks).",
    "workflows.probe_job:ProbeJob",
)


BULK = JobTypeSpec(
    "bulk",
    "BulkActionJob",
    BulkParams,
    BulkResult,
    "Cancel, retry or delete every job that matches a filter, a page at a time.",
    "workflows.bulk_job:BulkActionJob",
    submittable=False,
)


def _installed() -> tuple[JobTypeSpec[Any, Any], ...]:
    """The job types that installed packages declare in `INSTALLED_GROUP`."""
    specs = tuple(entry.load() for entry in entry_points(group=INSTALLED_GROUP))
    for spec in specs:
        if not isinstance(spec, JobTypeSpec):
            raise TypeError(f"{INSTALLED_GROUP} entry {spec!r} is not a JobTypeSpec")
    return specs


def _unique(specs: tuple[JobTypeSpec[Any, Any], ...]) -> tuple[JobTypeSpec[Any, Any], ...]:
    for field in ("name", "workflow_name"):
        values = [getattr(spec, field) for spec in specs]
        if len(set(values)) < len(values):
            raise ValueError(f"two job types share a {field}: {sorted(values)}")
    return specs


JOB_TYPES: tuple[JobTypeSpec[Any, Any], ...] = _unique(
    (IMPORT, EXPORT, VALIDATION, TEST_RUN, PROBE, BULK, *_installed())
)

SPEC_BY_TYPE: dict[str, JobTypeSpec[Any, Any]] = {spec.name: spec for spec in JOB_TYPES}
SPEC_BY_WORKFLOW_NAME: dict[str, JobTypeSpec[Any, Any]] = {
    spec.workflow_name: spec for spec in JOB_TYPES
}
