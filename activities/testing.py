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
"""

import asyncio
import functools
import json
import threading
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from pydantic import BaseModel, Field
from temporalio import activity

from activities.context import ActivityGroup
from activities.errors import input_error, project_or_fail
from activities.job import current_job_run
from activities.progress import ProgressReporter
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.digest import sha256_of
from pastools_jobs.datasets.outcomes import record_outcomes
from pastools_jobs.datasets.records import keys_present, record_batches
from pastools_jobs.datasets.testsuite import DataTest, Failures, TestSuite, Verdict
from pastools_jobs.datasets.thresholds import overall_status
from pastools_jobs.domain import ProjectNotFound
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
            await self._judge_all(work, suite, state, rows, reporter)
            await reporter.report(_progress(state, len(suite.tests), state), force=True)
            await reporter.in_thread(lambda _stop: rows.finish())
        finally:
            rows.close()
        await asyncio.to_thread(
            self._write_reports, work.project_id, snapshot.sha256, state.verdicts
        )
        await asyncio.to_thread(self._record_outcomes, work.project_id, state.verdicts)
        statuses = [verdict.status for verdict in state.verdicts]
        return TestRunResult(
            tests=len(suite.tests),
            passed=statuses.count("pass"),
            warned=statuses.count("warn"),
            failed=statuses.count("error"),
            status=overall_status(statuses),
            results=state.verdicts,
            suite_sha256=snapshot.sha256,
            artifacts=[JUNIT, RESULTS, FAILING_ROWS],
        )

    async def _judge_all(
        self,
        work: TestRunWork,
        suite: TestSuite,
        state: TestRunCheckpoint,
        rows: ArtifactWriter,
        reporter: ProgressReporter,
    ) -> None:
        """Judge the tests after the checkpoint, heartbeating only positions whose failing
        rows are synced; at the end every test is judged and all its rows are synced."""
        total = len(suite.tests)
        durable = state.model_copy(deep=True)
        for test in suite.tests[len(state.verdicts) :]:
            verdict = await reporter.in_thread(functools.partial(self._evaluate, work, test, rows))
            state.verdicts.append(verdict)
            if rows.checkpoint_due():
                state.rows_size = await reporter.in_thread(lambda _stop: rows.checkpoint())
                durable = state.model_copy(deep=True)
            await reporter.report(_progress(state, total, durable))
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

    def _evaluate(
        self, work: TestRunWork, test: DataTest, rows: ArtifactWriter, stop: threading.Event
    ) -> Verdict:
        batches = _until(stop, record_batches(self.context.db, work.project_id))
        target = getattr(test, "to_project", None)

        def present(keys: list[str]) -> set[str]:
            with self.context.db.transaction() as session:
                return keys_present(session, target, keys) if target else set()

        with FailingRows(rows, test.name) as sink:
            failures = Failures(sink.add, work.failing_rows_per_test)
            return test.evaluate(batches, present, failures)

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


def _progress(state: TestRunCheckpoint, total: int, durable: TestRunCheckpoint) -> Progress:
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
