"""The import activity: a source file into a project's records, batch by batch.

Each batch is committed, then its end position is heartbeated: a retried attempt resumes
after the last committed batch, and re-applying a batch whose heartbeat was lost changes
nothing. `upsert` imports write each batch into the records; `insert-only` and `replace`
ones into the job's staging area, moved into the records in one transaction at the end
(datasets/staging.py). Rows the input got wrong fail the job (naming file, line and
reason) or are skipped and counted, as the job's `on_error` says; either way they go to
the job's rejected-rows artifact, up to `max_rejected`, synced before the checkpoint
that covers them is heartbeated.

A big import runs as partitions (`workflows/import_job.py`), each reading one byte range
of a text file (`Partition.bytes`) or whole row groups of a Parquet file
(`Partition.rows`) into the staging area whatever the mode; after all of
them, `move_staged` moves the staged rows in one transaction, as the mode says. A
failed partition leaves the records as they were: the workflow discards the staging.
"""

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, BinaryIO, Literal, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.job import current_job_run
from activities.progress import ProgressReporter, heartbeating
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
from pastools_jobs.datasets.records import has_records, upsert_records
from pastools_jobs.datasets.staging import (
    StagedMode,
    Swapped,
    clear_swapped,
    discard_staging,
    find_conflicts,
    open_staging,
    stage_records,
    swap_in,
)
from pastools_jobs.domain import SourceNotFound, UnsafeSource
from pastools_jobs.partitions import Partition
from pastools_jobs.storage.base import ArtifactWriter
from workflows.params import ImportMode
from workflows.results import BadRow, ImportColumn, ImportResult
from workflows.shielding import uncancel, uncancellable

T = TypeVar("T")

log = logging.getLogger(__name__)

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
    partition: Partition | None = None
    """The byte range or Parquet rows this activity stages; None: the whole file."""


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
    @activity.defn(name="move_staged_import")
    async def move_staged(self, work: ImportWork) -> ImportResult:
        """After a partitioned import's partitions: the staged rows into the records, in
        one transaction, as the mode says (insert-only's existing keys are bad rows, in
        the last part of the rejected-rows artifact). A cancel stops it before that
        transaction; once it has begun, the activity runs to its end (see `_end`)."""
        state = ImportCheckpoint()
        count = work.partition.count if work.partition else 0
        rejected = _Rejected(self, work.max_rejected, _rejected_name(_after(count)))
        try:
            await self._find_conflicts(work, state, rejected)
        except BaseException:
            await asyncio.to_thread(rejected.close)
            raise
        return await uncancellable(self._moved(work, state, rejected))

    async def _moved(
        self, work: ImportWork, state: ImportCheckpoint, rejected: "_Rejected"
    ) -> ImportResult:
        try:
            swapped = await self._swap(work)
            await asyncio.to_thread(rejected.finish, state)
        finally:
            await asyncio.to_thread(rejected.close)
        state.skipped += swapped.conflicts
        state.imported = swapped.written
        source_format = work.format or infer_format(work.source)
        return _result(work, source_format, state, SourceDescription(), rejected)

    @activity.defn(name="discard_staged_import")
    async def discard_staged(self, work: ImportWork) -> None:
        """A failed or cancelled partitioned import's staged rows, once no partition runs."""
        await self._heartbeating(lambda _stop: self._discard_staging())

    @activity.defn(name="import_records")
    async def import_records(self, work: ImportWork) -> ImportResult:
        stream = await asyncio.to_thread(self._open, work.project_id, work.source)
        with stream:
            rejected = _Rejected(self, work.max_rejected, _rejected_name(work.partition))
            try:
                return await self._import(work, stream, rejected)
            except ApplicationError as error:
                if error.non_retryable and work.mode != "upsert" and work.partition is None:
                    await self._heartbeating(lambda _stop: self._discard_staging())
                raise
            finally:
                if rejected.is_open:  # (the end of the import closed it, shielded)
                    await asyncio.to_thread(rejected.close)

    async def _import(
        self, work: ImportWork, stream: BinaryIO, rejected: "_Rejected"
    ) -> ImportResult:
        state = self.resume(work, ImportCheckpoint)
        fresh = not state.position
        direct = work.mode == "upsert" and work.partition is None
        whole = work.partition is None
        declared = await asyncio.to_thread(self._declared_types, work)
        if state.column_types is None:
            state.column_types = declared
        if state.rejected_written and not await asyncio.to_thread(rejected.resume, state):
            state = ImportCheckpoint(column_types=state.column_types)  # its lines are lost
            fresh = True
        swapped = None
        reporter = self.reporter(work.partition)
        if not direct and whole:  # a partition's staging was opened by the plan
            swapped = await self._open_staging(work.project_id, fresh, reporter)
        loaded = None
        if swapped is None:
            loaded = await self._load(work, stream, state, (reporter, rejected))
            if not direct and whole:
                await self._find_conflicts(work, state, rejected, reporter.checkpoint)
        return await uncancellable(
            self._end(work, stream, (state, rejected, reporter), swapped, loaded)
        )

    async def _end(
        self,
        work: ImportWork,
        stream: BinaryIO,
        run: tuple[ImportCheckpoint, "_Rejected", ProgressReporter],
        swapped: Swapped | None,
        loaded: tuple[SourceDescription, int, int] | None,
    ) -> ImportResult:
        """The end of an import activity, run to its end whatever cancel arrives: the move
        of a staged import in one activity (once its transaction has begun, a cancel comes
        too late: the job completes and says what it wrote, rather than a cancelled job
        whose records changed all the same), and the final report. Not `loaded`: an
        earlier attempt made the move (`swapped`), and may have left moved rows to clear."""
        state, rejected, reporter = run
        if loaded is None:
            await reporter.in_thread(self._clear_swapped)
            loaded = await asyncio.to_thread(self._describe, work, stream, state), 1, 1
        description, done, total = loaded
        if work.partition is None and work.mode != "upsert":
            swapped = swapped or await self._swap(work, reporter.checkpoint)
            if not state.moved:  # (or the attempt that moved died before heartbeating it)
                state.skipped += swapped.conflicts
            state.imported = swapped.written
            state.moved = True
        await asyncio.to_thread(rejected.finish, state)
        await reporter.report(_progress(state, done, total, state), force=True)
        await asyncio.to_thread(rejected.close)
        source_format = work.format or infer_format(work.source)
        return _result(work, source_format, state, description, rejected)

    async def _load(
        self,
        work: ImportWork,
        stream: BinaryIO,
        state: ImportCheckpoint,
        reporting: tuple[ProgressReporter, "_Rejected"],
    ) -> tuple[SourceDescription, int, int]:
        """Read the whole source (or the partition's byte range) into the records (or the
        staging area); what the reader found, how far this activity got at the end, and
        the job's size (bytes, or Parquet rows): a partition counts its own bytes."""
        reporter, rejected = reporting
        source_format = work.format or infer_format(work.source)
        state.resumed_from_row = state.position.get("rows", 0)
        span = _span(work.partition)
        begin = span[0] if span else 0
        try:
            total = await asyncio.to_thread(_total, stream, source_format)
            if work.partition is not None:
                total = work.partition.job_total
            reading = await asyncio.to_thread(self._reading, work, stream, state)
            unseen = await asyncio.to_thread(self._unseen, work)
            durable = state.model_copy(deep=True)
            end = Position(**state.position) if state.position else _start(work.partition)
            async for batch in read_ahead(reading.batches):
                unseen = await self._apply(work, batch, state, (rejected, unseen))
                state.position = vars(batch.end)
                end = batch.end
                if not rejected.pending or await asyncio.to_thread(rejected.settle, state):
                    durable = state.model_copy(deep=True)
                done = batch.end.rows if source_format == "parquet" else batch.end.offset
                await reporter.report(_progress(state, done - begin, total, durable))
        except SourceUnusable as error:
            raise input_error(
                f"{work.source}: {error}", "SourceUnusable", source=work.source
            ) from None
        part = work.partition.bytes if work.partition else None
        if part is not None and end.offset != part.end:
            raise _split_inside(work.source, part.end, end.line)
        return reading.description, (span[1] - span[0] if span else total), total

    def _reading(self, work: ImportWork, stream: BinaryIO, state: ImportCheckpoint) -> Reading:
        """The source read from the checkpoint's position on (its head sniffed and sampled
        again: the same file gives the same guesses)."""
        settings = self.context.settings
        limits = ReadLimits(
            settings.import_max_record_bytes, settings.import_batch_max_bytes, work.batch_rows
        )
        part = work.partition
        start = Position(**state.position) if state.position else _start(part)
        shaping = Shaping(
            work.shaping.null_values,
            state.column_types or {},
            work.shaping.infer_types,
            work.shaping.infer_rows,
        )
        source_format = work.format or infer_format(work.source)
        return read_batches(
            stream,
            source_format,
            start,
            work.key_column,
            work.csv,
            limits,
            shaping,
            part.bytes.end if part and part.bytes else None,
            part.rows.end if part and part.rows else None,
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
        self,
        work: ImportWork,
        batch: Batch,
        state: ImportCheckpoint,
        writing: tuple["_Rejected", bool],
    ) -> bool:
        """Commit the batch's good rows; in `fail` mode only those before the first bad one.
        Its bad rows are synced to the artifact before the caller heartbeats past them.
        `writing`: the artifact, and whether no record can have the batch's keys yet (see
        `upsert_records`); returns whether none can have the next batch's."""
        rejected, unseen = writing
        rows = batch.rows
        first_error = batch.errors[0] if batch.errors else None
        if first_error is not None and work.on_error == "fail":
            rows = [row for row in rows if row[0] < first_error.line]
        if rows:
            unseen = await asyncio.to_thread(self._commit, work, rows, unseen)
            state.imported += len(rows)
        _count_misfits(batch, state)
        if first_error is not None and work.on_error == "fail":
            await asyncio.to_thread(rejected.write, [first_error], state)
            await asyncio.to_thread(rejected.finish, state)
            direct = work.mode == "upsert" and work.partition is None
            raise _bad_row(work.source, first_error, state.imported if direct else None)
        if batch.errors:
            await asyncio.to_thread(rejected.write, batch.errors, state)
        state.skipped += len(batch.errors)
        room = work.max_examples - len(state.examples)
        state.examples += [_bad(error) for error in batch.errors[:room]]
        return unseen

    async def _find_conflicts(
        self,
        work: ImportWork,
        state: ImportCheckpoint,
        rejected: "_Rejected",
        checkpoint: Callable[[], Any] = lambda: None,
    ) -> None:
        """Insert-only, before the move: the staged keys the project has already are bad
        rows (the first ones, for the examples and the artifact). A read that may take
        long over millions of staged rows: it heartbeats (`checkpoint()`, the work's last)
        meanwhile, and a cancel stops it."""
        if work.mode != "insert-only":
            return
        limit = max(work.max_rejected, work.max_examples, 1)
        _, conflicts = await self._heartbeating(
            lambda _stop: self._conflicts(work.project_id, limit), checkpoint
        )
        errors = [
            RowError(line, f"the key '{key}' exists already (insert-only)")
            for line, key in conflicts
        ]
        if errors and work.on_error == "fail":
            await asyncio.to_thread(rejected.write, errors[:1], state)
            await asyncio.to_thread(rejected.finish, state)
            raise _bad_row(work.source, errors[0], None)
        await asyncio.to_thread(rejected.write, errors, state)
        room = work.max_examples - len(state.examples)
        state.examples += [_bad(error) for error in errors[:room]]

    async def _swap(
        self, work: ImportWork, checkpoint: Callable[[], Any] = lambda: None
    ) -> Swapped:
        """The move, in one transaction, then the moved rows cleared (until the worker
        stops: what is left goes with a later attempt)."""
        return await self._heartbeating(
            lambda stop: self._swap_in(work.project_id, work.mode, stop), checkpoint
        )

    async def _heartbeating(
        self, work: Callable[[threading.Event], T], checkpoint: Callable[[], Any] = lambda: None
    ) -> T:
        """Blocking database work run in a thread while the activity heartbeats; `work` is
        told through its event when to stop, between transactions."""
        interval = self.context.settings.heartbeat_interval_seconds
        return await heartbeating(work, interval, checkpoint)

    def _commit(self, work: ImportWork, rows: list[tuple[int, str, str]], unseen: bool) -> bool:
        """Whether no record can have the next batch's keys (upsert_records)."""
        with self.context.db.transaction() as session:
            connection = session.connection()
            if work.mode == "upsert" and work.partition is None:
                documents = [(key, document) for _, key, document in rows]
                return upsert_records(
                    connection, work.project_id, documents, utcnow(), unseen=unseen
                )
            stage_records(connection, _job_id(), rows)
            return False

    def _unseen(self, work: ImportWork) -> bool:
        """An upsert into a project without records: its keys can meet only each other."""
        if work.mode != "upsert" or work.partition is not None:
            return False
        with self.context.db.transaction() as session:
            return not has_records(session.connection(), work.project_id)

    def _declared_types(self, work: ImportWork) -> dict[str, ColumnType]:
        """The project's declared types under the import's own."""
        with self.context.db.transaction() as session:
            project = project_or_fail(session, work.project_id)
            types = dict(project.column_types or {}) if work.project_types else {}
        return {**types, **work.shaping.column_types}

    async def _open_staging(
        self, project_id: str, fresh: bool, reporter: ProgressReporter
    ) -> Swapped | None:
        """The staging opened; what the move did if an attempt before made it. A cancel
        that arrives meanwhile comes too late then, as it does once the move has begun."""
        job = current_job_run()
        found: list[Swapped | None] = []

        def open_it(_stop: threading.Event) -> Swapped | None:
            with self.context.db.transaction() as session:
                connection = session.connection()
                found.append(open_staging(connection, job.job_id, job.run_id, project_id, fresh))
            return found[0]

        try:
            return await reporter.in_thread(open_it)
        except asyncio.CancelledError:
            if not found or found[0] is None:
                raise
            uncancel()
            return found[0]

    def _conflicts(self, project_id: str, limit: int) -> tuple[int, list[tuple[int, str]]]:
        with self.context.db.transaction() as session:
            return find_conflicts(session.connection(), _job_id(), project_id, limit)

    def _swap_in(self, project_id: str, mode: StagedMode, stop: threading.Event) -> Swapped:
        with self.context.db.transaction() as session:
            swapped = swap_in(session.connection(), _job_id(), project_id, mode, utcnow())
        self._clear_swapped(stop)
        return swapped

    def _clear_swapped(self, stop: threading.Event) -> None:
        """The moved rows out of the staging, a short transaction a chunk, until `stop`.
        Best effort: the move is done whatever happens here, and rows left go with a
        later attempt's clearing or, at the latest, with the job's row."""
        job_id = _job_id()
        try:
            while not stop.is_set():
                with self.context.db.transaction() as session:
                    if not clear_swapped(session.connection(), job_id):
                        return
        except SQLAlchemyError as error:
            log.warning("could not clear the moved rows of job %s: %s", job_id, error)

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

    def __init__(self, group: ActivityGroup, cap: int, name: str) -> None:
        self._group = group
        self._cap = cap
        self.name = name
        self._writer: ArtifactWriter | None = None
        self.pending = False
        """Lines written since the last checkpoint of the artifact."""
        self.finished = False

    def resume(self, state: ImportCheckpoint) -> bool:
        """Reopen the artifact at the checkpoint's size; False if its lines are lost."""
        self._writer = self._group.artifact(self.name, state.rejected_size)
        return self._writer.resumed

    def write(self, errors: list[RowError], state: ImportCheckpoint) -> None:
        room = self._cap - state.rejected_written
        if room <= 0 or not errors:
            return
        if self._writer is None:
            self._writer = self._group.artifact(self.name, None)
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

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


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
        rejected_rows=rejected.name if rejected.finished else None,
        rejected_written=state.rejected_written,
    )


def _rejected_name(partition: Partition | None) -> str:
    """A partition writes its part of the rejected rows, merged in order at the end."""
    return partition.artifact(REJECTED_ROWS) if partition else REJECTED_ROWS


def _after(count: int) -> Partition | None:
    """The move's part of the rejected rows: after the `count` partitions' parts."""
    return Partition(index=count, count=count + 1, job_total=0) if count else None


def _start(partition: Partition | None) -> Position:
    """Where a partition's reading starts: at its first byte, or after its rows before."""
    if partition is not None and partition.bytes is not None:
        return Position(partition.bytes.start)
    if partition is not None and partition.rows is not None:
        return Position(0, partition.rows.start, partition.rows.start)
    return Position()


def _span(partition: Partition | None) -> tuple[int, int] | None:
    """A partition's part of the job's total (bytes, or Parquet rows), for its progress."""
    part = (partition.bytes or partition.rows) if partition else None
    return (part.start, part.end) if part else None


def _split_inside(source: str, cut: int, line: int) -> ApplicationError:
    return input_error(
        f"{source} line {line}: a CSV record runs past byte {cut}, where the file was split "
        "into partitions (a quote character inside an unquoted field?). The project's records "
        "were left as they were; fix the quoting, or set PASTOOLS_PARTITION_BYTES above the "
        "file's size to import it as one activity.",
        "BadRow",
        source=source,
        line=line,
        reason="a record runs past a partition's end",
        imported=0,
    )


def _bad_row(source: str, error: RowError, imported: int | None) -> ApplicationError:
    """`imported`: rows written before it; None when nothing was (staged rows are not)."""
    written = (
        f"{imported} rows before it were imported"
        if imported is not None
        else "the project's records were left as they were"
    )
    return input_error(
        f"{source} line {error.line}: {error.reason}. "
        f"{written}; set on_error to 'skip' to skip bad rows.",
        "BadRow",
        source=source,
        line=error.line,
        reason=error.reason,
        imported=imported or 0,
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


def merge_import_results(
    parts: list[ImportResult],
    move: ImportResult,
    detected: list[str],
    caps: tuple[int, int],
) -> ImportResult:
    """The partitions' results and the move's as one activity would have returned them:
    the rows written (an upsert's every row, as a batch upsert counts them; the others'
    the rows moved), bad rows summed and their first examples in line order,
    misfits summed per column, the detection the plan made; `caps`: max_examples and
    max_rejected (the merged artifact keeps that many lines). Pure: the workflow calls it."""
    max_examples, max_rejected = caps
    every = [*parts, move]
    staged = sum(part.imported for part in parts)  # an upsert counts every row it wrote
    columns = {}
    for name, column in parts[0].column_types.items():
        found = [part.column_types[name] for part in parts if name in part.column_types]
        lines = [c.first_misfit_line for c in found if c.first_misfit_line is not None]
        columns[name] = column.model_copy(
            update={
                "misfits": sum(c.misfits for c in found),
                "first_misfit_line": min(lines, default=None),
            }
        )
    errors = sorted((error for result in every for error in result.errors), key=lambda e: e.line)
    rejected = any(result.rejected_rows is not None for result in every)
    return parts[0].model_copy(
        update={
            "imported": staged if move.mode == "upsert" else move.imported,
            "skipped": sum(result.skipped for result in every),
            "errors": errors[:max_examples],
            "resumed_from_row": 0,
            "detected": detected,
            "column_types": columns,
            "rejected_rows": REJECTED_ROWS if rejected else None,
            "rejected_written": min(sum(result.rejected_written for result in every), max_rejected),
        }
    )
