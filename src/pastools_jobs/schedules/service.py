"""What users do to a project's schedules (no HTTP here). Temporal holds the schedules;
each change is made there first, then written to the audit trail in a transaction of its
own, never one held across the Temporal call."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.audit.trail import Actor, AuditAction, record
from pastools_jobs.config import Settings
from pastools_jobs.contracts import JOB_TYPE, PROJECT_ID, JobRequest, queued_attributes
from pastools_jobs.datasets.projects import get_project
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import (
    InvalidJobInput,
    InvalidParameters,
    InvalidSchedule,
    JobStatus,
    ScheduleExists,
    ScheduleNotFound,
)
from pastools_jobs.job_catalog import SPEC_BY_TYPE, SPEC_BY_WORKFLOW_NAME
from pastools_jobs.schedules.schemas import (
    Overlap,
    ScheduleChange,
    ScheduleCreate,
    ScheduleOut,
    ScheduleRunOut,
)
from pastools_jobs.storage.base import Storage
from pastools_jobs.temporal import JobLauncher, unavailable_as_domain_error

SCHEDULE_ID_PREFIX = "pastools-schedule"
MEMO_KEY = "pastools_schedule"
"""The action's memo (so every run's too): which schedule, and its cron expressions as
given (Temporal keeps them only translated into calendars)."""
MAX_LISTED = 100
_TIME_APPENDED = len("-2026-01-01T00:00:00Z")
"""What Temporal appends to the action's workflow id for each run."""
_MAX_JOB_ID = 200

_OVERLAP = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}
_OVERLAP_NAME = {policy: name for name, policy in _OVERLAP.items()}


def temporal_schedule_id(project_id: str, schedule_id: str) -> str:
    """The project is part of the id: no schedule is reached through another project."""
    return f"{SCHEDULE_ID_PREFIX}/{project_id}/{schedule_id}"


def run_workflow_id(project_id: str, schedule_id: str) -> str:
    """The workflow id of the schedule's runs, before Temporal appends each run's time; the
    result is the job's id, which must fit the jobs table and a URL path segment."""
    workflow_id = f"sched:{project_id}:{schedule_id}"
    if len(workflow_id) + _TIME_APPENDED > _MAX_JOB_ID:
        raise InvalidSchedule(
            f"The project id and schedule id are too long together: at most "
            f"{_MAX_JOB_ID - _TIME_APPENDED - len('sched::')} characters."
        )
    return workflow_id


@dataclass(frozen=True)
class _Plan:
    """What a schedule runs and when, as the platform knows it."""

    type: str
    params: dict[str, Any]
    scope: str | None
    cron: list[str] | None
    interval_seconds: int | None
    time_zone: str | None
    overlap: Overlap
    catchup_window_seconds: int

    def spec(self) -> ScheduleSpec:
        if self.cron is not None:
            return ScheduleSpec(cron_expressions=self.cron, time_zone_name=self.time_zone)
        assert self.interval_seconds is not None
        every = timedelta(seconds=self.interval_seconds)
        return ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=every)], time_zone_name=self.time_zone
        )

    def policy(self) -> SchedulePolicy:
        window = timedelta(seconds=self.catchup_window_seconds)
        return SchedulePolicy(overlap=_OVERLAP[self.overlap], catchup_window=window)

    def audited(self, schedule_id: str) -> dict[str, Any]:
        return {
            "schedule_id": schedule_id,
            "type": self.type,
            "cron": self.cron,
            "interval_seconds": self.interval_seconds,
            "time_zone": self.time_zone,
            "overlap": self.overlap.value,
            "catchup_window_seconds": self.catchup_window_seconds,
        }


class ScheduleService:
    def __init__(self, client: Client, db: Database, storage: Storage, settings: Settings) -> None:
        self._client = client
        self._launcher = JobLauncher.of(client, settings)
        self._db = db
        self._storage = storage
        self._settings = settings

    async def create(
        self, project_id: str, body: ScheduleCreate, actor: Actor, scope: str | None
    ) -> ScheduleOut:
        """Its runs are checked now as a submission would be (type, parameters, import
        source), and run with the creator's view of the data (`scope`)."""
        await self._db.run(lambda s: get_project(s, project_id))
        plan = _Plan(
            type=body.type,
            params=await self._checked_params(project_id, body.type, body.params),
            scope=scope,
            cron=body.cron,
            interval_seconds=body.interval_seconds,
            time_zone=body.time_zone,
            overlap=body.overlap,
            catchup_window_seconds=body.catchup_window_seconds,
        )
        schedule = Schedule(
            action=self._action(project_id, body.id, plan),
            spec=plan.spec(),
            policy=plan.policy(),
            state=ScheduleState(paused=body.paused, note=body.note),
        )
        attributes = TypedSearchAttributes(
            [SearchAttributePair(PROJECT_ID, project_id), SearchAttributePair(JOB_TYPE, plan.type)]
        )
        with _refusals(body.id):
            await self._client.create_schedule(
                temporal_schedule_id(project_id, body.id),
                schedule,
                search_attributes=attributes,
            )
        details = {**plan.audited(body.id), "paused": body.paused}
        await self._audit(actor, AuditAction.SCHEDULE_CREATE, project_id, details, body.note)
        return await self.get(project_id, body.id)

    async def of_project(self, project_id: str) -> list[ScheduleOut]:
        """The project's schedules by id; Temporal's list lags a moment behind a change."""
        await self._db.run(lambda s: get_project(s, project_id))
        prefix = temporal_schedule_id(project_id, "")
        ids: list[str] = []
        with unavailable_as_domain_error():
            async for listed in await self._client.list_schedules(f"ProjectId = '{project_id}'"):
                if listed.id.startswith(prefix) and len(ids) < MAX_LISTED:
                    ids.append(listed.id.removeprefix(prefix))
        views = await asyncio.gather(*(self._still_there(project_id, i) for i in ids))
        return sorted((view for view in views if view is not None), key=lambda view: view.id)

    async def get(self, project_id: str, schedule_id: str) -> ScheduleOut:
        return await self._view(
            project_id, schedule_id, await self._describe(project_id, schedule_id)
        )

    async def _still_there(self, project_id: str, schedule_id: str) -> ScheduleOut | None:
        """A listed schedule, unless it was deleted since the (lagging) list was read."""
        try:
            return await self.get(project_id, schedule_id)
        except ScheduleNotFound:
            return None

    async def update(
        self,
        project_id: str,
        schedule_id: str,
        changes: ScheduleChange,
        actor: Actor,
        scope: str | None,
    ) -> ScheduleOut:
        """Change the fields given. The runs then read data with the editor's view of it."""
        plans: list[_Plan] = []

        async def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
            plan = await self._changed(project_id, current.description, changes, scope)
            plans.append(plan)
            schedule = current.description.schedule
            schedule.action = self._action(project_id, schedule_id, plan)
            schedule.spec = plan.spec()
            schedule.policy = plan.policy()
            return ScheduleUpdate(schedule)

        with _refusals(schedule_id):
            await self._handle(project_id, schedule_id).update(updated)
        details = plans[-1].audited(schedule_id)
        await self._audit(actor, AuditAction.SCHEDULE_UPDATE, project_id, details)
        return await self.get(project_id, schedule_id)

    async def delete(self, project_id: str, schedule_id: str, actor: Actor) -> None:
        """Its runs stay in the jobs table, naming it."""
        with _refusals(schedule_id):
            await self._handle(project_id, schedule_id).delete()
        details = {"schedule_id": schedule_id}
        await self._audit(actor, AuditAction.SCHEDULE_DELETE, project_id, details)

    async def pause(
        self, project_id: str, schedule_id: str, note: str | None, actor: Actor
    ) -> ScheduleOut:
        with _refusals(schedule_id):
            await self._handle(project_id, schedule_id).pause(note=note or "Paused.")
        details = {"schedule_id": schedule_id}
        await self._audit(actor, AuditAction.SCHEDULE_PAUSE, project_id, details, note)
        return await self.get(project_id, schedule_id)

    async def unpause(
        self, project_id: str, schedule_id: str, note: str | None, actor: Actor
    ) -> ScheduleOut:
        with _refusals(schedule_id):
            await self._handle(project_id, schedule_id).unpause(note=note or "Unpaused.")
        details = {"schedule_id": schedule_id}
        await self._audit(actor, AuditAction.SCHEDULE_UNPAUSE, project_id, details, note)
        return await self.get(project_id, schedule_id)

    async def trigger(self, project_id: str, schedule_id: str, actor: Actor) -> ScheduleOut:
        """A run now, under the schedule's overlap policy: with `skip`, none while one runs."""
        with _refusals(schedule_id):
            await self._handle(project_id, schedule_id).trigger()
        details = {"schedule_id": schedule_id}
        await self._audit(actor, AuditAction.SCHEDULE_TRIGGER, project_id, details)
        return await self.get(project_id, schedule_id)

    def _handle(self, project_id: str, schedule_id: str) -> ScheduleHandle:
        return self._client.get_schedule_handle(temporal_schedule_id(project_id, schedule_id))

    async def _describe(self, project_id: str, schedule_id: str) -> ScheduleDescription:
        with _refusals(schedule_id):
            return await self._handle(project_id, schedule_id).describe()

    async def _checked_params(
        self, project_id: str, job_type: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The parameters as a submission of `job_type` would have them, or a 422 (a 400
        for an import source outside the project's files)."""
        spec = SPEC_BY_TYPE.get(job_type)
        if spec is None or not spec.submittable:
            names = ", ".join(sorted(s.name for s in SPEC_BY_TYPE.values() if s.submittable))
            raise InvalidJobInput(f"'{job_type}' is not a job type a schedule can run: {names}.")
        try:
            checked: dict[str, Any] = spec.params_model.model_validate(params).model_dump(
                mode="json"
            )
        except ValidationError as error:
            raise InvalidParameters(job_type, error) from None
        source = checked.get("source")
        if isinstance(source, str):
            await asyncio.to_thread(self._storage.check_source, project_id, source)
        return checked

    async def _changed(
        self,
        project_id: str,
        description: ScheduleDescription,
        changes: ScheduleChange,
        scope: str | None,
    ) -> _Plan:
        current = await self._plan(description)
        given = changes.model_fields_set
        timing_given = changes.cron is not None or changes.interval_seconds is not None
        params = current.params if changes.params is None else changes.params
        return _Plan(
            type=current.type,
            params=await self._checked_params(project_id, current.type, params),
            scope=scope,
            cron=changes.cron if timing_given else current.cron,
            interval_seconds=changes.interval_seconds if timing_given else current.interval_seconds,
            time_zone=changes.time_zone if "time_zone" in given else current.time_zone,
            overlap=changes.overlap or current.overlap,
            catchup_window_seconds=changes.catchup_window_seconds or current.catchup_window_seconds,
        )

    def _action(
        self, project_id: str, schedule_id: str, plan: _Plan
    ) -> ScheduleActionStartWorkflow:
        """Each run is a job as the API would start it (its search attributes, a JobRequest);
        the run records its own row, which names the schedule."""
        request = JobRequest(
            project_id=project_id,
            params=plan.params,
            scope=plan.scope,
            attributes_set=True,
            schedule_id=schedule_id,
        )
        return ScheduleActionStartWorkflow(
            SPEC_BY_TYPE[plan.type].workflow_name,
            request,
            id=run_workflow_id(project_id, schedule_id),
            task_queue=self._settings.task_queue,
            memo={MEMO_KEY: {"id": schedule_id, "cron": plan.cron}},
            typed_search_attributes=queued_attributes(plan.type, project_id),
            priority=self._launcher.place(project_id),  # a fair share, as submitted jobs
        )

    async def _plan(self, description: ScheduleDescription) -> _Plan:
        schedule = description.schedule
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        request = await self._decoded(action.args[0], JobRequest)
        memo = await self._decoded((action.memo or {})[MEMO_KEY], dict)
        spec = schedule.spec
        interval = spec.intervals[0].every if spec.intervals else None
        window = schedule.policy.catchup_window or timedelta(days=365)
        return _Plan(
            type=SPEC_BY_WORKFLOW_NAME[action.workflow].name,
            params=request.params,
            scope=request.scope,
            cron=memo.get("cron"),
            interval_seconds=None if interval is None else int(interval.total_seconds()),
            time_zone=spec.time_zone_name or None,
            overlap=_OVERLAP_NAME.get(schedule.policy.overlap, Overlap.SKIP),
            catchup_window_seconds=int(window.total_seconds()),
        )

    async def _decoded(self, payload: Any, kind: type[Any]) -> Any:
        assert isinstance(payload, Payload)
        [value] = await self._client.data_converter.decode([payload], [kind])
        return value

    async def _view(
        self, project_id: str, schedule_id: str, description: ScheduleDescription
    ) -> ScheduleOut:
        plan = await self._plan(description)
        info = description.info
        recent = list(reversed(info.recent_actions))
        job_ids = [
            r.action.workflow_id
            for r in recent
            if isinstance(r.action, ScheduleActionExecutionStartWorkflow)
        ]
        statuses = await self._db.run(lambda s: _statuses(s, job_ids))
        state = description.schedule.state
        return ScheduleOut(
            id=schedule_id,
            project_id=project_id,
            type=plan.type,
            params=plan.params,
            cron=plan.cron,
            interval_seconds=plan.interval_seconds,
            time_zone=plan.time_zone,
            overlap=plan.overlap,
            catchup_window_seconds=plan.catchup_window_seconds,
            paused=state.paused,
            note=state.note,
            next_run_times=list(info.next_action_times[:5]),
            recent_runs=[
                ScheduleRunOut(
                    job_id=job_id,
                    scheduled_at=result.scheduled_at,
                    started_at=result.started_at,
                    status=statuses.get(job_id),
                )
                for job_id, result in zip(job_ids, recent, strict=True)
            ],
            running=len(info.running_actions),
            skipped_for_overlap=info.num_actions_skipped_overlap,
            missed_catchup_window=info.num_actions_missed_catchup_window,
            created_at=info.created_at,
            updated_at=info.last_updated_at,
            temporal_schedule_id=description.id,
            schedule_url=self._settings.schedule_url(description.id),
        )

    async def _audit(
        self,
        actor: Actor,
        action: AuditAction,
        project_id: str,
        details: dict[str, Any],
        reason: str | None = None,
    ) -> None:
        def audit(session: Session) -> None:
            record(session, actor, action, project_id=project_id, reason=reason, details=details)

        await self._db.run(audit)


def _statuses(session: Session, job_ids: list[str]) -> dict[str, JobStatus]:
    if not job_ids:
        return {}
    rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
    return {job_id: JobStatus(status) for job_id, status in rows}


@contextmanager
def _refusals(schedule_id: str) -> Iterator[None]:
    """Temporal's refusals in the platform's words: no such schedule (404), one of that id
    already (409), a spec it cannot read (422, with its reason)."""
    try:
        with unavailable_as_domain_error():
            yield
    except ScheduleAlreadyRunningError:
        raise ScheduleExists(schedule_id) from None
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise ScheduleNotFound(schedule_id) from None
        if error.status is RPCStatusCode.INVALID_ARGUMENT:
            raise InvalidSchedule(error.message) from None
        raise
