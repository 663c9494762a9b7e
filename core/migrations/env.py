"""Run bidloop's Alembic migrations on the connection `Store.create_schema` hands over (no alembic.ini needed).

`Store.create_schema` builds the Alembic `Config` in code and passes its open connection as
`config.attributes["connection"]`; the same env works for SQLite and PostgreSQL. Offline mode (SQL
scripts) is supported for operators who apply migrations by hand: `sqlalchemy.url` must be set then.
"""

from __future__ import annotations

from alembic import context

from bidloop.core.store import Base

target_metadata = Base.metadata


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes["connection"]
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table for later migrations.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
