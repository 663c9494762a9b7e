"""Open the LangGraph checkpointer that lives beside bidloop's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import enum
import sqlite3
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel

from bidloop.core.errors import StoreError
from bidloop.core.settings import Settings
from bidloop.graph.state import RunState

__all__ = ["checkpoint_serializer", "open_checkpointer", "state_types", "vacuum_checkpoints"]


@cache
def state_types() -> frozenset[type]:
    """Return every bidloop class a run's state can hold (models and enums, found from `RunState`'s hints).

    A checkpoint is data from disk or a database; only these classes (and LangGraph's own safe types)
    are rebuilt from it. Anything else is refused instead of imported.
    """
    found: set[type] = set()

    def walk(hint: Any) -> None:
        if isinstance(hint, type) and issubclass(hint, (BaseModel, enum.Enum)):
            if hint in found:
                return
            found.add(hint)
            if issubclass(hint, BaseModel):
                for field in hint.model_fields.values():
                    walk(field.annotation)
            return
        for arg in typing.get_args(hint):
            walk(arg)

    for hint in typing.get_type_hints(RunState, include_extras=True).values():
        walk(hint)
    return frozenset(t for t in found if t.__module__.startswith("bidloop."))


@cache
def checkpoint_serializer() -> JsonPlusSerializer:
    """Return LangGraph's serializer, restricted to its safe types plus `state_types()`."""
    allowed = sorted((t.__module__, t.__qualname__) for t in state_types())
    return JsonPlusSerializer(allowed_msgpack_modules=tuple(allowed))


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver[str]]:
    """Yield the checkpointer for the configured database.

    SQLite: `checkpoints.sqlite` in the data directory (beside `bidloop.sqlite`).
    PostgreSQL: the same database as the store, through `langgraph-checkpoint-postgres`.

    Raises:
        StoreError: If the checkpoint database cannot be opened.
    """
    url = settings.resolved_database_url
    if url.startswith(("postgresql://", "postgresql+psycopg://")):
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg import Connection
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise StoreError("PostgreSQL needs the postgres extra", hint='pip install "bidloop[postgres]"') from exc
        conn_string = "postgresql://" + url.split("://", 1)[1]
        # The connection settings of `PostgresSaver.from_conn_string`, plus our serializer.
        with Connection.connect(conn_string, autocommit=True, prepare_threshold=0, row_factory=dict_row) as pg:
            saver = PostgresSaver(pg, serde=checkpoint_serializer())
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = _sqlite_path(settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"cannot open the checkpoint database {path}: {exc}",
            hint="set data_dir (or BIDLOOP_DATA_DIR) to a folder you can write",
        ) from exc
    try:
        yield SqliteSaver(conn, serde=checkpoint_serializer())
    finally:
        conn.close()


def vacuum_checkpoints(settings: Settings) -> None:
    """Give the SQLite checkpoint file's freed pages back to the disk (PostgreSQL's autovacuum does its own)."""
    path = _sqlite_path(settings)
    if settings.resolved_database_url.startswith("postgresql") or not path.exists():
        return
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    finally:
        conn.close()


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "checkpoints.sqlite"
