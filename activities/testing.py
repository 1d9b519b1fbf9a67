"""The test-run activity: a project's declarative data tests, one after another.

The suite is read once, when the job starts (`snapshot_test_suite`), and every attempt
runs that snapshot. Each test is a unit of progress and of checkpoint: a retried attempt
skips the tests already judged, which only means something if it runs the same suite. A
failing test is a result, not an error: the job completes with the verdicts (JSON) and a
JUnit XML report that CI tools read; both name the suite by its digest.
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
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.datasets.digest import sha256_of
from pastools_jobs.datasets.records import keys_present, record_batches
from pastools_jobs.datasets.testsuite import DataTest, TestSuite, Verdict
from pastools_jobs.domain import ProjectNotFound
from workflows.results import TestRunResult

JUNIT = "test-results.xml"
RESULTS = "test-results.json"


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


class TestRunCheckpoint(BaseModel):
    verdicts: list[Verdict] = Field(default_factory=list)


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
        total = len(suite.tests)
        for test in suite.tests[len(state.verdicts) :]:
            verdict = await reporter.in_thread(
                functools.partial(self._evaluate, work.project_id, test)
            )
            state.verdicts.append(verdict)
            outcome = "passed" if verdict.passed else "failed"
            await reporter.report(
                Progress(
                    done=len(state.verdicts),
                    total=total,
                    message=f"{test.name}: {outcome}",
                    checkpoint=state.model_dump(mode="json"),
                )
            )
        await asyncio.to_thread(
            self._write_reports,
            work.project_id,
            snapshot.sha256,
            state.verdicts,
        )
        failed = sum(not verdict.passed for verdict in state.verdicts)
        return TestRunResult(
            tests=total,
            passed=total - failed,
            failed=failed,
            results=state.verdicts,
            suite_sha256=snapshot.sha256,
            artifacts=[JUNIT, RESULTS],
        )

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

    def _evaluate(self, project_id: str, test: DataTest, stop: threading.Event) -> Verdict:
        batches = _until(stop, record_batches(self.context.db, project_id))
        target = getattr(test, "to_project", None)

        def present(keys: list[str]) -> set[str]:
            with self.context.db.transaction() as session:
                return keys_present(session, target, keys) if target else set()

        return test.evaluate(batches, present)

    def _write_reports(self, project_id: str, suite_sha256: str, verdicts: list[Verdict]) -> None:
        junit = self.artifact(JUNIT, None)
        junit.stream.write(junit_xml(project_id, suite_sha256, verdicts))
        junit.finish()
        results = self.artifact(RESULTS, None)
        body = [verdict.model_dump() for verdict in verdicts]
        results.stream.write(json.dumps(body, indent=2, ensure_ascii=False).encode())
        results.finish()


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
    failures = sum(not verdict.passed for verdict in verdicts)
    suite = ElementTree.Element(
        "testsuite",
        name=f"data tests of {project_id}",
        tests=str(len(verdicts)),
        failures=str(failures),
        errors="0",
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="suite_sha256", value=suite_sha256)
    for verdict in verdicts:
        case = ElementTree.SubElement(
            suite, "testcase", name=verdict.name, classname=f"{project_id}.{verdict.kind}"
        )
        if not verdict.passed:
            failure = ElementTree.SubElement(
                case, "failure", message=verdict.message, type=verdict.kind
            )
            failure.text = json.dumps(verdict.examples, ensure_ascii=False, indent=2)
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    return bytes(ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True))
