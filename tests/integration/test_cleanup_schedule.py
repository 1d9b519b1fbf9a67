"""A worker brings the cleanup schedule in line with its PASTOOLS_CLEANUP_* settings,
whatever an earlier worker created it with."""

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client

from pastools_jobs.config import Settings
from pastools_jobs.temporal import connect
from pastools_jobs.worker import ensure_cleanup_schedule
from tests.support.services import TemporalServer

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(temporal: TemporalServer) -> Settings:
    """A task queue, hence a schedule, of this test's own."""
    return temporal.settings.model_copy(update={"task_queue": f"cleanup-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
async def client(settings: Settings, temporal: TemporalServer) -> AsyncIterator[Client]:
    yield await connect(settings, "pastools-tests")
    temporal.cli("schedule", "delete", "--schedule-id", f"{settings.task_queue}-cleanup")


def describe(temporal: TemporalServer, settings: Settings) -> dict[str, Any]:
    """The schedule as `temporal schedule describe` shows it to an operator."""
    schedule_id = f"{settings.task_queue}-cleanup"
    described = temporal.cli("schedule", "describe", "--schedule-id", schedule_id, "-o", "json")
    schedule: dict[str, Any] = json.loads(described.stdout)["schedule"]
    return schedule


def max_age_days(schedule: dict[str, Any]) -> float:
    [payload] = schedule["action"]["startWorkflow"]["input"]["payloads"]
    return float(json.loads(base64.b64decode(payload["data"])))


async def test_new_cleanup_settings_update_the_schedule(
    client: Client, settings: Settings, temporal: TemporalServer
) -> None:
    first = settings.model_copy(update={"cleanup_interval_hours": 24, "cleanup_max_age_days": 30})
    await ensure_cleanup_schedule(client, first)
    assert describe(temporal, first)["spec"]["interval"] == [{"interval": "86400s"}]

    second = settings.model_copy(update={"cleanup_interval_hours": 6, "cleanup_max_age_days": 7.5})
    await ensure_cleanup_schedule(client, second)
    schedule = describe(temporal, second)
    assert schedule["spec"]["interval"] == [{"interval": "21600s"}]
    assert max_age_days(schedule) == 7.5


async def test_an_operators_pause_outlives_a_settings_update(
    client: Client, settings: Settings, temporal: TemporalServer
) -> None:
    await ensure_cleanup_schedule(client, settings)
    schedule_id = f"{settings.task_queue}-cleanup"
    temporal.cli("schedule", "toggle", "--schedule-id", schedule_id, "--pause", "--reason", "test")
    changed = settings.model_copy(update={"cleanup_interval_hours": 12.0})
    await ensure_cleanup_schedule(client, changed)
    schedule = describe(temporal, changed)
    assert schedule["spec"]["interval"] == [{"interval": "43200s"}]
    assert schedule["state"].get("paused") is True
