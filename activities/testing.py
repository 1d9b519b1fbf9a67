"""The test-run activity: a project's declarative data tests, one after another.

The suite is read once, when the job starts (`snapshot_test_suite`), and every attempt
runs that snapshot. Each test is a unit of progress and of checkpoint: a retried attempt
skips the tests already judged, which only means something if it runs the same suite. A
failing test is a result, not an error: the job completes with the verdicts (JSON), each
`pass`, `warn` or `error` by its thresholds, and a JUnit XML report that CI tools read;
both name the suite by its digest. The first failing records of each test are streamed
to `failing-rows.jsonl` as the test reads them; a checkpoint names the tests judged and
the report's bytes synced after them, so a retry goes on from both. When every test is
judged, their outcomes join each test's history (`datasets/outcomes.py`).

A run over more records than a partition holds is split (`workflows/test_run_job.py`):
`judge_test_partition` judges the tests that look at one record at a time over one key
range, or the whole-dataset tests (`unique`, `row_count`) over all records with the
database's help, each into its part of `failing-rows.jsonl`; `finish_test_run` then
merges the parts test by test, writes the reports and records the outcomes, once.
"""

import asyncio
import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, Field
from temporalio import activity

from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.job import current_job_run
from activities.partitions import merged_before
from activities.progress import ProgressReporter, heartbeating
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.digest import sha256_of
from pastools_jobs.datasets.duplicates import repeated_value_batches
from pastools_jobs.datasets.outcomes import record_outcomes
from pastools_jobs.datasets.records import count_records, keys_present, record_batches
from pastools_jobs.datasets.testsuite import (
    DataTest,
    Failures,
    Relationship,
    RowCount,
    RowTest,
    TestSuite,
    Unique,
    Verdict,
    merge_verdicts,
)
from pastools_jobs.datasets.thresholds import overall_status
from pastools_jobs.domain import ProjectNotFound
from pastools_jobs.partitions import Partition
from pastools_jobs.storage.base import ArtifactWriter
from workflows.results import TestRunResult

JUNIT = "test-results.xml"
RESULTS = "test-results.json"
FAILING_ROWS = "failing-rows.jsonl"
FLUSH_BYTES = 1 << 20
"""Failing rows are written in pieces of about this size: memory stays bounded."""


class SuiteSnapshot(BaseModel):
    """The test suite as the job found it when it started."""

    suite: TestSuite
    sha256: str


class TestRunWork(Work):
    project_id: str
    scope: str | None = None
    """The one project the submitter sees (None: all): relationships reach no further."""
    snapshot: SuiteSnapshot | None = None
    """None in runs begun before snapshots existed: each of their attempts reads the suite."""
    failing_rows_per_test: int = 100
    partition: Partition | None = None
    """A split run's part: a key range, or (`tests` whole-dataset ones) all records."""
    tests: list[str] | None = None
    """The names of the tests a partition judges, in suite order; None: all."""


class TestPartResult(BaseModel):
    """What one partition of a split run judged, and its part of the failing rows."""

    verdicts: list[Verdict]
    failing_rows: str


class FinishTestRun(BaseModel):
    """The merged verdicts of a split run, in suite order, and the parts of its failing
    rows: the whole-dataset part, then the key ranges' in key order."""

    project_id: str
    suite_sha256: str
    verdicts: list[Verdict]
    parts: list[str]
    failing_rows_per_test: int


class TestRunCheckpoint(BaseModel):
    verdicts: list[Verdict] = Field(default_factory=list)
    rows_size: int = 0
    """The failing-rows report's bytes synced after the tests in `verdicts`."""


class TestRunActivities(ActivityGroup):
    @activity.defn(name="snapshot_test_suite")
    async def snapshot_test_suite(self, work: TestRunWork) -> SuiteSnapshot:
        """Taken by the workflow when the job starts; its history keeps the result."""
        return await asyncio.to_thread(self._snapshot, work.project_id)

    @activity.defn(name="run_data_tests")
    async def run_data_tests(self, work: TestRunWork) -> TestRunResult:
        snapshot = work.snapshot
        if snapshot is None:  # a run begun before snapshots existed, read per attempt as then
            snapshot = await asyncio.to_thread(self._snapshot, work.project_id)
        suite = snapshot.suite
        await asyncio.to_thread(self._check_reach, suite, work.scope)
        reporter = self.reporter()
        state = self.resume(work, TestRunCheckpoint)
        resume_at = state.rows_size if state.verdicts else None
        rows = await asyncio.to_thread(self.artifact, FAILING_ROWS, resume_at)
        try:
            if not rows.resumed:
                state = TestRunCheckpoint()  # the rows it wrote are gone: judge afresh
            progress = functools.partial(_progress, total=len(suite.tests))
            evaluate = functools.partial(self._evaluate, work)
            await self._judge_all(evaluate, suite.tests, state, rows, reporter, progress)
            await reporter.report(progress(state, state), force=True)
            await reporter.in_thread(lambda _stop: rows.finish())
        finally:
            rows.close()
        await asyncio.to_thread(
            self._write_reports, work.project_id, snapshot.sha256, state.verdicts
        )
        await asyncio.to_thread(self._record_outcomes, work.project_id, state.verdicts)
        return _result(snapshot.sha256, state.verdicts)

    @activity.defn(name="judge_test_partition")
    async def judge_test_partition(self, work: TestRunWork) -> TestPartResult:
        """One partition of a split run: its tests, into its part of the failing rows,
        checkpointed as a whole run is; progress counts records judged by each test."""
        snapshot, partition = work.snapshot, work.partition
        if snapshot is None or partition is None or work.tests is None:
            raise input_error("A test partition needs its suite, range and tests.", "BadWork")
        names = set(work.tests)
        tests = [test for test in snapshot.suite.tests if test.name in names]
        await asyncio.to_thread(self._check_reach, snapshot.suite, work.scope)
        records = await asyncio.to_thread(self._count, work.project_id, partition)
        reporter = self.reporter(partition)
        state = self.resume(work, TestRunCheckpoint)
        name = partition.artifact(FAILING_ROWS)
        resume_at = state.rows_size if state.verdicts else None
        rows = await asyncio.to_thread(self.artifact, name, resume_at)
        try:
            if not rows.resumed:
                state = TestRunCheckpoint()
            progress = functools.partial(_part_progress, records=records, total=len(tests))
            evaluate = functools.partial(self._evaluate, work, records=records)
            await self._judge_all(evaluate, tests, state, rows, reporter, progress)
            await reporter.report(progress(state, state), force=True)
            await reporter.in_thread(lambda _stop: rows.finish())
        finally:
            rows.close()
        return TestPartResult(verdicts=state.verdicts, failing_rows=name)

    @activity.defn(name="finish_test_run")
    async def finish_test_run(self, finish: FinishTestRun) -> TestRunResult:
        """A split run's end: the failing rows merged, the reports written and the
        outcomes recorded, once for the job. Idempotent: a retry after the parts were
        merged and removed keeps the merged file."""
        job_id = current_job_run().job_id
        await heartbeating(
            functools.partial(self._merge_failing_rows, job_id, finish),
            self.context.settings.heartbeat_interval_seconds,
        )
        await asyncio.to_thread(
            self._write_reports, finish.project_id, finish.suite_sha256, finish.verdicts
        )
        await asyncio.to_thread(self._record_outcomes, finish.project_id, finish.verdicts)
        return _result(finish.suite_sha256, finish.verdicts)

    async def _judge_all(
        self,
        evaluate: Callable[[DataTest, ArtifactWriter, threading.Event], Verdict],
        tests: Sequence[DataTest],
        state: TestRunCheckpoint,
        rows: ArtifactWriter,
        reporter: ProgressReporter,
        progress: Callable[[TestRunCheckpoint, TestRunCheckpoint], Progress],
    ) -> None:
        """Judge the tests after the checkpoint, heartbeating only positions whose failing
        rows are synced; at the end every test is judged and all its rows are synced."""
        durable = state.model_copy(deep=True)
        for test in tests[len(state.verdicts) :]:
            verdict = await reporter.in_thread(functools.partial(evaluate, test, rows))
            state.verdicts.append(verdict)
            if rows.checkpoint_due():
                state.rows_size = await reporter.in_thread(lambda _stop: rows.checkpoint())
                durable = state.model_copy(deep=True)
            await reporter.report(progress(state, durable))
        state.rows_size = await reporter.in_thread(lambda _stop: rows.checkpoint())

    def _snapshot(self, project_id: str) -> SuiteSnapshot:
        suite = self._suite(project_id)
        return SuiteSnapshot(suite=suite, sha256=sha256_of(suite.model_dump(mode="json")))

    def _suite(self, project_id: str) -> TestSuite:
        with self.context.db.transaction() as session:
            project = project_or_fail(session, project_id)
            if not project.test_suite:
                raise input_error(
                    f"Project '{project_id}' has no tests: set them with "
                    f"PUT /api/projects/{project_id}/tests.",
                    "NoTestSuite",
                )
            return TestSuite.model_validate({"tests": project.test_suite})

    def _check_reach(self, suite: TestSuite, scope: str | None) -> None:
        """Checked again at each run: the suite may have been set by someone who sees more
        than whoever runs it, or a project it points to may be gone since. Either answers
        as a project that does not exist, so that no other project's keys leak."""
        with self.context.db.transaction() as session:
            for other in sorted(suite.other_projects()):
                if scope is not None and other != scope:
                    raise input_error(str(ProjectNotFound(other)), "ProjectNotFound")
                project_or_fail(session, other)

    def _count(self, project_id: str, partition: Partition) -> int:
        """The records of a partition's key range (all, for the whole-dataset one)."""
        keys = partition.keys
        with self.context.db.transaction() as session:
            return count_records(
                session, project_id, after_key=keys.after_key, until_key=keys.until_key
            )

    def _evaluate(
        self,
        work: TestRunWork,
        test: DataTest,
        rows: ArtifactWriter,
        stop: threading.Event,
        *,
        records: int = 0,
    ) -> Verdict:
        """`records`: the partition's, counted once, which a whole-dataset test's are."""
        if work.partition is not None and test.whole_dataset:
            return self._judge_whole(work, test, rows, stop, records)
        keys = work.partition.keys if work.partition else None
        batches = _until(
            stop,
            record_batches(
                self.context.db,
                work.project_id,
                after_key=keys.after_key if keys else None,
                until_key=keys.until_key if keys else None,
            ),
        )
        target = getattr(test, "to_project", None)

        def present(keys: list[str]) -> set[str]:
            with self.context.db.transaction() as session:
                return keys_present(session, target, keys) if target else set()

        with FailingRows(rows, test.name) as sink:
            failures = Failures(sink.add, work.failing_rows_per_test)
            return test.evaluate(batches, present, failures)

    def _judge_whole(
        self,
        work: TestRunWork,
        test: DataTest,
        rows: ArtifactWriter,
        stop: threading.Event,
        total: int,
    ) -> Verdict:
        """A whole-dataset test of a split run, over the `total` records its partition
        counted: a `unique` test reads only the records whose value may repeat
        (`datasets/duplicates.py`)."""
        if isinstance(test, RowCount):
            return test.judge(total)
        if not isinstance(test, Unique):
            raise TypeError(f"{test.name} is judged per key range")
        found = repeated_value_batches(self.context.db, work.project_id, test.field, stop=stop)
        batches = _until(stop, found)
        with FailingRows(rows, test.name) as sink:
            return test.judge(batches, Failures(sink.add, work.failing_rows_per_test), total)

    def _merge_failing_rows(
        self, job_id: str, finish: FinishTestRun, stop: threading.Event
    ) -> None:
        """Each test's rows from every part in order, its first `failing_rows_per_test`:
        the file a single activity writes. The parts hold their tests' rows together, in
        suite order, so one pass over each, side by side, suffices."""
        storage = self.context.storage
        if merged_before(storage, job_id, finish.parts, FAILING_ROWS) is not None:
            return
        readers = [_Lines(storage.read_artifact(job_id, part)[1]) for part in finish.parts]
        merged = self.artifact(FAILING_ROWS, None)
        try:
            for verdict in finish.verdicts:
                prefix = _line_prefix(verdict.name)
                left = finish.failing_rows_per_test
                for reader in readers:
                    while (line := reader.peek()) is not None and line.startswith(prefix):
                        if stop.is_set():
                            raise Stopped
                        reader.take()
                        if left > 0:
                            merged.stream.write(line)
                            left -= 1
            merged.finish()
        finally:
            merged.close()
        for part in finish.parts:
            storage.delete_artifact(job_id, part)

    def _record_outcomes(self, project_id: str, verdicts: list[Verdict]) -> None:
        with self.context.db.transaction() as session:
            record_outcomes(session, project_id, current_job_run().job_id, utcnow(), verdicts)

    def _write_reports(self, project_id: str, suite_sha256: str, verdicts: list[Verdict]) -> None:
        junit = self.artifact(JUNIT, None)
        junit.stream.write(junit_xml(project_id, suite_sha256, verdicts))
        junit.finish()
        results = self.artifact(RESULTS, None)
        body = [verdict.model_dump() for verdict in verdicts]
        results.stream.write(json.dumps(body, indent=2, ensure_ascii=False).encode())
        results.finish()


def _result(suite_sha256: str, verdicts: list[Verdict]) -> TestRunResult:
    statuses = [verdict.status for verdict in verdicts]
    return TestRunResult(
        tests=len(verdicts),
        passed=statuses.count("pass"),
        warned=statuses.count("warn"),
        failed=statuses.count("error"),
        status=overall_status(statuses),
        results=verdicts,
        suite_sha256=suite_sha256,
        artifacts=[JUNIT, RESULTS, FAILING_ROWS],
    )


def merge_verdicts_of_parts(suite: TestSuite, parts: list[TestPartResult]) -> list[Verdict]:
    """A split run's verdicts, in suite order, as one activity would have judged them: a
    record-by-record test's merged over the key ranges (in key order), a whole-dataset
    test's as its partition judged it. Pure: the workflow calls it."""
    judged = [{verdict.name: verdict for verdict in part.verdicts} for part in parts]
    verdicts = []
    for test in suite.tests:
        found = [part[test.name] for part in judged if test.name in part]
        if test.whole_dataset:
            verdicts.append(found[0])  # judged once, by the whole-dataset partition
        else:
            assert isinstance(test, RowTest | Relationship)
            verdicts.append(merge_verdicts(test, found))
    return verdicts


def _part_progress(
    state: TestRunCheckpoint, durable: TestRunCheckpoint, *, records: int, total: int
) -> Progress:
    """A partition's progress: its records, once per test judged (the job's total is
    the records times the tests, so the partitions' sum fills one bar)."""
    last = state.verdicts[-1] if state.verdicts else None
    return Progress(
        done=records * len(state.verdicts),
        total=max(records * total, 1),
        message=f"{last.name}: {last.status}" if last else "No tests",
        checkpoint=durable.model_dump(mode="json"),
    )


def _progress(state: TestRunCheckpoint, durable: TestRunCheckpoint, *, total: int) -> Progress:
    """The tests judged so far, and `durable` as the checkpoint: the last position whose
    failing rows are synced."""
    last = state.verdicts[-1] if state.verdicts else None
    return Progress(
        done=len(state.verdicts),
        total=total,
        message=f"{last.name}: {last.status}" if last else "No tests",
        checkpoint=durable.model_dump(mode="json"),
    )


class FailingRows:
    """One test's failing rows as JSON Lines, written in pieces of `FLUSH_BYTES`; the rest
    is written when the test ends without error (a stopped test is judged again)."""

    def __init__(self, rows: ArtifactWriter, test_name: str) -> None:
        self._rows = rows
        self._test = test_name
        self._buffer: list[bytes] = []
        self._buffered = 0

    def __enter__(self) -> "FailingRows":
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self._flush()

    def add(self, row: dict[str, Any]) -> None:
        line = json.dumps({"test": self._test, **row}, ensure_ascii=False)
        encoded = (line + "\n").encode()
        self._buffer.append(encoded)
        self._buffered += len(encoded)
        if self._buffered >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._rows.stream.write(b"".join(self._buffer))
            self._buffer, self._buffered = [], 0


class Stopped(Exception):
    """The activity was cancelled while a test was reading records."""


def _line_prefix(test_name: str) -> bytes:
    """How every failing-rows line of the test begins (`FailingRows.add` puts its name
    first)."""
    return ('{"test": ' + json.dumps(test_name, ensure_ascii=False) + ",").encode()


class _Lines:
    """The lines of an artifact read in chunks, one at a time, with a look at the next."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._at = 0
        self._next: bytes | None = None

    def peek(self) -> bytes | None:
        if self._next is None:
            self._next = self._read()
        return self._next

    def take(self) -> None:
        self._next = None

    def _read(self) -> bytes | None:
        while (end := self._buffer.find(b"\n", self._at)) == -1:
            chunk = next(self._chunks, None)
            if chunk is None:
                line, self._buffer, self._at = self._buffer[self._at :], b"", 0
                return line or None
            self._buffer, self._at = self._buffer[self._at :] + chunk, 0
        line, self._at = self._buffer[self._at : end + 1], end + 1
        return line


def _until(
    stop: threading.Event, batches: Iterator[list[tuple[str, Any]]]
) -> Iterator[list[tuple[str, Any]]]:
    for batch in batches:
        if stop.is_set():
            raise Stopped
        yield batch


def junit_xml(project_id: str, suite_sha256: str, verdicts: list[Verdict]) -> bytes:
    """Errors are failures; a warning is a passed testcase whose `<system-out>` begins with
    `WARNING`, named again in the suite's properties: GitLab and Jenkins count it as
    passed (a warning does not fail a pipeline) and show its output beside it. Not
    `<skipped>`: the test did run."""
    warned = [verdict for verdict in verdicts if verdict.status == "warn"]
    suite = ElementTree.Element(
        "testsuite",
        name=f"data tests of {project_id}",
        tests=str(len(verdicts)),
        failures=str(sum(verdict.status == "error" for verdict in verdicts)),
        errors="0",
        skipped="0",
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="suite_sha256", value=suite_sha256)
    ElementTree.SubElement(properties, "property", name="warnings", value=str(len(warned)))
    for verdict in warned:
        ElementTree.SubElement(properties, "property", name="warning", value=verdict.name)
    for verdict in verdicts:
        case = ElementTree.SubElement(
            suite, "testcase", name=verdict.name, classname=f"{project_id}.{verdict.kind}"
        )
        examples = json.dumps(verdict.examples, ensure_ascii=False, indent=2)
        if verdict.status == "error":
            failure = ElementTree.SubElement(
                case, "failure", message=verdict.message, type=verdict.kind
            )
            failure.text = examples
        elif verdict.status == "warn":
            output = ElementTree.SubElement(case, "system-out")
            output.text = f"WARNING (warn_if {verdict.warn_if}): {verdict.message}\n{examples}"
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    return bytes(ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True))
