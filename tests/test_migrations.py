"""The schema comes from migrations alone, on SQLite and PostgreSQL, and matches the models."""

import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from pastools_jobs.db.migrate import alembic_config, upgrade_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    return request.getfixturevalue("postgres").create_database(f"migrate_{uuid.uuid4().hex[:12]}")


TABLES = {
    "jobs",
    "job_attempts",
    "job_counts",
    "projects",
    "records",
    "api_tokens",
    "mirror_lease",
    "audit_entries",
    "webhooks",
    "webhook_deliveries",
    "job_holds",
    "job_logs",
    "running_slots",
    "data_test_outcomes",
    "import_stagings",
    "staged_records",
}


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_and_upgrade_again(empty_url: str) -> None:
    upgrade_database(empty_url)
    assert tables(empty_url) == TABLES
    command.downgrade(alembic_config(empty_url), "base")
    assert tables(empty_url) == set()
    upgrade_database(empty_url)
    assert tables(empty_url) == TABLES


def test_models_and_migrations_agree(empty_url: str) -> None:
    upgrade_database(empty_url)
    command.check(alembic_config(empty_url))


def test_counts_are_backfilled_from_existing_jobs(empty_url: str) -> None:
    upgrade_database(empty_url, "0003")
    engine = create_engine(empty_url)
    try:
        with engine.begin() as connection:
            for index, (project, status) in enumerate(
                [("a", "completed"), ("a", "completed"), ("a", "failed"), ("b", "queued")]
            ):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, type, project_id, status, params, attempt, "
                        "progress_done, created_at, updated_at) VALUES (:id, 'probe', :project, "
                        ":status, '{}', 1, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": f"job-{index}", "project": project, "status": status},
                )
        upgrade_database(empty_url)
        with engine.connect() as connection:
            counts = set(
                connection.execute(text("SELECT project_id, status, type, n FROM job_counts"))
            )
    finally:
        engine.dispose()
    assert counts == {
        ("a", "completed", "probe", 2),
        ("a", "failed", "probe", 1),
        ("b", "queued", "probe", 1),
    }
