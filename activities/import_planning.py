"""Planning a big import into partitions: line-aligned byte ranges of a text source,
whole row groups of a Parquet file.

Only a source with a key column and more than `partition_bytes` of data is split: a CSV
or JSON Lines file in an ASCII-compatible encoding by its size, a Parquet file of several
row groups by its row groups' sizes uncompressed, from its footer (its file size counts
its data compressed, a fraction of what a partition decodes). Anything else (a small
file, row numbers as keys, UTF-16) plans nothing and runs as one activity exactly as
before. A source the plan cannot read plans nothing too, so that the one activity fails
on it the usual way.

What the single activity decides at its start is decided here once and handed to every
partition: the encoding, delimiter and quote character (detected or given), and the
declared types (the project's under the import's own, as they are now). Inferred types
come from the file's first rows, which every partition reads alike. The plan also opens
the job's staging area, empty, that the partitions fill.
"""

from dataclasses import replace
from itertools import pairwise
from typing import BinaryIO

from pydantic import BaseModel, Field
from temporalio import activity

from activities.context import ActivityGroup
from activities.errors import project_or_fail
from activities.importing import ImportWork
from activities.job import current_job_run
from activities.progress import heartbeating
from pastools_jobs.datasets.cuts import line_cuts
from pastools_jobs.datasets.lines import text_encoding
from pastools_jobs.datasets.parquet_reader import row_group_cuts
from pastools_jobs.datasets.readers import CsvOptions, SourceFormat, infer_format, read_batches
from pastools_jobs.datasets.reading import Position, ReadLimits, SourceUnusable
from pastools_jobs.datasets.staging import reset_staging
from pastools_jobs.domain import SourceNotFound, UnsafeSource
from pastools_jobs.partitions import ByteRange, Partition, PartitionPlan, RowRange


class ImportPlan(BaseModel):
    """No partitions, or the partitions and the work each is given (its options resolved)."""

    plan: PartitionPlan = Field(default_factory=PartitionPlan)
    work: ImportWork | None = None
    detected: list[str] = Field(default_factory=list)
    """Which CSV options were detected, for the result (the partitions are given them)."""


class ImportPlanning(ActivityGroup):
    @activity.defn(name="plan_import")
    async def plan_import(self, work: ImportWork) -> ImportPlan:
        return await heartbeating(
            lambda _stop: self._plan(work), self.context.settings.heartbeat_interval_seconds
        )

    def _plan(self, work: ImportWork) -> ImportPlan:
        source_format = work.format or infer_format(work.source)
        if work.key_column is None:
            return ImportPlan()
        try:
            stream = self.context.storage.open_source(work.project_id, work.source)
        except (SourceNotFound, UnsafeSource):
            return ImportPlan()
        if source_format == "parquet":
            with stream:
                return self._plan_row_groups(work, stream, work.key_column)
        with stream:
            size = stream.seek(0, 2)
            every = self.context.settings.partition_bytes
            if size <= every:
                return ImportPlan()
            resolved = self._resolve(work, stream, source_format)
            if resolved is None:
                return ImportPlan()
            quote = resolved.csv.quotechar if source_format == "csv" else None
            cuts = line_cuts(stream, size, every, quote.encode("ascii") if quote else None)
        if not cuts:
            return ImportPlan()
        bounds = [0, *cuts, size]
        partitions = [
            Partition(index=i, count=len(cuts) + 1, job_total=size, bytes=ByteRange(start=a, end=b))
            for i, (a, b) in enumerate(pairwise(bounds))
        ]
        detected = []
        if source_format == "csv":
            detected = [name for name, value in vars(work.csv).items() if value is None]
        return self._split(work, resolved, partitions, detected)

    def _plan_row_groups(self, work: ImportWork, stream: BinaryIO, key_column: str) -> ImportPlan:
        """A Parquet file: partitions of whole row groups, numbered by their rows (each row
        staged with its number, the last in file order wins)."""
        bounds = row_group_cuts(stream, self.context.settings.partition_bytes, key_column)
        if not bounds:
            return ImportPlan()
        resolved = self._typed(work)
        partitions = [
            Partition(
                index=i, count=len(bounds) - 1, job_total=bounds[-1], rows=RowRange(start=a, end=b)
            )
            for i, (a, b) in enumerate(pairwise(bounds))
        ]
        return self._split(work, resolved, partitions, [])

    def _split(
        self,
        work: ImportWork,
        resolved: ImportWork,
        partitions: list[Partition],
        detected: list[str],
    ) -> ImportPlan:
        """The plan of `partitions`, with the job's staging area opened, empty."""
        with self.context.db.transaction() as session:
            job = current_job_run()
            reset_staging(session.connection(), job.job_id, job.run_id, work.project_id)
        plan = PartitionPlan(partitions=partitions, window=self.context.settings.partition_window)
        return ImportPlan(plan=plan, work=resolved, detected=detected)

    def _resolve(
        self, work: ImportWork, stream: BinaryIO, source_format: SourceFormat
    ) -> ImportWork | None:
        """The work every partition of a text file is given: the options detected, the
        types declared now; None when the source cannot be split (or read)."""
        typed = self._typed(work)
        if source_format != "csv":
            return typed
        settings = self.context.settings
        limits = ReadLimits(
            settings.import_max_record_bytes, settings.import_batch_max_bytes, work.batch_rows
        )
        try:
            reading = read_batches(
                stream, "csv", Position(), work.key_column, work.csv, limits, typed.shaping
            )
            found = reading.description
            if found.encoding is None or found.quotechar is None or found.delimiter is None:
                return None
            if text_encoding(stream, found.encoding).newline != b"\n":
                return None
            if len(found.quotechar.encode(found.encoding)) != 1 or not found.quotechar.isascii():
                return None
        except (SourceUnusable, LookupError):
            return None
        options = CsvOptions(found.delimiter, found.quotechar, found.encoding)
        return typed.model_copy(update={"csv": options})

    def _typed(self, work: ImportWork) -> ImportWork:
        """The work with the types declared now, the project's under the import's own:
        every partition applies the same, whatever the project declares meanwhile."""
        with self.context.db.transaction() as session:
            project = project_or_fail(session, work.project_id)
            types = dict(project.column_types or {}) if work.project_types else {}
        declared = {**types, **work.shaping.column_types}
        shaping = replace(work.shaping, column_types=declared)
        return work.model_copy(update={"shaping": shaping, "project_types": False})
