"""Parameters of the job types, validated at submission and again by the workflow."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.thresholds import LIMIT_GRAMMAR, parse_limit
from pastools_jobs.domain import JobStatus

ImportMode = Literal["upsert", "insert-only", "replace"]


class ItemsParams(BaseModel):
    """A run over a number of items, paced so that progress can be watched."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=100, ge=1, le=10_000_000, description="Items to process.")
    item_ms: int = Field(default=0, ge=0, le=60_000, description="Time spent on each item.")
    log_every: int = Field(
        default=0,
        ge=0,
        le=10_000_000,
        description="Log one INFO line every this many items (0: none), kept in the job's log.",
    )


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1,
        max_length=1024,
        description=(
            "File to import, relative to the import directory (or an upload's source); "
            "400 if it is outside that directory or missing."
        ),
        json_schema_extra={"x-upload": True},
    )
    format: Literal["csv", "jsonl", "parquet"] | None = Field(
        default=None, description="Taken from the file's extension when not given."
    )
    key_column: str | None = Field(
        default=None,
        max_length=200,
        description="Column (or field) whose value keys each record; the row number if unset.",
    )
    delimiter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="CSV delimiter; detected among , ; tab | when not given.",
    )
    quotechar: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="CSV quote character; detected (\" or ') when not given.",
    )
    encoding: str | None = Field(
        default=None,
        max_length=40,
        description="CSV encoding; detected when not given (a BOM, else UTF-8, else cp1252).",
    )
    null_values: list[str] = Field(
        default_factory=lambda: [""],
        max_length=50,
        description='CSV values that become null: the empty field by default; add "NA", '
        '"NULL", "N/A" as the file writes its missing values. [] keeps every value.',
    )
    column_types: dict[str, ColumnType] | None = Field(
        default=None,
        max_length=1000,
        description="Column types to coerce values to, over the project's declared ones; "
        "a value that cannot be coerced is a bad row.",
    )
    infer_types: bool = Field(
        default=True,
        description="Infer the types of CSV columns given none from the first "
        "`infer_rows` rows; false keeps their values as text.",
    )
    infer_rows: int = Field(default=1000, ge=1, le=100_000)
    mode: ImportMode = Field(
        default="upsert",
        description="upsert: add or replace records by key; insert-only: a key the project "
        "has already is a bad row; replace: the project's records become exactly the "
        "file's, at once at the end (a failed import changes nothing).",
    )
    on_error: Literal["fail", "skip"] = Field(
        default="fail",
        description="fail: a bad row fails the job; skip: bad rows are counted and skipped.",
    )
    max_examples: int = Field(default=20, ge=0, le=1000, description="Bad rows kept in the result.")
    max_rejected: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Bad rows written to the job's rejected-rows.jsonl artifact.",
    )
    batch_rows: int = Field(default=5000, ge=100, le=100_000)

    @field_validator("null_values")
    @classmethod
    def _short_markers(cls, values: list[str]) -> list[str]:
        if any(len(value) > 100 for value in values):
            raise ValueError("a null marker is at most 100 characters")
        if any("\x00" in value for value in values):  # PostgreSQL refuses NUL in text
            raise ValueError("a null marker has no NUL character")
        return values

    @field_validator("column_types")
    @classmethod
    def _short_names(cls, types: dict[str, ColumnType] | None) -> dict[str, ColumnType] | None:
        if any(not name or len(name) > 200 for name in types or {}):
            raise ValueError("a column name is 1 to 200 characters")
        if any("\x00" in name for name in types or {}):  # PostgreSQL refuses NUL in text
            raise ValueError("a column name has no NUL character")
        return types


ExportColumn = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")]


class ExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "jsonl", "parquet"] = "jsonl"
    key_prefix: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^[^\x00]*$",  # PostgreSQL refuses NUL in text: refused here, on both
        description="Export only records whose key starts with exactly this (case counts).",
    )
    batch_rows: int = Field(default=5000, ge=100, le=100_000)
    columns: list[ExportColumn] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="The fields to export, in this order, after the key (which always comes "
        "first); each must be a field of some exported record. Default: every field, in name "
        "order. For JSON Lines, `data` then holds exactly these fields (null where missing).",
    )
    compression: Literal["none", "gzip", "zstd"] | None = Field(
        default=None,
        description="CSV and JSON Lines: the file's compression (export.csv.gz, "
        "export.jsonl.zst), default none. Parquet: the columns' codec, default zstd.",
    )
    row_group_rows: int | None = Field(
        default=None,
        ge=1000,
        le=500_000,
        description="Parquet only: rows per row group (the last one may hold fewer).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "ExportParams":
        if self.columns is not None:
            seen: set[str] = set()
            for name in self.columns:
                if name in seen:
                    raise ValueError(f"column {name!r} is named twice")
                seen.add(name)
        if self.row_group_rows is not None and self.format != "parquet":
            raise ValueError("row_group_rows applies to Parquet exports only")
        return self


class ValidationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    examples_per_path: int = Field(
        default=5, ge=0, le=100, description="Examples kept per failing schema path."
    )
    batch_rows: int = Field(default=5000, ge=100, le=100_000)
    max_invalid: Annotated[str, StringConstraints(max_length=20)] | StrictInt = Field(
        default=0,
        description=f"The most invalid records the verdict passes with: {LIMIT_GRAMMAR}. "
        "0: any invalid record fails it.",
    )

    @field_validator("max_invalid")
    @classmethod
    def _limit(cls, limit: str | int) -> str | int:
        parse_limit(limit)
        return limit


class TestRunParams(BaseModel):
    """A test run takes the project's test suite as it is when the job starts."""

    model_config = ConfigDict(extra="forbid")

    failing_rows_per_test: int = Field(
        default=100,
        ge=0,
        le=100_000,
        description="Failing records kept per test in `failing-rows.jsonl` (0: none).",
    )


BulkAction = Literal["cancel", "retry", "delete", "pause", "resume"]


class BulkFilter(BaseModel):
    """The jobs a bulk action applies to: the job list's filters, as a body. Every field
    narrows; none given matches every job the caller sees."""

    model_config = ConfigDict(extra="forbid")

    status: list[JobStatus] = Field(default_factory=list, max_length=20)
    type: list[str] = Field(default_factory=list, max_length=20)
    project_id: str | None = Field(default=None, max_length=200)
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = Field(default=None, max_length=200, description="Part of the job id.")
    error_type: list[str] = Field(default_factory=list, max_length=20)
    paused: bool | None = Field(default=None, description="Only paused jobs, or only the others.")
    params: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=10,
        description="Parameter filters, as the list's `param.<name>` ones: "
        '`{"format": ["parquet"], "source": ["uploads/*"]}`.',
    )


class BulkParams(BaseModel):
    """A bulk action: cancel, retry, delete, pause or resume every job that matches a
    filter."""

    model_config = ConfigDict(extra="forbid")

    action: BulkAction
    filter: BulkFilter = Field(default_factory=BulkFilter)
    reason: str | None = Field(default=None, max_length=500, description="Why, for the record.")
    page_size: int = Field(default=200, ge=10, le=1000, description="Jobs acted on per page.")
