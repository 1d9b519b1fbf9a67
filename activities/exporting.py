"""The export activity: a project's records (optionally those whose key has a prefix, or
a key range of them) to a CSV, JSON Lines or Parquet artifact, in key order, batch by
batch; CSV and JSON Lines optionally compressed (gzip, zstd).

CSV and Parquet get the key and one column per top-level field: the chosen columns in
their order, or every field in name order (found by the database); values that are not
strings are written as JSON. On PostgreSQL the server builds CSV and JSON Lines bytes
(`export_copy`); elsewhere `RecordEncoder` does, and both write the same bytes.

A retried attempt resumes a CSV or JSON Lines file at its checkpointed size and key (a
compressed one after the member closed at that checkpoint); a Parquet file, which cannot
be appended to, is written again from the start unless the attempt before finished it.

A big CSV or JSON Lines export runs as partitions (`workflows/export_job.py`): each
writes one key range into its part, with the columns decided once for all of them
(`export_columns`), and the parts are concatenated into the one file.
"""

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from sqlalchemy.orm import Session
from temporalio import activity

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.progress import ProgressReporter, heartbeating
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.compression import SUFFIXES, Compression, MemberWriter
from pastools_jobs.datasets.export_copy import EncodedBatch, KeyRange, copy_batches
from pastools_jobs.datasets.export_encoding import ExportFormat, RecordEncoder
from pastools_jobs.datasets.records import (
    count_records,
    field_names,
    first_fields,
    joined_batches,
    missing_fields,
    record_batches,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.db.interrupting import interrupted_by
from pastools_jobs.partitions import Partition
from pastools_jobs.storage.base import ArtifactWriter
from workflows.results import ExportResult

PARQUET_DEFAULT_CODEC: Compression = "zstd"

T = TypeVar("T")


class ExportWork(Work):
    project_id: str
    format: ExportFormat
    key_prefix: str | None
    batch_rows: int
    columns: list[str] | None = None
    """The fields to write, in this order, after the key; None: every field."""
    compression: Compression | None = None
    """None: the format's default (none for CSV and JSON Lines, zstd for Parquet)."""
    row_group_rows: int | None = None
    """Parquet rows per row group; None: one per batch read."""
    after_key: str | None = None
    """A part of the records: after this key (exclusive) …"""
    until_key: str | None = None
    """… up to this one (inclusive). Columns are still those of the whole export."""
    header: bool = True
    """Whether a CSV file starts with its header (the first part of an export does)."""
    artifact: str | None = None
    """The file's name, when not `export.<format>[.gz|.zst]` (a part's, say)."""
    partition: Partition | None = None
    """The part of a split export this is, for its progress: the row shows the job's."""


class ExportCheckpoint(BaseModel):
    after_key: str | None = None
    rows: int = 0
    size: int = 0
    fields: list[str] | None = None
    finished: bool = False
    """The whole file is stored: a retry keeps it (or its part) and writes nothing."""


def artifact_name(export_format: ExportFormat, compression: Compression) -> str:
    """The job's own directory says whose export it is; Parquet compresses inside."""
    suffix = "" if export_format == "parquet" else SUFFIXES[compression]
    return f"export.{export_format}{suffix}"


def compression_of(work: ExportWork) -> Compression:
    if work.compression is not None:
        return work.compression
    return PARQUET_DEFAULT_CODEC if work.format == "parquet" else "none"


class ExportActivities(ActivityGroup):
    @activity.defn(name="export_records")
    async def export_records(self, work: ExportWork) -> ExportResult:
        reporter = self.reporter(work.partition)
        state = self.resume(work, ExportCheckpoint)
        compression = compression_of(work)
        name = work.artifact or artifact_name(work.format, compression)
        output = await asyncio.to_thread(self.artifact, name, _resume_at(state, work.format))
        try:
            if not output.resumed:
                state = ExportCheckpoint()  # the bytes it counted are gone: count afresh
            columns = None
            if self._finds_columns(work, state):
                total, state.fields = await self._count_and_first_fields(work)
                listing = functools.partial(self._list_fields, work)
                columns = _Columns(state.fields, listing, reporter)
            else:
                total, state.fields = await self._count_and_fields(work, state.fields)
            if not state.finished:
                encoder = RecordEncoder(work.format, state.fields, chosen=work.columns is not None)
                if work.format == "parquet":
                    await self._write_parquet(work, state, encoder, output, reporter, total)
                else:
                    members = MemberWriter(compression)
                    while True:
                        other = await self._write_text(
                            work, state, encoder, members, output, reporter, total, columns
                        )
                        if other is None:
                            break
                        # rare: a record has a field the first lacks; nothing was checkpointed
                        output.close()
                        output = await asyncio.to_thread(self.artifact, name, None)
                        state, columns = ExportCheckpoint(fields=other), None
                        encoder = RecordEncoder(work.format, other, chosen=False)
                        members = MemberWriter(compression)
            await reporter.report(_progress(state, total, state), force=True)
            size = await reporter.in_thread(lambda _stop: output.finish())
        finally:
            output.close()
            if columns is not None:
                columns.stop()
        return ExportResult(
            artifact=name, format=work.format, compression=compression, rows=state.rows, bytes=size
        )

    async def _write_text(
        self,
        work: ExportWork,
        state: ExportCheckpoint,
        encoder: RecordEncoder,
        members: MemberWriter,
        output: ArtifactWriter,
        reporter: ProgressReporter,
        total: int,
        columns: "_Columns | None" = None,
    ) -> list[str] | None:
        """Write the records after the checkpoint, heartbeating only positions whose bytes
        are synced (and whose compressed member is closed); at the end the whole file is,
        and `state` says it is finished. With `columns` not yet confirmed, no position is
        checkpointed until they are; returns the columns to start over with if they are
        not the export's."""
        if not output.resumed and work.header and encoder.format == "csv":
            await asyncio.to_thread(_write, output, members, encoder.header())
        after = state.after_key if state.after_key is not None else work.after_key
        durable = state.model_copy()
        async for batch in read_ahead(self._encoded(work, encoder, after)):
            # In a thread: compressing, and a write can send a part to the object store.
            await asyncio.to_thread(_write, output, members, batch.data)
            state.rows += batch.rows
            state.after_key = batch.last_key
            other = await columns.other(encoder.seen, last=False) if columns else None
            if other is not None:
                return other
            due = output.checkpoint_due()
            if due and columns and not columns.confirmed:
                if state.rows * 2 < total:  # what is left takes longer than an interval
                    columns.start_listing()
            elif due:
                state.size = await reporter.in_thread(lambda _stop: _sync(output, members))
                durable = state.model_copy()
            await reporter.report(_progress(state, total, durable))
        other = await columns.other(encoder.seen, last=True) if columns else None
        if other is not None:
            return other
        state.size = await reporter.in_thread(lambda _stop: _sync(output, members, last=True))
        state.finished = True
        return None

    def _encoded(
        self, work: ExportWork, encoder: RecordEncoder, after: str | None
    ) -> Iterator[EncodedBatch]:
        """The server builds the bytes on PostgreSQL; SQLite joins each batch's keys and
        documents, which the encoder decodes in one call, while SQLite reads the next
        batch (it lets go of the GIL while it reads)."""
        db = self.context.db
        if db.engine.dialect.name == "postgresql" and (encoder.fields or encoder.format == "jsonl"):
            selection = KeyRange(work.project_id, work.key_prefix, work.until_key, work.batch_rows)
            yield from copy_batches(lambda: _driver_connection(db), selection, encoder, after)
            return
        if db.engine.dialect.name == "postgresql":  # a CSV of keys only
            for batch in _fetched_ahead(self._batches(work, after)):
                yield EncodedBatch(encoder.encode(batch), len(batch), batch[-1][0])
            return
        joined = joined_batches(
            db,
            work.project_id,
            after_key=after,
            until_key=work.until_key,
            key_prefix=work.key_prefix,
            batch_size=work.batch_rows,
        )
        for keys, documents in _fetched_ahead(joined):
            yield EncodedBatch(encoder.encode_array(keys, documents), len(keys), keys[-1])

    def _batches(self, work: ExportWork, after: str | None) -> Iterator[list[tuple[str, Any]]]:
        return record_batches(
            self.context.db,
            work.project_id,
            after_key=after,
            until_key=work.until_key,
            key_prefix=work.key_prefix,
            batch_size=work.batch_rows,
        )

    async def _write_parquet(
        self,
        work: ExportWork,
        state: ExportCheckpoint,
        encoder: RecordEncoder,
        output: ArtifactWriter,
        reporter: ProgressReporter,
        total: int,
    ) -> None:
        """The whole file in one go (a Parquet file resumes only once finished, so syncing
        it midway would buy nothing), in row groups of `row_group_rows` when asked."""
        codec = compression_of(work)
        writer = pq.ParquetWriter(output.stream, encoder.table([]).schema, compression=codec)
        groups = _RowGroups(writer, work.row_group_rows)
        durable = state.model_copy()
        async for batch in read_ahead(self._batches(work, state.after_key or work.after_key)):
            await asyncio.to_thread(groups.add, encoder.table(batch))
            state.rows += len(batch)
            state.after_key = batch[-1][0]
            await reporter.report(_progress(state, total, durable))
        await asyncio.to_thread(groups.close)
        state.size = await reporter.in_thread(lambda _stop: output.checkpoint())
        state.finished = True

    def _finds_columns(self, work: ExportWork, state: ExportCheckpoint) -> bool:
        """Whether this is a whole CSV export on SQLite with no columns chosen or
        checkpointed: it decodes every record, so it can find its columns as it writes."""
        whole = work.after_key is None and work.until_key is None
        sqlite = self.context.db.engine.dialect.name == "sqlite"
        return (
            sqlite
            and whole
            and work.format == "csv"
            and work.columns is None
            and state.fields is None
        )

    async def _count_and_first_fields(self, work: ExportWork) -> tuple[int, list[str]]:
        total = await asyncio.to_thread(self._count, work)
        first = await self.context.db.read(
            lambda session: first_fields(session, work.project_id, work.key_prefix)
        )
        return total, first

    def _list_fields(self, work: ExportWork, stop: threading.Event) -> list[str]:
        """Every field of the export's records; `stop` set: `Interrupted` (the listing is
        not needed any more, and gives its connection back at once)."""
        with (
            self.context.db.reading() as connection,
            Session(connection) as session,
            interrupted_by(stop, connection),
        ):
            return field_names(session, work.project_id, work.key_prefix)

    async def _count_and_fields(
        self, work: ExportWork, fields: list[str] | None
    ) -> tuple[int, list[str]]:
        """The records to export and their fields; every field is listed (a full scan on
        a large project) while the records are counted, on two connections."""
        if fields is None and work.columns is None:
            counting = asyncio.to_thread(self._count, work)
            return await asyncio.gather(counting, asyncio.to_thread(self._fields, work, 0))
        total = await asyncio.to_thread(self._count, work)
        if fields is None:  # chosen columns are checked against the count
            fields = await asyncio.to_thread(self._fields, work, total)
        return total, fields

    @activity.defn(name="export_columns")
    async def export_columns(self, work: ExportWork) -> list[str] | None:
        """The columns of a split export, decided once before its parts are written (each
        part listing the fields itself could find others, and would scan them all again):
        the chosen ones, checked, or every field for CSV; JSON Lines takes the chosen.
        Only chosen ones need the count (the plan counted the records to split them)."""

        def decide(_stop: threading.Event) -> list[str]:
            total = self._count(work) if work.columns is not None else 0
            return self._fields(work, total)

        fields = await heartbeating(decide, self.context.settings.heartbeat_interval_seconds)
        return work.columns if work.format == "jsonl" else fields

    def _count(self, work: ExportWork) -> int:
        """Fails at once for a project that does not exist, rather than exporting nothing."""
        with self.context.db.transaction() as session:
            project_or_fail(session, work.project_id)
            return count_records(
                session,
                work.project_id,
                work.key_prefix,
                after_key=work.after_key,
                until_key=work.until_key,
            )

    def _fields(self, work: ExportWork, total: int) -> list[str]:
        """The chosen columns, each a field of some record (a whole export with records
        checks; a part takes them as checked), or every field. JSON Lines needs none."""
        with self.context.db.transaction() as session:
            if work.columns is not None:
                whole = work.after_key is None and work.until_key is None
                missing = (
                    missing_fields(session, work.project_id, work.columns, work.key_prefix)
                    if whole and total
                    else []
                )
                if missing:
                    raise input_error(
                        f"column {missing[0]!r} is not a field of any exported record",
                        "UnknownColumn",
                        column=missing[0],
                    )
                return work.columns
            if work.format == "jsonl":
                return []
            return field_names(session, work.project_id, work.key_prefix)


class _Columns:
    """The columns a SQLite CSV export found as it writes. It starts with the first
    record's fields rather than wait for every field to be listed (a scan that parses
    every document, as long as a fifth of the export); the encoder notes the fields of
    every document it writes. They are confirmed once the last batch is written with no
    other field met, or by the listing, started when a checkpoint is due while fewer than
    half of the records are written (so a crash redoes no more than what is left). No
    position is checkpointed before: an export that meets another field (a rare one)
    starts over with the listed ones, and no checkpoint named the first."""

    def __init__(
        self,
        fields: list[str],
        listing: Callable[[threading.Event], list[str]],
        reporter: ProgressReporter,
    ) -> None:
        self.fields = fields
        self.confirmed = False
        self._list = listing
        self._reporter = reporter
        self._stop = threading.Event()
        self._listing: asyncio.Future[list[str]] | None = None

    def start_listing(self) -> None:
        if self._listing is None:
            self._listing = asyncio.ensure_future(asyncio.to_thread(self._list, self._stop))

    async def other(self, seen: set[str], *, last: bool) -> list[str] | None:
        """The columns to start over with; None to go on (confirmed, or not yet)."""
        if self.confirmed:
            return None
        if not seen <= set(self.fields):
            self.start_listing()
            assert self._listing is not None
            # heartbeating meanwhile, so that a cancel or a pause still reaches the export
            return await self._reporter.waiting_for(self._listing)
        if last:  # every record written: the fields met are all there are
            self.confirmed = True
        elif self._listing is not None and self._listing.done():
            if self._listing.result() != self.fields:
                return self._listing.result()
            self.confirmed = True
        return None

    def stop(self) -> None:
        """A listing still running is not needed: it is interrupted."""
        self._stop.set()
        if self._listing is not None:
            self._listing.cancel()


class _RowGroups:
    """Tables written in row groups of exactly `rows` rows (the last one fewer), or as
    they come when no size is asked; at most one group is held."""

    def __init__(self, writer: pq.ParquetWriter, rows: int | None) -> None:
        self.writer = writer
        self.rows = rows
        self.pending: pa.Table | None = None

    def add(self, table: pa.Table) -> None:
        if self.rows is None:
            self.writer.write_table(table)
            return
        pending = table if self.pending is None else pa.concat_tables([self.pending, table])
        while pending.num_rows >= self.rows:
            self.writer.write_table(pending.slice(0, self.rows), row_group_size=self.rows)
            pending = pending.slice(self.rows)
        self.pending = pending

    def close(self) -> None:
        if self.pending is not None and self.pending.num_rows:
            self.writer.write_table(self.pending, row_group_size=self.pending.num_rows)
        self.writer.close()


@contextmanager
def _driver_connection(db: Database) -> Iterator[psycopg.Connection[Any]]:
    with db.reading() as connection:
        raw = connection.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)
        yield raw


def _fetched_ahead(batches: Iterator[T]) -> Iterator[T]:
    """The batches, the next one read in a thread of its own while this one is used."""
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(next, batches, None)
        while (batch := pending.result()) is not None:
            pending = reader.submit(next, batches, None)
            yield batch


def _write(output: ArtifactWriter, members: MemberWriter, data: bytes) -> None:
    output.stream.write(members.compress(data))


def _sync(output: ArtifactWriter, members: MemberWriter, *, last: bool = False) -> int:
    """Close the compressed member, so the size returned is a whole stream, and sync."""
    output.stream.write(members.finish() if last else members.end_member())
    return output.checkpoint()


def _resume_at(state: ExportCheckpoint, export_format: ExportFormat) -> int | None:
    """Where a retry goes on: a Parquet file cannot be appended to, so only a finished one
    is kept; any other file from its checkpoint, once it holds a row."""
    if state.finished or (state.rows and export_format != "parquet"):
        return state.size
    return None


def _progress(state: ExportCheckpoint, total: int, durable: ExportCheckpoint) -> Progress:
    """The progress made so far, and `durable` as the checkpoint: the last position
    whose bytes are synced."""
    return Progress(
        done=min(state.rows, total),
        total=max(total, 1) if total else 1,
        message=f"Exported {state.rows} of {total} records",
        checkpoint=durable.model_dump(mode="json"),
    )
