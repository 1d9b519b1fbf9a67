"""Which progress signals a job's work sends its workflow: each signal is a history event,
so a job sends one per 10 % step, plus one a heartbeat interval in when nothing was said
yet (that one makes JobStatus `running` for a job the API submitted)."""

from activities.progress import SignalPlan


def test_each_new_ten_percent_step_is_due_once() -> None:
    plan = SignalPlan()
    assert plan.due(5) is None, "below the first step, and before the interval"
    assert plan.due(12) == 10
    plan.sending(10)
    assert plan.due(19) is None
    assert plan.due(37) == 30, "steps skipped between reports are not sent one by one"
    plan.sending(30)
    assert plan.due(100) is None, "completion sets JobProgress 100 itself"


def test_a_job_untold_after_one_interval_owes_a_first_signal() -> None:
    plan = SignalPlan()
    assert plan.due(0) is None
    plan.interval_passed = True
    assert plan.untold
    assert plan.due(0) == 0
    assert plan.due(100) == 0, "a final report after the interval still says running"
    plan.sending(0)
    assert not plan.untold
    assert plan.due(3) is None


def test_a_step_already_said_running_needs_no_first_signal() -> None:
    plan = SignalPlan()
    plan.sending(plan.due(20) or 0)
    plan.interval_passed = True
    assert plan.due(25) is None


def test_a_signal_that_failed_is_due_again() -> None:
    plan = SignalPlan(interval_passed=True)
    before = plan.sending(0)
    plan.failed(before)
    assert plan.untold and plan.due(4) == 0
    plan.sending(0)
    before = plan.sending(plan.due(40) or 0)
    plan.failed(before)
    assert plan.due(41) == 40
