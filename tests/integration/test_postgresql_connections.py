"""On PostgreSQL the platform's normal work leaves no ERROR in the server's log, and
each process names its connections, so that an operator can tell them apart."""

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.jobs import JobsApi
from tests.support.services import PostgresCluster
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["postgresql"], indirect=True),
]

ROWS = 1000


def database_of(api: JobsApi) -> str:
    name = make_url(api.stack.database_url).database
    assert name is not None
    return name


def run_import(api: JobsApi, project: str, source: str) -> None:
    job = api.submit("import", project, source=source, key_column="id")
    done = api.wait_for_status(job["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", done["error"]
    assert done["result"]["imported"] == ROWS


def test_reimporting_existing_keys_logs_no_error_on_the_server(
    api: JobsApi, postgres: PostgresCluster
) -> None:
    project = api.create_project()
    source = api.write_import(
        project, f"{project}.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(ROWS))
    )
    logged_before = postgres.log.stat().st_size
    run_import(api, project, source)  # adds the keys
    run_import(api, project, source)  # finds every one of them there
    run_import(api, project, source)
    with postgres.log.open("rb") as log:
        log.seek(logged_before)
        lines = log.read().decode(errors="replace").splitlines()
    # The log line prefix names the database: only this stack's errors count.
    database = database_of(api)
    errors = [line for line in lines if f" {database} " in line and "ERROR:" in line]
    assert not errors, "\n".join(errors)


def connection_names(postgres: PostgresCluster, database: str) -> set[str]:
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    ) as connection:
        rows = connection.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
    return {name for (name,) in rows}


def processes(names: set[str]) -> set[str]:
    """The processes of `pastools-api host:pid`-style names, each named with its replica."""
    return {name.split()[0] for name in names if len(name.split()) == 2}


def test_each_process_names_its_database_connections(
    api: JobsApi, postgres: PostgresCluster
) -> None:
    job = api.submit("probe", api.create_project(), items=5)
    api.wait_for_status(job["id"], "completed")
    database = database_of(api)
    expected = {"pastools-api", "pastools-mirror", "pastools-worker"}
    wait_for(
        lambda: expected <= processes(connection_names(postgres, database)),
        what=f"connections named {sorted(expected)} in pg_stat_activity",
    )


def test_the_commands_name_their_database_connections_too(
    api: JobsApi, postgres: PostgresCluster
) -> None:
    """The doctor, the token commands and the migrations connect for a moment each: the
    server's log of every new connection names them."""
    database = database_of(api)
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute("ALTER SYSTEM SET log_connections = on")
        admin.execute("SELECT pg_reload_conf()")
        try:
            logged_before = postgres.log.stat().st_size
            doctor = api.stack.pastools("doctor")  # 1: other tests' jobs may differ
            assert doctor.returncode in (0, 1), doctor.stderr
            for command in (["tokens", "list"], ["migrate"]):
                ran = api.stack.pastools(*command)
                assert ran.returncode == 0, ran.stderr
        finally:
            admin.execute("ALTER SYSTEM RESET log_connections")
            admin.execute("SELECT pg_reload_conf()")
    with postgres.log.open() as log:
        log.seek(logged_before)
        named = {
            line.rsplit("application_name=", 1)[1].split()[0]
            for line in log
            if f" {database} " in line and "application_name=" in line
        }
    assert {"pastools-doctor", "pastools-cli", "pastools-migrate"} <= named, named
