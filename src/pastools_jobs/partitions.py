"""Partitions of a big job: what each parallel activity of one job works on.

A job over a large input is planned (by an activity: the workflow reads no database) into
partitions, each run as an ordinary work activity with its own retries and checkpoint
(`workflows/partitioned.py`); their results are merged into the job's one result. Data
only, like `contracts`: these models travel through Temporal's payloads.

Key ranges serve the jobs that read the records (validation; export and tests can plug in
the same way); byte ranges and row ranges the jobs that read a file (import: line-aligned
ranges of a CSV or JSON Lines source, whole row groups of a Parquet file, planned by
`ImportPlanning.plan_import`).
"""

from itertools import pairwise

from pydantic import BaseModel, Field


def partition_task_queue(task_queue: str) -> str:
    """The task queue of a job's partitions: served on every worker by slots of their own
    (`Settings.partition_slots`), so that a worker that is free takes the next partition."""
    return f"{task_queue}-partitions"


class KeyRange(BaseModel):
    """Records whose key is after `after_key` (excluded) up to `until_key` (included), in
    the database's key order; None on either side: from the start, to the end."""

    after_key: str | None = None
    until_key: str | None = None


class ByteRange(BaseModel):
    """The records of a text file that start at `start` (a record's first byte) or after
    it, and before `end` (the next range's start, or the file's size)."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class RowRange(BaseModel):
    """The rows of a Parquet file after its first `start` up to row `end` (rows numbered
    from 1, as their lines are): whole row groups, which a reader skips unread."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Partition(BaseModel):
    """One part of a job, given to its work activity (`Work.partition`)."""

    index: int = Field(ge=0)
    count: int = Field(ge=1, description="The job's partitions.")
    job_total: int = Field(ge=0, description="The whole job's size, for its one progress bar.")
    keys: KeyRange = Field(default_factory=KeyRange)
    bytes: ByteRange | None = None
    """A text file job's part of its source; None for a job over the records."""
    rows: RowRange | None = None
    """A Parquet file job's part of its source."""

    def artifact(self, name: str) -> str:
        """The name of this partition's part of the job's artifact `name`: parts sort in
        partition order, and are merged into `name` when every partition is done."""
        stem, dot, extension = name.rpartition(".")
        suffix = f"part-{self.index:04d}"
        return f"{stem}.{suffix}.{extension}" if dot else f"{name}.{suffix}"


class PartitionPlan(BaseModel):
    """What the planning activity decided: no partitions (a small input: one activity, as
    always) or several, and how many of them run at once."""

    partitions: list[Partition] = Field(default_factory=list)
    window: int = Field(default=1, ge=1)

    @property
    def split(self) -> bool:
        return len(self.partitions) > 1


def key_partitions(split: list[str], job_total: int) -> list[Partition]:
    """The partitions that the keys `split` (ascending) cut the records into: up to the
    first, between each two, after the last."""
    bounds: list[str | None] = [None, *split, None]
    ranges = [KeyRange(after_key=a, until_key=u) for a, u in pairwise(bounds)]
    return [
        Partition(index=i, count=len(ranges), job_total=job_total, keys=keys)
        for i, keys in enumerate(ranges)
    ]


class RecordsPlanRequest(BaseModel):
    """Plan a job over a project's records (a prefix of their keys, for an export)."""

    project_id: str
    key_prefix: str | None = None


class MergeArtifacts(BaseModel):
    """Concatenate the partitions' parts, in order, into the job's one artifact."""

    parts: list[str]
    into: str
    max_lines: int | None = None
    """Keep only the first lines (each part capped alone, the whole file to this many)."""
