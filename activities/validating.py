"""The validation activity: every record of a project against its JSON Schema.

The schema is read once, when the job starts (`snapshot_schema`): a retry after the
schema changed must not count records against two schemas, and the result names the
one it used by its digest. Each attempt compiles it once (jsonschema-rs, native code).
Errors are grouped by the schema path that failed, with counts and the first examples;
every invalid record goes, with all its errors, into a JSON Lines report artifact,
resumable like exports.

A big validation runs as partitions (`workflows/partitioned.py`): each checks one key
range into its part of the report, and the workflow merges their results
(`merge_results`) and their parts, in key order, into what one activity would have made.
"""

import asyncio
import json
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.batches import read_ahead
from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.progress import ProgressReporter
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.digest import sha256_of
from pastools_jobs.datasets.records import count_records, decode_document, record_batches
from pastools_jobs.datasets.schema import compile_schema
from pastools_jobs.domain import InvalidJobInput
from pastools_jobs.partitions import Partition
from pastools_jobs.storage.base import ArtifactWriter
from workflows.results import PathErrors, SchemaViolation, ValidationResult

REPORT = "validation-report.jsonl"


class SchemaSnapshot(BaseModel):
    """The project's JSON Schema as the job found it when it started."""

    json_schema: Any
    sha256: str


class ValidationWork(Work):
    project_id: str
    examples_per_path: int
    batch_rows: int
    snapshot: SchemaSnapshot | None = None
    """None in runs begun before snapshots existed: each of their attempts reads the schema."""
    partition: Partition | None = None
    """The key range this activity checks, into its part of the report; None: all."""


class ValidationCheckpoint(BaseModel):
    after_key: str | None = None
    valid: int = 0
    invalid: int = 0
    size: int = 0
    by_path: dict[str, PathErrors] = Field(default_factory=dict)
    finished: bool = False
    """The whole report is on disk: a retry keeps it (or its part) and checks nothing."""


def _pointer(parts: Any) -> str:
    return "/" + "/".join(str(part) for part in parts)


class ValidationActivities(ActivityGroup):
    @activity.defn(name="snapshot_schema")
    async def snapshot_schema(self, work: ValidationWork) -> SchemaSnapshot:
        """Taken by the workflow when the job starts; its history keeps the result."""
        return await asyncio.to_thread(self._snapshot, work.project_id)

    @activity.defn(name="validate_records")
    async def validate_records(self, work: ValidationWork) -> ValidationResult:
        snapshot = work.snapshot
        if snapshot is None:  # a run begun before snapshots existed, read per attempt as then
            snapshot = await asyncio.to_thread(self._snapshot, work.project_id)
        partition = work.partition
        if partition is None:
            total = await asyncio.to_thread(self._count, work.project_id)
            name = REPORT
        else:  # the reporter shows the job's progress, summed over its partitions
            total = partition.job_total
            name = partition.artifact(REPORT)
        try:
            validator = compile_schema(snapshot.json_schema)
        except InvalidJobInput as error:
            raise input_error(str(error), "InvalidSchema") from None
        reporter = self.reporter(partition)
        state = self.resume(work, ValidationCheckpoint)
        resume_at = state.size if state.after_key or state.finished else None
        report = await asyncio.to_thread(self.artifact, name, resume_at)
        try:
            if not report.resumed:
                state = ValidationCheckpoint()  # the lines it counted are gone: count afresh
            if not state.finished:
                await self._check_all(work, validator, state, report, reporter, total)
            await reporter.report(_progress(state, total, state), force=True)
            await reporter.in_thread(lambda _stop: report.finish())
        finally:
            report.close()
        groups = list(state.by_path.values())  # in the order they first failed
        if partition is None:
            groups.sort(key=lambda group: -group.count)  # a partition's are merged first
        return ValidationResult(
            valid=state.valid,
            invalid=state.invalid,
            errors_by_path=groups,
            schema_sha256=snapshot.sha256,
            report=name,
        )

    async def _check_all(
        self,
        work: ValidationWork,
        validator: Any,
        state: ValidationCheckpoint,
        report: ArtifactWriter,
        reporter: ProgressReporter,
        total: int,
    ) -> None:
        """Check the records after the checkpoint, heartbeating only positions whose report
        lines are synced; at the end the whole report is, and `state` says it is finished."""
        keys = work.partition.keys if work.partition else None
        batches = record_batches(
            self.context.db,
            work.project_id,
            after_key=state.after_key or (keys.after_key if keys else None),
            until_key=keys.until_key if keys else None,
            batch_size=work.batch_rows,
            as_text=True,
        )
        durable = state.model_copy(deep=True)
        async for batch in read_ahead(batches):
            lines = await asyncio.to_thread(_check, validator, batch, state, work)
            await asyncio.to_thread(report.stream.write, lines)  # may send a part
            state.after_key = batch[-1][0]
            if report.checkpoint_due():
                state.size = await reporter.in_thread(lambda _stop: report.checkpoint())
                durable = state.model_copy(deep=True)
            await reporter.report(_progress(state, total, durable))
        state.size = await reporter.in_thread(lambda _stop: report.checkpoint())
        state.finished = True

    def _snapshot(self, project_id: str) -> SchemaSnapshot:
        with self.context.db.transaction() as session:
            project = project_or_fail(session, project_id)
            if project.json_schema is None:
                raise input_error(
                    f"Project '{project_id}' has no JSON Schema: set one with "
                    f"PUT /api/projects/{project_id}/schema.",
                    "NoSchema",
                )
            schema = project.json_schema
        return SchemaSnapshot(json_schema=schema, sha256=sha256_of(schema))

    def _count(self, project_id: str) -> int:
        with self.context.db.transaction() as session:
            return count_records(session, project_id)


def _check(
    validator: Any, batch: list[tuple[str, str]], state: ValidationCheckpoint, work: ValidationWork
) -> bytes:
    """Validate a batch of JSON texts, update the counts and groups, return its report
    lines. Each document is decoded just before it is checked and dropped after; the
    few invalid ones are decoded again to collect their errors."""
    is_valid = validator.is_valid
    # is_valid is much faster than collecting no errors
    checks = [is_valid(decode_document(text)) for _, text in batch]
    state.valid += checks.count(True)
    lines: list[str] = []
    for key, text in (batch[at] for at, valid in enumerate(checks) if not valid):
        errors = list(validator.iter_errors(decode_document(text)))
        state.invalid += 1
        found = []
        for error in errors:
            path = _pointer(error.schema_path)
            at = _pointer(error.instance_path)
            found.append({"path": path, "at": at, "message": error.message})
            group = state.by_path.setdefault(path, PathErrors(path=path))
            group.count += 1
            if len(group.examples) < work.examples_per_path:
                group.examples.append(SchemaViolation(key=key, at=at, message=error.message))
        lines.append(json.dumps({"key": key, "errors": found}, ensure_ascii=False))
    return "".join(line + "\n" for line in lines).encode()


def _progress(state: ValidationCheckpoint, total: int, durable: ValidationCheckpoint) -> Progress:
    """The progress made so far, and `durable` as the checkpoint: the last position
    whose report lines are synced."""
    done = state.valid + state.invalid
    return Progress(
        done=min(done, total),
        total=max(total, 1),
        message=f"Checked {done} of {total} records: {state.invalid} invalid",
        checkpoint=durable.model_dump(mode="json"),
    )


def merge_results(parts: list[ValidationResult], examples_per_path: int) -> ValidationResult:
    """The partitions' results, in key order, as one activity over all records would have
    returned them: counts summed, each path's first examples in key order, paths by count
    (ties in the order they first failed). Pure: the workflow calls it."""
    by_path: dict[str, PathErrors] = {}
    for part in parts:
        for group in part.errors_by_path:  # a partition's: in the order they first failed
            merged = by_path.setdefault(group.path, PathErrors(path=group.path))
            merged.count += group.count
            room = examples_per_path - len(merged.examples)
            merged.examples.extend(group.examples[: max(room, 0)])
    return ValidationResult(
        valid=sum(part.valid for part in parts),
        invalid=sum(part.invalid for part in parts),
        errors_by_path=sorted(by_path.values(), key=lambda group: -group.count),
        schema_sha256=parts[0].schema_sha256 if parts else None,
        report=REPORT,
    )
