"""Open the LangGraph checkpointer that lives beside bidloop's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from bidloop.core.errors import StoreError
from bidloop.core.settings import Settings

__all__ = ["open_checkpointer"]

# Only types reachable from the state schema may be deserialized from a checkpoint.
os.environ.setdefault("LANGGRAPH_STRICT_MSGPACK", "true")


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
        except ImportError as exc:
            raise StoreError("PostgreSQL needs the postgres extra", hint='pip install "bidloop[postgres]"') from exc
        conn_string = "postgresql://" + url.split("://", 1)[1]
        with PostgresSaver.from_conn_string(conn_string) as saver:
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(settings.data_dir) / "checkpoints.sqlite"
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
        yield SqliteSaver(conn)
    finally:
        conn.close()
