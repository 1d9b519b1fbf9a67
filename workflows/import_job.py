"""import: a CSV, JSON Lines or Parquet file into the project's records (upserted by key,
inserted only where new, or replacing them all)."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.import_planning import ImportPlan, ImportPlanning
    from activities.importing import (
        REJECTED_ROWS,
        ImportActivities,
        ImportWork,
        merge_import_results,
    )
    from activities.partitions import PartitionActivities
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.datasets.readers import CsvOptions, Shaping
    from pastools_jobs.job_catalog import IMPORT
    from workflows.lifecycle import JobContext
    from workflows.params import ImportParams
    from workflows.partitioned import PartitionedJobWorkflow
    from workflows.results import ImportResult
    from workflows.shielding import uncancellable
    from workflows.work_options import plan_activity_options, work_activity_options

IMPORT_PARTITIONS_PATCH = "partitioned-import"
"""Runs begun before it planned nothing and ran one activity; they replay so."""
MERGE_AFTER_MOVE_PATCH = "import-merge-after-the-move"
"""Runs begun before it let a cancel cut the merge after the move short."""


def _cancel_cuts_the_merge() -> bool:
    """Asked only when a cancel arrives: a replay of a run begun before the patch."""
    return not workflow.patched(MERGE_AFTER_MOVE_PATCH)


@workflow.defn(name=IMPORT.workflow_name)
class ImportJob(PartitionedJobWorkflow[ImportParams, ImportResult]):
    spec = IMPORT
    activity_groups = (ImportActivities, ImportPlanning, PartitionActivities)

    @workflow.run
    async def run(self, request: JobRequest) -> ImportResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ImportParams) -> ImportResult:
        """A big keyed file: byte ranges (CSV, JSON Lines) or row groups (Parquet) staged
        in parallel, then one move and one merged result; anything else one activity."""
        work = ImportWork(
            project_id=job.project_id,
            source=params.source,
            format=params.format,
            key_column=params.key_column,
            csv=CsvOptions(params.delimiter, params.quotechar, params.encoding),
            on_error=params.on_error,
            max_examples=params.max_examples,
            batch_rows=params.batch_rows,
            shaping=Shaping(
                tuple(params.null_values),
                params.column_types or {},
                params.infer_types,
                params.infer_rows,
            ),
            project_types=True,
            mode=params.mode,
            max_rejected=params.max_rejected,
        )
        plan = await self._plan(work)
        if plan.work is None or not plan.plan.split:
            return await self.run_work(ImportActivities.import_records, work)
        return await self._partitioned(plan, plan.work)

    async def _plan(self, work: ImportWork) -> ImportPlan:
        """None planned for runs begun before imports were split."""
        if not workflow.patched(IMPORT_PARTITIONS_PATCH):
            return ImportPlan()
        return await workflow.execute_activity_method(
            ImportPlanning.plan_import,
            work,
            **plan_activity_options(),
        )

    async def _partitioned(self, plan: ImportPlan, work: ImportWork) -> ImportResult:
        """Stage every partition, then move; on any failure or cancel before the move, once
        no partition runs any more, the staging is discarded: the records stay as they
        were. A cancel during the move stops it only before its transaction (the activity
        then ends cancelled); once that has committed, the move and the merge after it run
        to their end: a job cancelled after its records changed would say otherwise than
        what happened to them."""
        partitions = plan.plan.partitions
        works = [work.model_copy(update={"partition": part}) for part in partitions]
        try:
            parts = await self.run_partitions(
                ImportActivities.import_records, works, plan.plan.window
            )
            move = await workflow.execute_activity_method(
                ImportActivities.move_staged,
                work.model_copy(update={"partition": partitions[-1]}),
                **work_activity_options(),
            )
        except BaseException:
            await uncancellable(
                workflow.execute_activity_method(
                    ImportActivities.discard_staged, work, **work_activity_options()
                )
            )
            raise
        rejected = [r.rejected_rows for r in [*parts, move] if r.rejected_rows is not None]
        if rejected:
            merged = self.merge_artifacts(rejected, REJECTED_ROWS, work.max_rejected)
            await uncancellable(merged, unless=_cancel_cuts_the_merge)
        return merge_import_results(
            parts, move, plan.detected, (work.max_examples, work.max_rejected)
        )
