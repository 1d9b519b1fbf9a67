"""The export activity: a project's records (optionally those whose key has a prefix)
to a CSV, JSON Lines or Parquet artifact, in key order, batch by batch.

CSV and Parquet get one column per top-level field (in name order, found by the
database); values that are not strings are written as JSON. A retried
attempt resumes a CSV or JSON Lines file at its checkpointed size and key; a Parquet
file, which cannot be appended to, is written again from the start unless the attempt
before had finished it.
"""

import asyncio
import csv
import io
import json
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from temporalio import activity

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import project_or_fail
from activities.progress import ProgressReporter
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.records import count_records, field_names, record_batches
from pastools_jobs.storage.base import ArtifactWriter
from workflows.results import ExportResult

ExportFormat = Literal["csv", "jsonl", "parquet"]


class ExportWork(Work):
    project_id: str
    format: ExportFormat
    key_prefix: str | None
    batch_rows: int


class ExportCheckpoint(BaseModel):
    after_key: str | None = None
    rows: int = 0
    size: int = 0
    fields: list[str] | None = None
    finished: bool = False
    """The whole file is stored: a retry keeps it (or its part) and writes nothing."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class _Encoder:
    """Turns a batch of records into bytes (CSV, JSON Lines) or a table (Parquet)."""

    def __init__(self, export_format: ExportFormat, fields: list[str]) -> None:
        self.format = export_format
        self.fields = fields

    def header(self) -> bytes:
        return self._csv([["key", *self.fields]]) if self.format == "csv" else b""

    def encode(self, batch: list[tuple[str, Any]]) -> bytes:
        if self.format == "jsonl":
            return "".join(
                json.dumps({"key": key, "data": doc}, ensure_ascii=False) + "\n"
                for key, doc in batch
            ).encode()
        return self._csv([self._row(key, doc) for key, doc in batch])

    def table(self, batch: list[tuple[str, Any]]) -> pa.Table:
        columns = list(zip(*(self._row(key, doc) for key, doc in batch), strict=True))
        return pa.table(
            {
                name: pa.array(column, pa.string())
                for name, column in zip(["key", *self.fields], columns, strict=True)
            }
        )

    def _row(self, key: str, doc: Any) -> list[str]:
        values = doc if isinstance(doc, dict) else {}
        return [key, *(_cell(values.get(name)) for name in self.fields)]

    @staticmethod
    def _csv(rows: list[list[str]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue().encode()


class ExportActivities(ActivityGroup):
    @activity.defn(name="export_records")
    async def export_records(self, work: ExportWork) -> ExportResult:
        reporter = self.reporter()
        state = self.resume(work, ExportCheckpoint)
        name = f"export.{work.format}"  # the job's own directory says whose export it is
        output = await asyncio.to_thread(self.artifact, name, _resume_at(state, work.format))
        try:
            if not output.resumed:
                state = ExportCheckpoint()  # the bytes it counted are gone: count afresh
            total = await asyncio.to_thread(self._count, work)
            if state.fields is None:
                state.fields = (
                    await asyncio.to_thread(self._fields, work) if work.format != "jsonl" else []
                )
            if not state.finished:
                encoder = _Encoder(work.format, state.fields)
                await self._write(work, state, encoder, output, reporter, total)
            await reporter.report(_progress(state, total, state), force=True)
            size = await reporter.in_thread(lambda _stop: output.finish())
        finally:
            output.close()
        return ExportResult(artifact=name, format=work.format, rows=state.rows, bytes=size)

    async def _write(
        self,
        work: ExportWork,
        state: ExportCheckpoint,
        encoder: _Encoder,
        output: ArtifactWriter,
        reporter: ProgressReporter,
        total: int,
    ) -> None:
        """Write the records after the checkpoint, heartbeating only positions whose bytes
        are synced; at the end the whole file is, and `state` says it is finished."""
        parquet = (
            pq.ParquetWriter(output.stream, encoder.table([("k", {})]).schema)
            if work.format == "parquet"
            else None
        )
        if not output.resumed:
            await asyncio.to_thread(output.stream.write, encoder.header())
        batches = record_batches(
            self.context.db,
            work.project_id,
            after_key=state.after_key,
            key_prefix=work.key_prefix,
            batch_size=work.batch_rows,
        )
        durable = state.model_copy()
        async for batch in read_ahead(batches):
            if parquet is not None:
                await asyncio.to_thread(parquet.write_table, encoder.table(batch))
            else:
                # In a thread: a write can send a part to the object store.
                await asyncio.to_thread(_write_encoded, output, encoder, batch)
            state.rows += len(batch)
            state.after_key = batch[-1][0]
            # A Parquet file resumes only once finished: syncing it midway would buy nothing.
            if output.checkpoint_due() and parquet is None:
                state.size = await reporter.in_thread(lambda _stop: output.checkpoint())
                durable = state.model_copy()
            await reporter.report(_progress(state, total, durable))
        if parquet is not None:
            await asyncio.to_thread(parquet.close)
        state.size = await reporter.in_thread(lambda _stop: output.checkpoint())
        state.finished = True

    def _count(self, work: ExportWork) -> int:
        """Fails at once for a project that does not exist, rather than exporting nothing."""
        with self.context.db.transaction() as session:
            project_or_fail(session, work.project_id)
            return count_records(session, work.project_id, work.key_prefix)

    def _fields(self, work: ExportWork) -> list[str]:
        with self.context.db.transaction() as session:
            return field_names(session, work.project_id, work.key_prefix)


def _write_encoded(output: ArtifactWriter, encoder: _Encoder, batch: list[tuple[str, Any]]) -> None:
    output.stream.write(encoder.encode(batch))


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
