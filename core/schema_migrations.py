"""Upgrade bidloop's database schema with Alembic, configured in code (no alembic.ini to find or ship).

`Store.create_schema` calls `upgrade_to_head` inside `migration_lock`. The migration scripts live in
`core/migrations/` (env.py, versions/); to add one after changing a model in `core/store.py`:

    alembic -x ... revision  # or write versions/000N_*.py by hand, down_revision = the previous head

and tests/unit/test_schedule_migrations.py checks that a migrated database matches the models exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite upgrades are not serialised across processes
    fcntl = None  # type: ignore[assignment]

__all__ = ["MIGRATIONS_DIR", "alembic_config", "head_revision", "migration_lock", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory (env.py, versions/)."""

_PG_LOCK_KEY = 0x6269646C6F6F70
"""PostgreSQL advisory lock key serialising schema upgrades ("bidloop" in hex)."""


@lru_cache(maxsize=1)
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """Return the newest migration's revision id."""
    head: str = _script().get_current_head()
    return head


def alembic_config(conn: Connection | None = None) -> Any:
    """Return an Alembic `Config` for bidloop's migrations, bound to `conn` when given."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def upgrade_to_head(conn: Connection) -> None:
    """Upgrade the schema on `conn` (inside its transaction) to the newest revision.

    A database created by `create_all` before migrations existed (tables, no `alembic_version`) holds
    revision 0001's tables: it is stamped at 0001, then upgraded.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    from bidloop.core.store import RunRow

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    current = MigrationContext.configure(conn).get_current_revision()
    if current == head_revision():
        return
    cfg = alembic_config(conn)
    if current is None and inspect(conn).has_table(RunRow.__tablename__):
        command.stamp(cfg, "0001")
    command.upgrade(cfg, "head")


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock file beside a SQLite database file during an upgrade (no-op for other URLs)."""
    raw = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    if raw in ("", ":memory:") or fcntl is None:
        yield
        return
    path = Path(raw).expanduser()
    with open(path.with_name(path.name + ".migrate-lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
