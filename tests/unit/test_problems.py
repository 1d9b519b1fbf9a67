"""Database errors as problem details: an outage is a 503 to retry, a bug is a 500."""

import sqlite3

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pastools_jobs.api.problems import install_problem_handlers

STATEMENT = "SELECT secret FROM jobs"


def client_raising(error: Exception) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "error",
    [
        OperationalError(STATEMENT, {}, sqlite3.OperationalError("connection refused")),
        InterfaceError(STATEMENT, {}, sqlite3.InterfaceError("connection closed")),
        DBAPIError(STATEMENT, {}, sqlite3.DatabaseError("gone"), connection_invalidated=True),
        PoolTimeout("QueuePool limit reached"),
    ],
)
def test_an_unreachable_database_is_503_with_retry_after(error: Exception) -> None:
    response = client_raising(error).get("/fails")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"].startswith("application/problem+json")
    assert STATEMENT not in response.text


def test_a_bad_statement_is_500_without_its_sql() -> None:
    error = ProgrammingError(STATEMENT, {}, sqlite3.ProgrammingError("no such column"))
    response = client_raising(error).get("/fails")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    assert STATEMENT not in response.text and "no such column" not in response.text
