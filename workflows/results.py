"""Results of the job types: what each type's work returns, its workflow ends with, and
the API shows.

The row and the mirror's events keep a result as its JSON, so these models must read
every result a finished job holds: a field added later has a default (None when the job
ended before it existed). Data only, no activity code: the API imports this module.
"""

from typing import Literal

from pydantic import BaseModel, Field

from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.testsuite import Verdict
from pastools_jobs.datasets.thresholds import TestStatus, ValidationVerdict
from workflows.params import BulkAction, ImportMode


class BadRow(BaseModel):
    """A row an import skipped (`on_error: skip`)."""

    line: int
    reason: str
    column: str | None = Field(default=None, description="The column at fault, if one is.")
    value: str | None = Field(default=None, description="Its value as the file had it.")


class ImportColumn(BaseModel):
    """A column's type and how it was decided, so that a user can pin a guess."""

    type: ColumnType
    decided: Literal["declared", "inferred", "unset"] = Field(
        description="declared (by the import or the project), inferred from the first "
        "rows, or unset (inference off: kept as text)."
    )
    misfits: int = Field(
        default=0,
        description="Values that did not fit an inferred type, kept as their text.",
    )
    first_misfit_line: int | None = None


class ImportResult(BaseModel):
    source: str
    format: Literal["csv", "jsonl", "parquet"]
    imported: int = Field(description="Rows written, by every attempt together.")
    skipped: int = Field(description="Bad rows skipped (existing keys of insert-only included).")
    errors: list[BadRow] = Field(description="The first `max_examples` bad rows skipped.")
    resumed_from_row: int = Field(description="Where the last attempt began (0: the start).")
    mode: ImportMode = "upsert"
    encoding: str | None = Field(default=None, description="The CSV encoding read with.")
    delimiter: str | None = None
    quotechar: str | None = None
    detected: list[str] = Field(
        default_factory=list, description="Which of encoding, delimiter, quotechar were detected."
    )
    column_types: dict[str, ImportColumn] = Field(default_factory=dict)
    rejected_rows: str | None = Field(
        default=None,
        description="The JSON Lines artifact holding the bad rows (up to `max_rejected`).",
    )
    rejected_written: int = Field(default=0, description="Bad rows in that artifact.")


class ExportResult(BaseModel):
    artifact: str = Field(description="The file's name among the job's artifacts.")
    format: Literal["csv", "jsonl", "parquet"]
    compression: Literal["none", "gzip", "zstd"] = Field(
        default="none", description="The file's (Parquet: its columns') compression."
    )
    rows: int
    bytes: int


class SchemaViolation(BaseModel):
    """One failure of one invalid record: `at` is where in the record."""

    key: str
    at: str
    message: str


class PathErrors(BaseModel):
    """The invalid records' failures at one schema path: how many, and the first few."""

    path: str
    count: int = 0
    examples: list[SchemaViolation] = Field(default_factory=list)


class ValidationResult(BaseModel):
    valid: int
    invalid: int
    errors_by_path: list[PathErrors] = Field(description="The most frequent path first.")
    schema_sha256: str | None = Field(
        default=None, description="The schema checked against; None before snapshots existed."
    )
    report: str = Field(description="The JSON Lines report among the job's artifacts.")
    verdict: ValidationVerdict | None = Field(
        default=None,
        description="`pass` when `invalid` is within `max_invalid`; None before verdicts existed.",
    )
    max_invalid: str | int | None = Field(
        default=None, description="The limit the verdict was judged by."
    )


class TestRunResult(BaseModel):
    tests: int
    passed: int = Field(description="Tests whose status is `pass`.")
    warned: int = Field(default=0, description="Tests whose status is `warn`.")
    failed: int = Field(description="Tests whose status is `error`.")
    status: TestStatus | None = Field(
        default=None,
        description="The worst test's status (`pass` for none); None before thresholds existed.",
    )
    results: list[Verdict] = Field(description="Each test's verdict, in the suite's order.")
    suite_sha256: str | None = Field(
        default=None, description="The suite that ran; None before snapshots existed."
    )
    artifacts: list[str] = Field(description="The reports among the job's artifacts.")


class ProbeResult(BaseModel):
    items: int
    resumed_from: int = Field(description="The item the last attempt began at.")


class BulkFailure(BaseModel):
    """A job the bulk action could not act on, and why."""

    job_id: str
    reason: str


class BulkResult(BaseModel):
    action: BulkAction
    matched: int = Field(description="Jobs the filter matched when the action began.")
    changed: int = Field(
        description="Jobs cancelled (requested), retried, deleted, paused or resumed (requested)."
    )
    skipped: int = Field(
        description="Jobs whose status did not allow the action (finished meanwhile, say)."
    )
    failed: int = Field(description="Jobs the action failed on; the first ones in `failures`.")
    failures: list[BulkFailure] = Field(default_factory=list)
