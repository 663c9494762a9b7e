"""Alembic migrations build exactly the store's schema, on SQLite and PostgreSQL, and adopt older databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from bidloop.core.schema_migrations import alembic_config, head_revision
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


def first_release_schema(url: str) -> None:
    """Create what the first release's `create_all` made: revision 0001's tables, without `alembic_version`."""
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def test_a_database_created_before_migrations_is_adopted_and_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    first_release_schema(url)
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


def test_rewards_matured_before_restatement_existed_keep_their_value_as_the_first(database_url: str) -> None:
    url = Store(database_url, create=False).url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(
            text(
                "INSERT INTO runs (run_id, started_at, mode, trigger, accounts, status, summary) "
                "VALUES ('r0', CURRENT_TIMESTAMP, 'live', 'cli', '{}', 'completed', '{}')"
            )
        )
        for i, (reward, matured) in enumerate([(2.0, "CURRENT_TIMESTAMP"), (None, "NULL")]):
            conn.execute(
                text(
                    "INSERT INTO trajectories (run_id, action_id, account_id, entity_key, policy_version, state, "
                    f"action, reward, matures_at, matured_at) VALUES ('r0', 'a{i}', 'acct', 'k', 'v', '{{}}', "
                    f"'{{}}', :reward, CURRENT_TIMESTAMP, {matured})"
                ),
                {"reward": reward},
            )
    engine.dispose()
    store = Store(database_url)
    assert current_revision(store) == head_revision() and schema_differences(store) == []
    rows = {t.action_id: t for t in store.trajectories()}
    assert (rows["a0"].first_reward, rows["a0"].reward, rows["a0"].restatements) == (2.0, 2.0, 0)
    assert (rows["a1"].first_reward, rows["a1"].outcome_date, rows["a1"].restatements) == (None, None, 0)
    store.dispose()
