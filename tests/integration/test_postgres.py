"""On PostgreSQL: the same schema, the LangGraph Postgres checkpointer, scheduled runs and leases.

Skips with the reason when no server answers at `BIDLOOP_TEST_POSTGRES_URL` (default 127.0.0.1:5432).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bidloop.core.schedules import ScheduleConfig
from bidloop.core.settings import Settings
from bidloop.core.store import Store
from bidloop.graph.builder import build_graph
from bidloop.graph.checkpoint import open_checkpointer
from bidloop.graph.runner import run_cycle
from bidloop.graph.scheduler import Scheduler

pytestmark = pytest.mark.postgres


def pg_settings(tmp_path: Path, url: str, **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url, **extra)


def test_a_live_run_on_postgres_keeps_its_ledger_and_its_checkpoints_there(postgres_url: str, tmp_path: Path) -> None:
    settings = pg_settings(tmp_path, postgres_url)
    store = Store(settings.resolved_database_url)
    assert store.engine.dialect.name == "postgresql"
    outcome = run_cycle(settings, mode="live", store=store)
    assert outcome.status == "completed"
    assert store.get_run(outcome.run_id).status == "completed"
    assert store.writes_of(outcome.run_id), "the run wrote its ledger to PostgreSQL"
    with open_checkpointer(settings) as saver:
        assert type(saver).__name__ == "PostgresSaver"
        state = build_graph().compile(checkpointer=saver).get_state({"configurable": {"thread_id": outcome.run_id}})
        assert state.values["run_id"] == outcome.run_id and not state.next  # the thread ran to its end
    assert not (tmp_path / "data" / "checkpoints.sqlite").exists()
    store.dispose()


def test_a_scheduled_run_on_postgres_takes_and_releases_its_accounts_leases(postgres_url: str, tmp_path: Path) -> None:
    schedule = ScheduleConfig(name="intraday", accounts=["sim-meta"], cron=["0 * * * *"], time_zone="UTC")
    settings = pg_settings(tmp_path, postgres_url, schedules=[schedule])
    store = Store(settings.resolved_database_url)
    leased_during_run: list[list[str]] = []

    def run_and_look(st: Settings, **kw: Any) -> Any:
        leased_during_run.append([lk.account_id for lk in store.account_locks()])
        return run_cycle(st, **kw)

    now = datetime.now(UTC).replace(minute=1, second=0, microsecond=0)
    scheduler = Scheduler(settings, store, run_fn=run_and_look)
    [attempt] = scheduler.tick(now)
    assert attempt.status == "completed"
    assert leased_during_run == [["sim-meta"]]
    assert store.account_locks() == []
    assert store.get_run(attempt.run_id or "").trigger == "schedule"
    assert scheduler.tick(now + timedelta(minutes=5)) == []
    store.dispose()


def test_pruning_on_postgres_drops_a_finished_runs_snapshots_and_checkpoints(postgres_url: str, tmp_path: Path) -> None:
    from bidloop.graph.retention import prune_finished_runs

    settings = pg_settings(tmp_path, postgres_url)
    store = Store(settings.resolved_database_url)
    run_id = run_cycle(settings, mode="live", store=store).run_id
    assert store.load_snapshots(run_id)
    result = prune_finished_runs(settings, store, older_than_days=1e-9, vacuum=True)
    assert run_id in result.runs
    assert store.load_snapshots(run_id) == {}
    assert store.writes_of(run_id), "the write ledger is kept"
    with open_checkpointer(settings) as saver:
        assert not build_graph().compile(checkpointer=saver).get_state({"configurable": {"thread_id": run_id}}).values
    store.dispose()
