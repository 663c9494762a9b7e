"""Shared fixtures: settings in a temporary data dir, and a store over SQLite and PostgreSQL.

PostgreSQL comes from `BIDLOOP_TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/bidloop_test`);
the database is created when missing, and each test gets its own schema (dropped afterwards). Tests
that need it skip with the reason when no server answers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from bidloop.core.settings import Settings
from bidloop.core.store import Store

DEFAULT_TEST_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/bidloop_test"


def postgres_base_url() -> str:
    """Return the PostgreSQL URL the tests use."""
    return os.environ.get("BIDLOOP_TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


def _psycopg_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


_pg_state: dict[str, str | None] = {}


def postgres_unavailable_reason() -> str | None:
    """Return why PostgreSQL cannot be used (None when it can); creates the test database when missing."""
    if "reason" in _pg_state:
        return _pg_state["reason"]
    url = _psycopg_url(postgres_base_url())
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        _pg_state["reason"] = 'psycopg is not installed (pip install "bidloop[postgres]")'
        return _pg_state["reason"]
    reason: str | None = None
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            reason = f"no PostgreSQL at {url} ({str(exc).strip().splitlines()[0]}); set BIDLOOP_TEST_POSTGRES_URL"
        else:
            base, _, dbname = url.rpartition("/")
            dbname = dbname.split("?", 1)[0]
            try:
                with psycopg.connect(f"{base}/postgres", connect_timeout=3, autocommit=True) as admin:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except psycopg.Error as create_exc:
                reason = f"cannot create the test database {dbname!r}: {create_exc}"
    _pg_state["reason"] = reason
    return reason


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """Create a fresh schema in the test database; yield a URL whose connections use it; drop it afterwards."""
    import psycopg
    from psycopg import sql

    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    base = _psycopg_url(postgres_base_url())
    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    joiner = "&" if "?" in base else "?"
    try:
        yield f"{base}{joiner}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Settings:
    """Return default settings (three simulated accounts) with the data dir in a temporary folder."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Yield a PostgreSQL URL with a schema of its own (skips when no server answers)."""
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield a fresh database URL: a SQLite file, then a PostgreSQL schema (skipped when unreachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'data' / 'bidloop.sqlite').as_posix()}"
        return
    with postgres_schema_url() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """Yield a store with the newest schema, on SQLite and on PostgreSQL."""
    the_store = Store(database_url)
    try:
        yield the_store
    finally:
        the_store.dispose()
