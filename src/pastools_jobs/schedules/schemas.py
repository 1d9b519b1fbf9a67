"""The schedules' API models: what a client sends and reads."""

import functools
import zoneinfo
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from pastools_jobs.domain import JobStatus

SCHEDULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MIN_CATCHUP_SECONDS = 10
"""Temporal's own floor for a catch-up window."""
NOTE_MAX_LENGTH = 1000


class Overlap(StrEnum):
    """What a run due while the previous one still runs does."""

    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW_ALL = "allow_all"


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _iana_zone(name: str) -> str:
    if name not in _known_zones():
        raise ValueError(f"'{name}' is not an IANA time zone name, e.g. 'Europe/Berlin' or 'UTC'")
    return name


ScheduleId = Annotated[
    str,
    Field(
        pattern=SCHEDULE_ID_PATTERN,
        description="A letter or digit, then at most 62 letters, digits, '_' or '-'; unique "
        "in the project.",
    ),
]
Cron = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(
        min_length=1,
        max_length=10,
        description="Cron expressions (`minute hour day-of-month month day-of-week`), read "
        "in `time_zone`; a run is due at every time any of them names.",
    ),
]
IntervalSeconds = Annotated[
    int, Field(ge=1, le=MAX_INTERVAL_SECONDS, description="A run every this many seconds.")
]
TimeZone = Annotated[
    str,
    Field(max_length=100, description="IANA name the cron expressions are read in; UTC if none."),
    AfterValidator(_iana_zone),
]
CatchupSeconds = Annotated[
    int,
    Field(
        ge=MIN_CATCHUP_SECONDS,
        le=MAX_INTERVAL_SECONDS,
        description="How late a run missed while Temporal was down may still start.",
    ),
]
Note = Annotated[str, Field(max_length=NOTE_MAX_LENGTH)]


class _Timing(BaseModel):
    """Either cron expressions or an interval: one of them, never both."""

    cron: Cron | None = None
    interval_seconds: IntervalSeconds | None = None

    @model_validator(mode="after")
    def _not_both(self) -> Self:
        if self.cron is not None and self.interval_seconds is not None:
            raise ValueError("give either cron or interval_seconds, not both")
        return self


class ScheduleCreate(_Timing):
    model_config = ConfigDict(extra="forbid")

    id: ScheduleId
    type: str = Field(min_length=1, max_length=50, description="The job type each run is.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The job type's parameters, checked as a submission's."
    )
    time_zone: TimeZone | None = None
    overlap: Overlap = Overlap.SKIP
    catchup_window_seconds: CatchupSeconds = 3600
    paused: bool = False
    note: Note | None = None

    @model_validator(mode="after")
    def _timed(self) -> Self:
        if self.cron is None and self.interval_seconds is None:
            raise ValueError("give cron or interval_seconds")
        return self


class ScheduleChange(_Timing):
    """Only the fields given change; new cron expressions replace an interval and the
    other way round; `time_zone: null` means UTC."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] | None = None
    time_zone: TimeZone | None = None
    overlap: Overlap | None = None
    catchup_window_seconds: CatchupSeconds | None = None


class ScheduleNoteRequest(BaseModel):
    """The optional body of a pause or unpause: why, shown as the schedule's note."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ScheduleRunOut(BaseModel):
    job_id: str
    scheduled_at: datetime
    started_at: datetime
    status: JobStatus | None = Field(description="The job's status; null until its row exists.")


class ScheduleOut(BaseModel):
    id: str
    project_id: str
    type: str
    params: dict[str, Any]
    cron: list[str] | None
    interval_seconds: int | None
    time_zone: str | None
    overlap: Overlap
    catchup_window_seconds: int
    paused: bool
    note: str | None
    next_run_times: list[datetime] = Field(description="The next few times a run is due.")
    recent_runs: list[ScheduleRunOut] = Field(description="The latest runs, newest first.")
    running: int = Field(description="Runs of this schedule still going.")
    skipped_for_overlap: int = Field(description="Runs not started: one was still going.")
    missed_catchup_window: int = Field(description="Runs not started: too late to catch up.")
    created_at: datetime
    updated_at: datetime | None
    temporal_schedule_id: str = Field(description="Its id in Temporal (`temporal schedule`).")
    schedule_url: str = Field(description="The schedule in the Temporal Web UI.")
