"""What the API and the mirror need to know of each job type, without its workflow.

The workflow classes (and through them every activity module, with pyarrow and the
work's SQL) are the worker's business: the API builds its request and response models, starts
workflows by name and reads Temporal's records from these specs alone. Each workflow
class takes its spec, whose parameters and result models are its type arguments: mypy
sees that a workflow's `execute` takes and returns what its spec says.
"""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from workflows.params import (
    ExportParams,
    ImportParams,
    ItemsParams,
    TestRunParams,
    ValidationParams,
)
from workflows.results import (
    ExportResult,
    ImportResult,
    ProbeResult,
    TestRunResult,
    ValidationResult,
)

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class JobTypeSpec(Generic[P, R]):
    name: str
    """The job type, as submitted and stored on the row."""
    workflow_name: str
    params_model: type[P]
    result_model: type[R]
    """What a completed job of this type returns; the row keeps it as its JSON."""
    description: str


IMPORT = JobTypeSpec(
    "import",
    "ImportJob",
    ImportParams,
    ImportResult,
    "Import a CSV, JSON Lines or Parquet file into the project's records.",
)
EXPORT = JobTypeSpec(
    "export",
    "ExportJob",
    ExportParams,
    ExportResult,
    "Export the project's records to a CSV, JSON Lines or Parquet file.",
)
VALIDATION = JobTypeSpec(
    "validation",
    "ValidationJob",
    ValidationParams,
    ValidationResult,
    "Validate the project's records against its JSON Schema.",
)
TEST_RUN = JobTypeSpec(
    "test_run",
    "TestRunJob",
    TestRunParams,
    TestRunResult,
    "Run the project's data tests, one after another.",
)
PROBE = JobTypeSpec(
    "probe",
    "ProbeJob",
    ItemsParams,
    ProbeResult,
    "Process a number of items at a set pace (smoke tests, drills, benchmarks).",
)

JOB_TYPES: tuple[JobTypeSpec[Any, Any], ...] = (IMPORT, EXPORT, VALIDATION, TEST_RUN, PROBE)

SPEC_BY_TYPE: dict[str, JobTypeSpec[Any, Any]] = {spec.name: spec for spec in JOB_TYPES}
SPEC_BY_WORKFLOW_NAME: dict[str, JobTypeSpec[Any, Any]] = {
    spec.workflow_name: spec for spec in JOB_TYPES
}
