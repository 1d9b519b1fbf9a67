"""Parameters of the job types, validated at submission and again by the workflow."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pastools_jobs.paths import check_relative


class ItemsParams(BaseModel):
    """A run over a number of items, paced so that progress can be watched."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(default=100, ge=1, le=10_000_000, description="Items to process.")
    item_ms: int = Field(default=0, ge=0, le=60_000, description="Time spent on each item.")


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        min_length=1,
        max_length=1024,
        description="File to import, relative to the import directory; one item per line.",
    )
    item_ms: int = Field(default=0, ge=0, le=60_000, description="Time spent on each line.")

    @field_validator("source")
    @classmethod
    def _confined(cls, source: str) -> str:
        return check_relative(source)
