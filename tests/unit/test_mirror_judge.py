"""The one judge of disagreements between a row and Temporal: every case, no services.

The reconciler and the doctor both act on what `classify` says; they differ only in the
grace they give (and the reconciler leaves orphan rows to the doctor).
"""

from datetime import UTC, datetime, timedelta

import pytest

from pastools_jobs.contracts import JobEvent
from pastools_jobs.domain import JobStatus
from pastools_jobs.mirror.doctor import SETTLE_GRACE
from pastools_jobs.mirror.judge import (
    ORPHAN_GRACE,
    Difference,
    Grace,
    ObservedRun,
    awaits_close,
    classify,
)
from pastools_jobs.mirror.reconciler import GRACE as RECONCILER
from pastools_jobs.repository import RowState

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DOCTOR = Grace(settle=SETTLE_GRACE, rows_kept_for=timedelta(days=30))
OLD = NOW - timedelta(hours=1)
"""Written long enough ago for every grace."""

QUEUED, RUNNING = JobStatus.QUEUED, JobStatus.RUNNING
COMPLETED, FAILED, CANCELLED = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED


def row(status: JobStatus, run_id: str | None = "a", updated_at: datetime = OLD) -> RowState:
    return RowState("job", run_id, status, 1, updated_at)


def run(
    run_id: str = "a", closed_as: JobStatus | None = None, ago: timedelta | None = None
) -> ObservedRun:
    closed_at = NOW - (ago or timedelta(minutes=1)) if closed_as else None
    return ObservedRun(run_id, closed_as, closed_at)


CASES: list[tuple[str, RowState | None, ObservedRun | None, set[str], Difference | None]] = [
    # (what, row, latest run, archived runs, difference)
    ("nothing anywhere", None, None, set(), None),
    ("an open workflow without a row", None, run(), set(), Difference.MISSING_ROW),
    (
        "a recently closed workflow without a row",
        None,
        run(closed_as=COMPLETED),
        set(),
        Difference.MISSING_ROW,
    ),
    (
        "a workflow closed before the cleanup age, its row cleaned up",
        None,
        run(closed_as=COMPLETED, ago=timedelta(days=31)),
        set(),
        None,
    ),
    ("a running row, its run running", row(RUNNING), run(), set(), None),
    (
        "a queued row, its run begun (the work's first report is on its way)",
        row(QUEUED),
        run(),
        set(),
        None,
    ),
    ("a row the API just submitted, its run open", row(QUEUED, None), run(), set(), None),
    ("a finished row, its run closed alike", row(COMPLETED), run(closed_as=COMPLETED), set(), None),
    (
        "a running row, its run terminated",
        row(RUNNING),
        run(closed_as=FAILED),
        set(),
        Difference.WRONG_STATUS,
    ),
    (
        "a submitted row, its run closed before the work reported",
        row(QUEUED, None),
        run(closed_as=COMPLETED),
        set(),
        Difference.WRONG_STATUS,
    ),
    (
        "a completed row, its closed run cancelled",
        row(COMPLETED),
        run(closed_as=CANCELLED),
        set(),
        Difference.WRONG_STATUS,
    ),
    ("a finished row, its run still open", row(COMPLETED), run(), set(), Difference.WRONG_STATUS),
    (
        "a row of another run than the latest",
        row(RUNNING, "a"),
        run("b"),
        set(),
        Difference.RUN_MISMATCH,
    ),
    (
        "a finished row, a newer run closed",
        row(CANCELLED, "a"),
        run("b", COMPLETED),
        set(),
        Difference.RUN_MISMATCH,
    ),
    ("a queued row never started", row(QUEUED, None), None, set(), Difference.NOT_STARTED),
    (
        "a queued row never started, only an archived run",
        row(QUEUED, None),
        run("old", FAILED),
        {"old"},
        Difference.NOT_STARTED,
    ),
    (
        "a queued row without a workflow, within the orphan grace",
        row(QUEUED, None, NOW - ORPHAN_GRACE + timedelta(seconds=1)),
        None,
        set(),
        None,
    ),
    (
        "a running row whose workflow Temporal does not have",
        row(RUNNING),
        None,
        set(),
        Difference.ORPHAN_ROW,
    ),
    (
        "a queued row naming a run Temporal does not have",
        row(QUEUED),
        None,
        set(),
        Difference.ORPHAN_ROW,
    ),
    ("a finished row whose workflow passed retention", row(FAILED), None, set(), None),
]


@pytest.mark.parametrize(
    ("row_state", "latest", "archived", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify(
    row_state: RowState | None,
    latest: ObservedRun | None,
    archived: set[str],
    expected: Difference | None,
) -> None:
    assert classify(row_state, latest, archived, NOW, DOCTOR) == expected


def test_every_difference_of_a_row_has_a_case() -> None:
    found = {case[-1] for case in CASES}
    assert found >= set(Difference) - {Difference.COUNT_DRIFT}


@pytest.mark.parametrize("status", list(JobStatus))
def test_the_doctor_leaves_a_row_written_just_now_alone_open_or_finished(
    status: JobStatus,
) -> None:
    fresh = row(status, updated_at=NOW - SETTLE_GRACE + timedelta(seconds=1))
    for latest in (None, run(closed_as=CANCELLED), run("b")):
        assert classify(fresh, latest, set(), NOW, DOCTOR) is None


def test_the_reconciler_judges_a_fresh_row_at_once() -> None:
    """A terminate must show within a sweep, however recently the work reported."""
    fresh = row(RUNNING, updated_at=NOW - timedelta(milliseconds=100))
    assert classify(fresh, run(closed_as=FAILED), set(), NOW, RECONCILER) is (
        Difference.WRONG_STATUS
    )


def test_the_reconciler_takes_any_closed_run_without_a_row_for_cleaned_up() -> None:
    """The API's cleanup deletes finished jobs of any age; only an open run gets a row."""
    assert (
        classify(None, run(closed_as=COMPLETED, ago=timedelta(0)), set(), NOW, RECONCILER) is None
    )
    assert classify(None, run(), set(), NOW, RECONCILER) is Difference.MISSING_ROW


def test_a_finished_row_awaits_the_close_of_its_open_run() -> None:
    assert awaits_close(row(COMPLETED), run())
    assert not awaits_close(row(COMPLETED), run(closed_as=CANCELLED))
    assert not awaits_close(row(RUNNING), run())
    assert not awaits_close(None, run())


def test_a_finished_row_takes_up_a_newer_open_run() -> None:
    """A retry whose new run Temporal accepted, and whose row write was then lost."""
    failed = row(FAILED, run_id="a")
    assert not awaits_close(failed, run("b"))
    assert classify(failed, run("b"), set(), NOW, RECONCILER) is Difference.RUN_MISMATCH


def test_an_observed_run_is_open_until_its_event_is_final() -> None:
    def observed(status: JobStatus) -> ObservedRun | None:
        event = JobEvent(
            job_id="job",
            run_id="a",
            job_type="probe",
            project_id="p",
            status=status,
            at=NOW,
            created_at=OLD,
        )
        return ObservedRun.of(event)

    assert observed(RUNNING) == ObservedRun("a", None, None)
    assert observed(CANCELLED) == ObservedRun("a", CANCELLED, NOW)
    assert ObservedRun.of(None) is None
