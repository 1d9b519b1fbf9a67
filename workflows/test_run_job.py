"""test_run: Run the project's data tests, one after another.

A run over more records than a partition holds (`partition_rows`) is split
(`workflows/partitioned.py`): the tests that judge one record at a time (`not_null`,
`accepted_values`, `regex`, `range`, `relationship`) run over each key range in parallel,
and the whole-dataset tests (`unique`, `row_count`) in one more partition over all
records (started first), the database counting and finding the values that repeat.
Their verdicts are merged in the workflow (`merge_verdicts_of_parts`), then one activity
merges the failing rows test by test, writes the reports and records the outcomes: the
same result and files as one activity's.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.partitions import PartitionActivities
    from activities.testing import (
        FinishTestRun,
        TestRunActivities,
        TestRunWork,
        merge_verdicts_of_parts,
    )
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import TEST_RUN
    from pastools_jobs.partitions import Partition, PartitionPlan
    from workflows.lifecycle import JobContext
    from workflows.params import TestRunParams
    from workflows.partitioned import PartitionedJobWorkflow
    from workflows.results import TestRunResult
    from workflows.work_options import work_activity_options

TEST_PARTITIONS_PATCH = "partitioned-test-runs"
"""Runs begun before it ran every test in one activity, planning nothing; they replay so."""


@workflow.defn(name=TEST_RUN.workflow_name)
class TestRunJob(PartitionedJobWorkflow[TestRunParams, TestRunResult]):
    spec = TEST_RUN
    activity_groups = (TestRunActivities, PartitionActivities)

    @workflow.run
    async def run(self, request: JobRequest) -> TestRunResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: TestRunParams) -> TestRunResult:
        work = TestRunWork(project_id=job.project_id, scope=job.scope, **params.model_dump())
        work.snapshot = await self.snapshot(TestRunActivities.snapshot_test_suite, work)
        if work.snapshot is not None and workflow.patched(TEST_PARTITIONS_PATCH):
            plan = await self.plan_records(job.project_id)
            if plan.split:
                return await self._run_split(work, plan)
        return await self.run_work(TestRunActivities.run_data_tests, work)

    async def _run_split(self, work: TestRunWork, plan: PartitionPlan) -> TestRunResult:
        """The whole-dataset tests in one partition, the record-by-record ones over each
        key range, all in one window; then their verdicts and failing rows merged."""
        assert work.snapshot is not None
        suite = work.snapshot.suite
        works = partition_works(work, plan)
        parts = await self.run_partitions(
            TestRunActivities.judge_test_partition, works, plan.window
        )
        finish = FinishTestRun(
            project_id=work.project_id,
            suite_sha256=work.snapshot.sha256,
            verdicts=merge_verdicts_of_parts(suite, parts),
            parts=[part.failing_rows for part in parts],
            failing_rows_per_test=work.failing_rows_per_test,
        )
        return await workflow.execute_activity_method(
            TestRunActivities.finish_test_run, finish, **work_activity_options()
        )


def partition_works(work: TestRunWork, plan: PartitionPlan) -> list[TestRunWork]:
    """One work over all records with the whole-dataset tests (if any), first: it is the
    longest, and the window starts partitions in order; then one per key range, in key
    order, with the record-by-record tests (none if there are none). The job's progress
    counts each record once per test."""
    assert work.snapshot is not None
    tests = work.snapshot.suite.tests
    by_record = [test.name for test in tests if not test.whole_dataset]
    whole = [test.name for test in tests if test.whole_dataset]
    ranges = plan.partitions if by_record else []
    first = 1 if whole else 0
    count = first + len(ranges)
    job_total = plan.partitions[0].job_total * len(tests)
    works = []
    if whole:
        part = Partition(index=0, count=count, job_total=job_total)
        works.append(work.model_copy(update={"partition": part, "tests": whole}))
    for at, keys in enumerate(ranges, start=first):
        part = keys.model_copy(update={"index": at, "count": count, "job_total": job_total})
        works.append(work.model_copy(update={"partition": part, "tests": by_record}))
    return works
