"""The import activity: a source file into a project's records, batch by batch.

Each batch is committed, then its end position is heartbeated: a retried attempt resumes
after the last committed batch, and re-applying a batch whose heartbeat was lost changes
nothing. `upsert` imports write each batch into the records; `insert-only` and `replace`
ones into the job's staging area, moved into the records in one transaction at the end
(datasets/staging.py). Rows the input got wrong fail the job (naming file, line and
reason) or are skipped and counted, as the job's `on_error` says; either way they go to
the job's rejected-rows artifact, up to `max_rejected`, synced before the checkpoint
that covers them is heartbeated.
"""

import asyncio
import json
import os
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.job import current_job_run
from activities.progress import ProgressReporter
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.coercion import ColumnType
from pastools_jobs.datasets.parquet_reader import parquet_rows
from pastools_jobs.datasets.readers import (
    CsvOptions,
    Reading,
    Shaping,
    SourceDescription,
    SourceFormat,
    infer_format,
    read_batches,
)
from pastools_jobs.datasets.reading import Batch, Position, ReadLimits, RowError, SourceUnusable
from pastools_jobs.datasets.records import upsert_records
from pastools_jobs.datasets.staging import (
    Swapped,
    discard_staging,
    find_conflicts,
    open_staging,
    stage_records,
    swap_in,
)
from pastools_jobs.domain import SourceNotFound, UnsafeSource
from pastools_jobs.storage.base import ArtifactWriter
from workflows.params import ImportMode
from workflows.results import BadRow, ImportColumn, ImportResult

REJECTED_ROWS = "rejected-rows.jsonl"


class ImportWork(Work):
    """New fields default to what imports did before them, for runs begun then."""

    project_id: str
    source: str
    format: SourceFormat | None
    key_column: str | None
    csv: CsvOptions
    on_error: Literal["fail", "skip"]
    max_examples: int
    batch_rows: int
    shaping: Shaping = Shaping()
    project_types: bool = False
    """Whether the project's declared column types apply (under the import's own)."""
    mode: ImportMode = "upsert"
    max_rejected: int = 0


class ImportCheckpoint(BaseModel):
    position: dict[str, int] = Field(default_factory=dict)
    imported: int = 0
    skipped: int = 0
    examples: list[BadRow] = Field(default_factory=list)
    resumed_from_row: int = 0
    column_types: dict[str, ColumnType] | None = None
    """The declared types as the first attempt found them: a retry uses the same."""
    misfits: dict[str, int] = Field(default_factory=dict)
    first_misfits: dict[str, int] = Field(default_factory=dict)
    rejected_written: int = 0
    rejected_size: int = 0
    """Synced bytes of the rejected-rows artifact that the checkpoint covers."""
    moved: bool = False
    """The staged rows were moved, and `skipped` counts the keys the move found taken."""


class ImportActivities(ActivityGroup):
    @activity.defn(name="import_records")
    async def import_records(self, work: ImportWork) -> ImportResult:
        stream = await asyncio.to_thread(self._open, work.project_id, work.source)
        with stream:
            rejected = _Rejected(self, work.max_rejected)
            try:
                return await self._import(work, stream, rejected)
            except ApplicationError as error:
                if error.non_retryable and work.mode != "upsert":
                    await asyncio.to_thread(self._discard_staging)
                raise
            finally:
                await asyncio.to_thread(rejected.close)

    async def _import(
        self, work: ImportWork, stream: BinaryIO, rejected: "_Rejected"
    ) -> ImportResult:
        state = self.resume(work, ImportCheckpoint)
        fresh = not state.position
        declared = await asyncio.to_thread(self._declared_types, work)
        if state.column_types is None:
            state.column_types = declared
        if state.rejected_written and not await asyncio.to_thread(rejected.resume, state):
            state = ImportCheckpoint(column_types=state.column_types)  # its lines are lost
            fresh = True
        swapped = None
        if work.mode != "upsert":
            swapped = await asyncio.to_thread(self._open_staging, work.project_id, fresh)
        source_format = work.format or infer_format(work.source)
        reporter = self.reporter()
        if swapped is None:
            description, total = await self._load(work, stream, state, (reporter, rejected))
        else:
            description = await asyncio.to_thread(self._describe, work, stream, state)
            total = 1
        if work.mode != "upsert":
            swapped = swapped or await self._swap(work, state, rejected)
            if not state.moved:  # (or the attempt that moved died before heartbeating it)
                state.skipped += swapped.conflicts
            state.imported = swapped.written
            state.moved = True
        await asyncio.to_thread(rejected.finish, state)
        await reporter.report(_progress(state, total, total, state), force=True)
        return _result(work, source_format, state, description, rejected)

    async def _load(
        self,
        work: ImportWork,
        stream: BinaryIO,
        state: ImportCheckpoint,
        reporting: tuple[ProgressReporter, "_Rejected"],
    ) -> tuple[SourceDescription, int]:
        """Read the whole source into the records (or the staging area); what the reader
        found, and the source's size (bytes, or Parquet rows)."""
        reporter, rejected = reporting
        source_format = work.format or infer_format(work.source)
        state.resumed_from_row = state.position.get("rows", 0)
        try:
            total = await asyncio.to_thread(_total, stream, source_format)
            reading = await asyncio.to_thread(self._reading, work, stream, state)
            durable = state.model_copy(deep=True)
            async for batch in read_ahead(reading.batches):
                await self._apply(work, batch, state, rejected)
                state.position = vars(batch.end)
                if not rejected.pending or await asyncio.to_thread(rejected.settle, state):
                    durable = state.model_copy(deep=True)
                done = batch.end.rows if source_format == "parquet" else batch.end.offset
                await reporter.report(_progress(state, done, total, durable))
        except SourceUnusable as error:
            raise input_error(
                f"{work.source}: {error}", "SourceUnusable", source=work.source
            ) from None
        return reading.description, total

    def _reading(self, work: ImportWork, stream: BinaryIO, state: ImportCheckpoint) -> Reading:
        """The source read from the checkpoint's position on (its head sniffed and sampled
        again: the same file gives the same guesses)."""
        settings = self.context.settings
        limits = ReadLimits(
            settings.import_max_record_bytes, settings.import_batch_max_bytes, work.batch_rows
        )
        start = Position(**state.position) if state.position else Position()
        shaping = Shaping(
            work.shaping.null_values,
            state.column_types or {},
            work.shaping.infer_types,
            work.shaping.infer_rows,
        )
        source_format = work.format or infer_format(work.source)
        return read_batches(
            stream, source_format, start, work.key_column, work.csv, limits, shaping
        )

    def _describe(
        self, work: ImportWork, stream: BinaryIO, state: ImportCheckpoint
    ) -> SourceDescription:
        """What the reader finds, for the result of an attempt that found the move made
        already (its predecessor died before reporting it)."""
        try:
            return self._reading(work, stream, state).description
        except SourceUnusable:
            return SourceDescription()

    async def _apply(
        self, work: ImportWork, batch: Batch, state: ImportCheckpoint, rejected: "_Rejected"
    ) -> None:
        """Commit the batch's good rows; in `fail` mode only those before the first bad one.
        Its bad rows are synced to the artifact before the caller heartbeats past them."""
        rows = batch.rows
        first_error = batch.errors[0] if batch.errors else None
        if first_error is not None and work.on_error == "fail":
            rows = [row for row in rows if row[0] < first_error.line]
        if rows:
            await asyncio.to_thread(self._commit, work, rows)
            state.imported += len(rows)
        _count_misfits(batch, state)
        if first_error is not None and work.on_error == "fail":
            await asyncio.to_thread(rejected.write, [first_error], state)
            await asyncio.to_thread(rejected.finish, state)
            raise _bad_row(work.source, first_error, state.imported, work.mode)
        if batch.errors:
            await asyncio.to_thread(rejected.write, batch.errors, state)
        state.skipped += len(batch.errors)
        room = work.max_examples - len(state.examples)
        state.examples += [_bad(error) for error in batch.errors[:room]]

    async def _swap(
        self, work: ImportWork, state: ImportCheckpoint, rejected: "_Rejected"
    ) -> Swapped:
        """Insert-only: the staged keys the project has already are bad rows; then the
        move, in one transaction."""
        conflicts = list[tuple[int, str]]()
        if work.mode == "insert-only":  # the first ones, for the examples and the artifact
            limit = max(work.max_rejected, work.max_examples, 1)
            _, conflicts = await asyncio.to_thread(self._conflicts, work.project_id, limit)
        errors = [
            RowError(line, f"the key '{key}' exists already (insert-only)")
            for line, key in conflicts
        ]
        if errors and work.on_error == "fail":
            await asyncio.to_thread(rejected.write, errors[:1], state)
            await asyncio.to_thread(rejected.finish, state)
            raise _bad_row(work.source, errors[0], 0, work.mode)
        await asyncio.to_thread(rejected.write, errors, state)
        room = work.max_examples - len(state.examples)
        state.examples += [_bad(error) for error in errors[:room]]
        mode: Literal["replace", "insert-only"] = (
            "replace" if work.mode == "replace" else "insert-only"
        )
        return await asyncio.to_thread(self._swap_in, work.project_id, mode)

    def _commit(self, work: ImportWork, rows: list[tuple[int, str, str]]) -> None:
        with self.context.db.transaction() as session:
            connection = session.connection()
            if work.mode == "upsert":
                upsert_records(connection, work.project_id, [(k, d) for _, k, d in rows], utcnow())
            else:
                stage_records(connection, _job_id(), rows)

    def _declared_types(self, work: ImportWork) -> dict[str, ColumnType]:
        """The project's declared types under the import's own."""
        with self.context.db.transaction() as session:
            project = project_or_fail(session, work.project_id)
            types = dict(project.column_types or {}) if work.project_types else {}
        return {**types, **work.shaping.column_types}

    def _open_staging(self, project_id: str, fresh: bool) -> Swapped | None:
        with self.context.db.transaction() as session:
            return open_staging(session.connection(), _job_id(), project_id, fresh)

    def _conflicts(self, project_id: str, limit: int) -> tuple[int, list[tuple[int, str]]]:
        with self.context.db.transaction() as session:
            return find_conflicts(session.connection(), _job_id(), project_id, limit)

    def _swap_in(self, project_id: str, mode: Literal["replace", "insert-only"]) -> Swapped:
        with self.context.db.transaction() as session:
            return swap_in(session.connection(), _job_id(), project_id, mode, utcnow())

    def _discard_staging(self) -> None:
        with self.context.db.transaction() as session:
            discard_staging(session.connection(), _job_id())

    def _open(self, project_id: str, source: str) -> BinaryIO:
        """Checked again here, at open: the file may have been swapped since submission."""
        try:
            return self.context.storage.open_source(project_id, source)
        except SourceNotFound as error:
            raise input_error(str(error), "SourceNotFound", source=source) from None
        except UnsafeSource as error:
            raise input_error(str(error), "UnsafeSource", source=source) from None


class _Rejected:
    """The rejected-rows artifact, opened at the first bad row (an import without any
    has none), capped at `cap` rows. Its methods block: call them in a thread."""

    def __init__(self, group: ActivityGroup, cap: int) -> None:
        self._group = group
        self._cap = cap
        self._writer: ArtifactWriter | None = None
        self.pending = False
        """Lines written since the last checkpoint of the artifact."""
        self.finished = False

    def resume(self, state: ImportCheckpoint) -> bool:
        """Reopen the artifact at the checkpoint's size; False if its lines are lost."""
        self._writer = self._group.artifact(REJECTED_ROWS, state.rejected_size)
        return self._writer.resumed

    def write(self, errors: list[RowError], state: ImportCheckpoint) -> None:
        room = self._cap - state.rejected_written
        if room <= 0 or not errors:
            return
        if self._writer is None:
            self._writer = self._group.artifact(REJECTED_ROWS, None)
        lines = "".join(_line(error) for error in errors[:room])
        self._writer.stream.write(lines.encode())
        state.rejected_written += min(room, len(errors))
        self.pending = True

    def settle(self, state: ImportCheckpoint) -> bool:
        """Whether `state` may be heartbeated: no rejected rows wait, or they were just
        made durable (at the storage's pace: S3 only between whole parts)."""
        if not self.pending:
            return True
        assert self._writer is not None
        if not self._writer.checkpoint_due():
            return False
        state.rejected_size = self._writer.checkpoint()
        self.pending = False
        return True

    def finish(self, state: ImportCheckpoint) -> None:
        """Finish the artifact, its whole size in `state`: the final checkpoint covers
        every line, so that a retry after it (which takes the finished file back and cuts
        it to the checkpoint's size) keeps those written since the last settle."""
        if self._writer is not None and not self.finished:
            state.rejected_size = self._writer.finish()
            self.pending = False
            self.finished = True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _line(error: RowError) -> str:
    fields = {"line": error.line, "reason": error.reason}
    if error.column is not None:
        fields |= {"column": error.column, "value": error.value}
    return json.dumps(fields, ensure_ascii=False) + "\n"


def _bad(error: RowError) -> BadRow:
    return BadRow(line=error.line, reason=error.reason, column=error.column, value=error.value)


def _job_id() -> str:
    return current_job_run().job_id


def _count_misfits(batch: Batch, state: ImportCheckpoint) -> None:
    for column, line in batch.misfits:
        state.misfits[column] = state.misfits.get(column, 0) + 1
        state.first_misfits.setdefault(column, line)


def _result(
    work: ImportWork,
    source_format: SourceFormat,
    state: ImportCheckpoint,
    description: SourceDescription,
    rejected: _Rejected,
) -> ImportResult:
    columns = {
        name: ImportColumn(
            type=plan.type,
            decided=plan.decided,
            misfits=state.misfits.get(name, 0),
            first_misfit_line=state.first_misfits.get(name),
        )
        for name, plan in description.columns.items()
    }
    return ImportResult(
        source=work.source,
        format=source_format,
        imported=state.imported,
        skipped=state.skipped,
        errors=state.examples,
        resumed_from_row=state.resumed_from_row,
        mode=work.mode,
        encoding=description.encoding,
        delimiter=description.delimiter,
        quotechar=description.quotechar,
        detected=list(description.detected),
        column_types=columns,
        rejected_rows=REJECTED_ROWS if rejected.finished else None,
        rejected_written=state.rejected_written,
    )


def _bad_row(source: str, error: RowError, imported: int, mode: ImportMode) -> ApplicationError:
    written = (
        f"{imported} rows before it were imported"
        if mode == "upsert"
        else "the project's records were left as they were"
    )
    return input_error(
        f"{source} line {error.line}: {error.reason}. "
        f"{written}; set on_error to 'skip' to skip bad rows.",
        "BadRow",
        source=source,
        line=error.line,
        reason=error.reason,
        imported=imported if mode == "upsert" else 0,
    )


def _total(stream: BinaryIO, source_format: SourceFormat) -> int:
    """Bytes of a text source, rows of a Parquet file (its metadata says how many)."""
    if source_format != "parquet":
        size = stream.seek(0, os.SEEK_END)
        stream.seek(0)
        return size
    return parquet_rows(stream)


def _progress(
    state: ImportCheckpoint, done: int, total: int, durable: ImportCheckpoint
) -> Progress:
    """The progress made, with `durable` as the checkpoint: the last position whose
    rejected rows are durable in the artifact (the same as `state` while none wait)."""
    skipped = f", {state.skipped} skipped" if state.skipped else ""
    return Progress(
        done=min(done, total),
        total=total,
        message=f"Imported {state.imported} rows{skipped}",
        checkpoint=durable.model_dump(mode="json"),
    )
