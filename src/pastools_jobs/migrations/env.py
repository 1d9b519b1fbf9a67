"""Alembic environment: migrations run against the URL that `alembic_config` sets."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from pastools_jobs.db.models import Base
from pastools_jobs.logs import connection_name

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    # Named like the platform's other connections, so that an operator can tell them apart.
    postgresql = make_url(url).get_backend_name() == "postgresql"
    engine = create_engine(
        url,
        connect_args={"application_name": connection_name("pastools-migrate")}
        if postgresql
        else {},
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
