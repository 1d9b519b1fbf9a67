"""Workflows begun by an earlier version of the worker replay on this one: the jobs that
run during an upgrade go on (Temporal rebuilds their state by replaying their history).

`histories/` holds real histories recorded with earlier versions, at least one per job
type; add one whenever a change to workflow code needs a `workflow.patched` branch
(`tests/support/histories.py` records them, with the code before the change). Payloads
are decoded as the worker decodes them (the Pydantic converter): an activity's recorded
result must still parse as its result model.
"""

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from pastools_jobs.job_catalog import JOB_TYPES
from pastools_jobs.job_types import all_workflows

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("history", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_a_job_begun_by_an_earlier_version_replays(history: Path) -> None:
    replayer = Replayer(workflows=all_workflows(), data_converter=pydantic_data_converter)
    recorded = WorkflowHistory.from_json(history.stem, history.read_text())
    asyncio.run(replayer.replay_workflow(recorded))


def test_every_job_type_has_a_recorded_history() -> None:
    recorded = {
        json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"][
            "workflowType"
        ]["name"]
        for path in HISTORIES
    }
    missing = {spec.workflow_name for spec in JOB_TYPES} - recorded
    assert not missing, f"no recorded history of {sorted(missing)}"
