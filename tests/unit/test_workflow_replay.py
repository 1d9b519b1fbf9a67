"""Workflows begun by an earlier version of the worker replay on this one: the jobs that
run during an upgrade go on (Temporal rebuilds their state by replaying their history).

`histories/` holds real histories recorded with earlier versions; add one whenever a
change to workflow code needs a `workflow.patched` branch. Payloads are decoded as the
worker decodes them (the Pydantic converter): an activity's recorded result must still
parse as its result model.
"""

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from pastools_jobs.job_types import all_workflows

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("history", HISTORIES, ids=[path.stem for path in HISTORIES])
def test_a_job_begun_by_an_earlier_version_replays(history: Path) -> None:
    replayer = Replayer(workflows=all_workflows(), data_converter=pydantic_data_converter)
    recorded = WorkflowHistory.from_json(history.stem, history.read_text())
    asyncio.run(replayer.replay_workflow(recorded))
