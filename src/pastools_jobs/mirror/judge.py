"""The one judge of whether a job's row disagrees with Temporal, and how.

The reconciler and the doctor both ask `classify`: first of what visibility lists (to
pick suspects cheaply, since visibility lags), then of what `describe` says (the truth
for one workflow) before anything is repaired. They differ in their `Grace` (the doctor
leaves rows that may be catching up alone, the reconciler repairs at once) and in what
the reconciler leaves to the doctor: orphan rows, and finished rows awaiting their run's
close.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pastools_jobs.contracts import JobEvent
from pastools_jobs.domain import JobStatus
from pastools_jobs.repository import RowState

ORPHAN_GRACE = timedelta(seconds=30)
"""A queued row with no workflow for this long lost it to a crash (between the commit and
the start); before that, the API that wrote it may still be starting it."""


class Difference(StrEnum):
    """What is wrong; the values are the kinds `pastools doctor` reports."""

    MISSING_ROW = "missing-row"
    WRONG_STATUS = "wrong-status"
    RUN_MISMATCH = "run-mismatch"
    NOT_STARTED = "not-started"
    ORPHAN_ROW = "orphan-row"
    COUNT_DRIFT = "count-drift"
    """Of a project's statistics, not of one row: `classify` never returns it."""


class Run(Protocol):
    """A run as the judge reads it, from visibility's list or from `describe`."""

    @property
    def run_id(self) -> str: ...

    @property
    def closed_as(self) -> JobStatus | None:
        """The job status its close means; None while the run is open."""

    @property
    def closed_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class ObservedRun:
    """What `describe` (and the close event) said of a job's latest run."""

    run_id: str
    closed_as: JobStatus | None
    closed_at: datetime | None

    @classmethod
    def of(cls, event: JobEvent | None) -> "ObservedRun | None":
        if event is None:
            return None
        closed = event.status.is_terminal
        return cls(event.run_id, event.status if closed else None, event.at if closed else None)


@dataclass(frozen=True)
class Grace:
    settle: timedelta
    """A row written this recently may only be catching up with its workflow (or have
    recorded its end an instant before the workflow closed): it is not judged yet."""
    rows_kept_for: timedelta
    """A closed run without a row, closed longer ago than this, lost its row to cleanup."""


def classify(
    row: RowState | None,
    run: Run | None,
    archived: Collection[str],
    now: datetime,
    grace: Grace,
) -> Difference | None:
    """How `row` disagrees with `run`, the job's latest run (None: Temporal has none);
    None when they agree. `archived`: the run ids of the row's past attempts."""
    if row is None:
        if run is None or _cleaned_up(run, now, grace):
            return None
        return Difference.MISSING_ROW
    if now - row.updated_at < grace.settle:
        return None
    if run is None or run.run_id in archived:
        return _without_workflow(row, now)
    if row.run_id is not None and run.run_id != row.run_id:
        return Difference.RUN_MISMATCH
    # Same run, or the run the API started, which the row learns from its work's first
    # report. An open run's row follows its work's reports (queued until the work
    # begins); a finished row whose run is still open is one (see `awaits_close`).
    if run.closed_as is None:
        return Difference.WRONG_STATUS if row.status.is_terminal else None
    return None if run.closed_as == row.status else Difference.WRONG_STATUS


def awaits_close(row: RowState | None, run: Run | None) -> bool:
    """A finished row whose own run is still open: never moved back to running, it
    follows the run once the run closes, so there is nothing to repair until then. A newer
    open run (a retry whose row write was lost) is another matter: the row takes it up."""
    return (
        row is not None
        and row.status.is_terminal
        and run is not None
        and run.closed_as is None
        and row.run_id in (None, run.run_id)
    )


def _without_workflow(row: RowState, now: datetime) -> Difference | None:
    if row.status.is_terminal:
        return None  # its workflow passed Temporal's retention
    if row.status is JobStatus.QUEUED and row.run_id is None:
        return None if now - row.updated_at < ORPHAN_GRACE else Difference.NOT_STARTED
    return Difference.ORPHAN_ROW


def _cleaned_up(run: Run, now: datetime, grace: Grace) -> bool:
    return run.closed_at is not None and run.closed_at <= now - grace.rows_kept_for
