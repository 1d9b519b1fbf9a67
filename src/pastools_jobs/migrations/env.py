"""Alembic environment: migrations run against the URL that `alembic_config` sets."""

from typing import Any

from alembic import context
from sqlalchemy import Index, create_engine
from sqlalchemy.engine import Dialect, make_url

from pastools_jobs.db.models import Base
from pastools_jobs.logs import connection_name

config = context.config


def _exists_on(dialect: Dialect) -> Any:
    """Autogenerate's filter: an index the models make on other databases only (`ddl_if`,
    such as PostgreSQL's GIN index) is not missing here."""

    def include(item: Any, _name: Any, kind: str, _reflected: bool, _other: Any) -> bool:
        condition = getattr(item, "_ddl_if", None) if kind == "index" else None
        if not isinstance(item, Index) or condition is None or condition.dialect is None:
            return True
        return bool(condition.dialect == dialect.name)

    return include


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
            include_object=_exists_on(connection.dialect),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
