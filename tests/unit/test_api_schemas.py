"""A job's result is typed per job type: the OpenAPI document says what each type's result
holds, so a generated client knows it, and a job read back parses as its type's model."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from pastools_jobs.api.app import create_app
from pastools_jobs.api.schemas import JobOut, job_out
from pastools_jobs.config import Settings
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_catalog import IMPORT, JOB_TYPES
from pastools_jobs.job_spec import JobTypeSpec
from pastools_jobs.repository import queued_job

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    document: dict[str, Any] = create_app(Settings()).openapi()
    return document["components"]["schemas"]


@pytest.mark.parametrize("spec", JOB_TYPES, ids=[spec.name for spec in JOB_TYPES])
def test_each_job_type_documents_its_result(
    schemas: dict[str, Any], spec: JobTypeSpec[Any, Any]
) -> None:
    job = schemas[f"{spec.workflow_name}Out"]["properties"]
    assert job["type"]["const"] == spec.name
    refs = [option.get("$ref") for option in job["result"]["anyOf"]]
    assert f"#/components/schemas/{spec.result_model.__name__}" in refs
    result = schemas[spec.result_model.__name__]["properties"]
    assert set(result) == set(spec.result_model.model_fields)


def test_an_import_result_says_what_was_imported(schemas: dict[str, Any]) -> None:
    result = schemas["ImportResult"]["properties"]
    assert {"imported", "skipped", "errors", "resumed_from_row"} <= set(result)


def test_a_completed_job_read_back_is_its_types_variant() -> None:
    stored = {
        "source": "people.csv",
        "format": "csv",
        "imported": 2,
        "skipped": 1,
        "errors": [{"line": 3, "reason": "ragged row"}],
        "resumed_from_row": 0,
    }
    row = queued_job("j1", IMPORT.name, "p", {"source": "people.csv"}, NOW)
    row.status, row.result, row.updated_at = JobStatus.COMPLETED, stored, NOW

    answer = json.loads(job_out(row, Settings(), NOW).model_dump_json())
    read: Any = TypeAdapter(JobOut).validate_python(answer)

    assert type(read).__name__ == "ImportJobOut"
    assert isinstance(read.result, IMPORT.result_model)
    assert read.result.imported == 2 and read.result.errors[0].line == 3
    shown = answer["result"]
    assert {name: shown[name] for name in stored if name != "errors"} == {
        name: value for name, value in stored.items() if name != "errors"
    }
    assert [(e["line"], e["reason"]) for e in shown["errors"]] == [(3, "ragged row")]
    assert shown["mode"] == "upsert", "a result from before modes reads as an upsert's"


def test_a_result_that_no_longer_reads_as_its_model_is_shown_as_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One such row (a result model changed without defaults) must not fail its page."""
    row = queued_job("j2", IMPORT.name, "p", {"source": "people.csv"}, NOW)
    row.status, row.result, row.updated_at = JobStatus.COMPLETED, {"items": 1}, NOW

    answer = job_out(row, Settings(), NOW)

    assert (answer.status, answer.result) == (JobStatus.COMPLETED, None)
    assert "j2: its result does not read as import" in caplog.text
