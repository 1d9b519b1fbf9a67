"""A migrated jobs database on each backend, for the mirror's write logic."""

from collections.abc import Iterator

import pytest

from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('unit-db') / 'jobs.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres").create_database("unit_mirror")
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def db(migrated_url: str) -> Iterator[Database]:
    database = Database(migrated_url, application_name="pastools-tests")
    yield database
    database.dispose()
