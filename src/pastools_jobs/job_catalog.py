"""What the API and the mirror need to know of each job type, without its workflow.

The workflow classes (and through them every activity module, with pyarrow and the
work's SQL) are the worker's business: the API builds its request models, starts
workflows by name and reads Temporal's records from these specs alone. Each workflow
class takes its name, parameters and description from its spec, so they cannot differ.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from workflows.params import (
    ExportParams,
    ImportParams,
    ItemsParams,
    TestRunParams,
    ValidationParams,
)


@dataclass(frozen=True)
class JobTypeSpec:
    name: str
    """The job type, as submitted and stored on the row."""
    workflow_name: str
    params_model: type[BaseModel]
    description: str


IMPORT = JobTypeSpec(
    "import",
    "ImportJob",
    ImportParams,
    "Import a CSV, JSON Lines or Parquet file into the project's records.",
)
EXPORT = JobTypeSpec(
    "export",
    "ExportJob",
    ExportParams,
    "Export the project's records to a CSV, JSON Lines or Parquet file.",
)
VALIDATION = JobTypeSpec(
    "validation",
    "ValidationJob",
    ValidationParams,
    "Validate the project's records against its JSON Schema.",
)
TEST_RUN = JobTypeSpec(
    "test_run", "TestRunJob", TestRunParams, "Run the project's data tests, one after another."
)
PROBE = JobTypeSpec(
    "probe",
    "ProbeJob",
    ItemsParams,
    "Process a number of items at a set pace (smoke tests, drills, benchmarks).",
)

JOB_TYPES: tuple[JobTypeSpec, ...] = (IMPORT, EXPORT, VALIDATION, TEST_RUN, PROBE)

SPEC_BY_TYPE: dict[str, JobTypeSpec] = {spec.name: spec for spec in JOB_TYPES}
SPEC_BY_WORKFLOW_NAME: dict[str, JobTypeSpec] = {spec.workflow_name: spec for spec in JOB_TYPES}
