"""The schema comes from migrations alone, on SQLite and PostgreSQL, and matches the models."""

import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect

from pastools_jobs.db.migrate import alembic_config, upgrade_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    return request.getfixturevalue("postgres").create_database(f"migrate_{uuid.uuid4().hex[:12]}")


TABLES = {"jobs", "job_attempts", "projects", "records", "api_tokens"}


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
