"""How job workflows run their long activities: heartbeats, retries, real cancellation.

A module of its own, importing nothing of the platform, so that the benchmarks' raw
baseline (`bench/raw.py`) runs its activity with exactly these options.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

HEARTBEAT_TIMEOUT = timedelta(seconds=5)
"""A worker killed mid-activity is noticed, and the activity retried, after this long."""

WORK_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)
"""Transient failures retry; errors raised with `non_retryable=True` fail the job at once."""


def work_activity_options() -> dict[str, Any]:
    """Options for a job type's long activities, as keyword arguments of
    `workflow.execute_activity`."""
    return {
        "start_to_close_timeout": timedelta(hours=24),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": WORK_RETRY_POLICY,
        "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


def plan_activity_options() -> dict[str, Any]:
    """Options for the short activities that plan a job (its partitions, its columns):
    they heartbeat, so that a plan on a worker that died is retried elsewhere within the
    heartbeat timeout, not after a time limit sized for the slowest database."""
    return {
        "start_to_close_timeout": timedelta(hours=1),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": WORK_RETRY_POLICY,
    }
