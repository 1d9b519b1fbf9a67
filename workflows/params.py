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

from pastools_jobs.datasets.thresholds import LIMIT_GRAMMAR, parse_limit
from pastools_jobs.domain import JobStatus


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
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    encoding: str = Field(default="utf-8", max_length=40)
    on_error: Literal["fail", "skip"] = Field(
        default="fail",
        description="fail: a bad row fails the job; skip: bad rows are counted and skipped.",
    )
    max_examples: int = Field(default=20, ge=0, le=1000, description="Bad rows kept in the result.")
    batch_rows: int = Field(default=5000, ge=100, le=100_000)


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
