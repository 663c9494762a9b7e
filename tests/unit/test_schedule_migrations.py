"""Alembic migrations build exactly the store's schema, on SQLite and PostgreSQL, and adopt older databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from bidloop.core.schema_migrations import head_revision
from bidloop.core.store import Base, Store


def schema_differences(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def current_revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_a_new_database_is_migrated_to_exactly_the_models_schema(store: Store) -> None:
    assert schema_differences(store) == []
    assert current_revision(store) == head_revision()


def test_opening_a_migrated_database_again_changes_nothing(database_url: str) -> None:
    first = Store(database_url)
    first.start_run("r1", mode="live", trigger="cli", accounts=["a"])
    first.dispose()
    again = Store(database_url)
    assert again.get_run("r1").status == "running"
    assert current_revision(again) == head_revision()
    again.dispose()


def test_a_database_created_before_migrations_is_adopted_and_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    old_tables = [t for name, t in Base.metadata.tables.items() if name != "snapshots"]
    Base.metadata.create_all(engine, tables=old_tables)  # what the first release's `create_all` made
    engine.dispose()
    store = Store(url)
    assert schema_differences(store) == []
    assert current_revision(store) == head_revision()
    store.dispose()


def test_two_processes_creating_one_new_sqlite_database_at_once_both_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    code = f"from bidloop.core.store import Store; Store({url!r}).dispose()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(2)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    store = Store(url)
    assert schema_differences(store) == []
    assert inspect(store.engine).has_table("account_locks")
    store.dispose()
