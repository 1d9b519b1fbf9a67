"""The import activity: a source file into a project's records, batch by batch.

Each batch is committed (an upsert), then its end position is heartbeated: a retried
attempt resumes after the last committed batch, and re-applying a batch whose
heartbeat was lost changes nothing. Rows the input got wrong fail the job (naming
file, line and reason) or are skipped and counted, as the job's `on_error` says.
"""

import asyncio
import os
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.parquet_reader import parquet_rows
from pastools_jobs.datasets.readers import CsvOptions, SourceFormat, infer_format, read_batches
from pastools_jobs.datasets.reading import Batch, Position, ReadLimits, RowError, SourceUnusable
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.domain import SourceNotFound, UnsafeSource
from workflows.results import BadRow, ImportResult


class ImportWork(Work):
    project_id: str
    source: str
    format: SourceFormat | None
    key_column: str | None
    csv: CsvOptions
    on_error: Literal["fail", "skip"]
    max_examples: int
    batch_rows: int


class ImportCheckpoint(BaseModel):
    position: dict[str, int] = Field(default_factory=dict)
    imported: int = 0
    skipped: int = 0
    examples: list[BadRow] = Field(default_factory=list)
    resumed_from_row: int = 0


class ImportActivities(ActivityGroup):
    @activity.defn(name="import_records")
    async def import_records(self, work: ImportWork) -> ImportResult:
        stream = await asyncio.to_thread(self._open, work.project_id, work.source)
        with stream:
            return await self._import(work, stream)

    async def _import(self, work: ImportWork, stream: BinaryIO) -> ImportResult:
        await asyncio.to_thread(self._check_project, work.project_id)
        source_format = work.format or infer_format(work.source)
        settings = self.context.settings
        limits = ReadLimits(
            settings.import_max_record_bytes, settings.import_batch_max_bytes, work.batch_rows
        )
        reporter = self.reporter()
        state = self.resume(work, ImportCheckpoint)
        start = Position(**state.position) if state.position else Position()
        state.resumed_from_row = start.rows
        try:
            total = await asyncio.to_thread(_total, stream, source_format)
            batches = read_batches(stream, source_format, start, work.key_column, work.csv, limits)
            async for batch in read_ahead(batches):
                await self._apply(work, batch, state)
                state.position = vars(batch.end)
                done = batch.end.rows if source_format == "parquet" else batch.end.offset
                await reporter.report(_progress(state, done, total))
        except SourceUnusable as error:
            raise input_error(
                f"{work.source}: {error}", "SourceUnusable", source=work.source
            ) from None
        await reporter.report(_progress(state, total, total), force=True)
        return ImportResult(
            source=work.source,
            format=source_format,
            imported=state.imported,
            skipped=state.skipped,
            errors=state.examples,
            resumed_from_row=state.resumed_from_row,
        )

    async def _apply(self, work: ImportWork, batch: Batch, state: ImportCheckpoint) -> None:
        """Commit the batch's good rows; in `fail` mode only those before the first bad one."""
        rows = batch.rows
        first_error = batch.errors[0] if batch.errors else None
        if first_error is not None and work.on_error == "fail":
            rows = [row for row in rows if row[0] < first_error.line]
        if rows:
            await asyncio.to_thread(self._commit, work.project_id, rows)
            state.imported += len(rows)
        if first_error is not None and work.on_error == "fail":
            raise _bad_row(work.source, first_error, state.imported)
        state.skipped += len(batch.errors)
        room = work.max_examples - len(state.examples)
        state.examples += [BadRow(line=e.line, reason=e.reason) for e in batch.errors[:room]]

    def _commit(self, project_id: str, rows: list[tuple[int, str, str]]) -> None:
        with self.context.db.transaction() as session:
            upsert_records(
                session.connection(), project_id, [(key, doc) for _, key, doc in rows], utcnow()
            )

    def _open(self, project_id: str, source: str) -> BinaryIO:
        """Checked again here, at open: the file may have been swapped since submission."""
        try:
            return self.context.storage.open_source(project_id, source)
        except SourceNotFound as error:
            raise input_error(str(error), "SourceNotFound", source=source) from None
        except UnsafeSource as error:
            raise input_error(str(error), "UnsafeSource", source=source) from None

    def _check_project(self, project_id: str) -> None:
        with self.context.db.transaction() as session:
            project_or_fail(session, project_id)


def _bad_row(source: str, error: RowError, imported: int) -> ApplicationError:
    return input_error(
        f"{source} line {error.line}: {error.reason}. "
        f"{imported} rows before it were imported; set on_error to 'skip' to skip bad rows.",
        "BadRow",
        source=source,
        line=error.line,
        reason=error.reason,
        imported=imported,
    )


def _total(stream: BinaryIO, source_format: SourceFormat) -> int:
    """Bytes of a text source, rows of a Parquet file (its metadata says how many)."""
    if source_format != "parquet":
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        return size
    return parquet_rows(stream)


def _progress(state: ImportCheckpoint, done: int, total: int) -> Progress:
    skipped = f", {state.skipped} skipped" if state.skipped else ""
    return Progress(
        done=min(done, total),
        total=total,
        message=f"Imported {state.imported} rows{skipped}",
        checkpoint=state.model_dump(mode="json"),
    )
