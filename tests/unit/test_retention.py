"""Old finished runs drop their snapshots and checkpoints; the record (ledger, decisions, audit, reports) stays."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bidloop.cli import main as cli_main
from bidloop.core.errors import InputError
from bidloop.core.schedules import ScheduleConfig
from bidloop.core.settings import Settings
from bidloop.core.store import Store, utcnow
from bidloop.graph.builder import build_graph
from bidloop.graph.checkpoint import open_checkpointer
from bidloop.graph.retention import PRUNED_UNTIL, maybe_prune, prune_finished_runs
from bidloop.graph.runner import run_cycle
from bidloop.graph.scheduler import Scheduler
from bidloop.guardrails.audit import verify


def checkpointed(settings: Settings, run_id: str) -> bool:
    with open_checkpointer(settings) as saver:
        state = build_graph().compile(checkpointer=saver).get_state({"configurable": {"thread_id": run_id}})
    return bool(state.values)


@pytest.fixture
def three_runs(tmp_path: Path) -> tuple[Settings, Store, list[str]]:
    """Two completed live runs and one that failed, all finished just now."""
    settings = Settings(data_dir=tmp_path / "data", policy="heuristic")
    runs = [run_cycle(settings, mode="live", trigger="test").run_id for _ in range(3)]
    store = Store(settings.resolved_database_url)
    store.finish_run(runs[2], status="failed", error="interrupted for the test")
    return settings, store, runs


def test_prune_drops_snapshots_and_checkpoints_of_old_completed_runs_and_keeps_the_record(
    three_runs: tuple[Settings, Store, list[str]],
) -> None:
    settings, store, (done1, done2, failed) = three_runs
    ledger_before = {r: [(w.action_id, w.status) for w in store.writes_of(r)] for r in (done1, done2)}
    assert all(store.load_snapshots(r) for r in (done1, done2, failed))

    result = prune_finished_runs(settings, store, now=utcnow() + timedelta(days=31))

    assert result.runs == [done1, done2]
    assert result.snapshot_rows == 2 * len(settings.accounts)
    assert result.checkpoint_threads == 2
    assert store.load_snapshots(done1) == {} and store.load_snapshots(done2) == {}
    assert not checkpointed(settings, done1) and not checkpointed(settings, done2)
    # A failed run may still be resumed: it keeps everything.
    assert store.load_snapshots(failed) and checkpointed(settings, failed)
    # The record stays.
    assert {r: [(w.action_id, w.status) for w in store.writes_of(r)] for r in (done1, done2)} == ledger_before
    assert store.decisions_of(done1) and store.get_run(done1).report_md
    assert verify(store).ok
    store.dispose()


def test_runs_younger_than_the_retention_are_kept_and_a_second_pass_visits_only_new_runs(
    three_runs: tuple[Settings, Store, list[str]],
) -> None:
    settings, store, (done1, _done2, _failed) = three_runs
    assert prune_finished_runs(settings, store, now=utcnow() + timedelta(days=29)).runs == []
    assert store.load_snapshots(done1)

    # A tiny age: the cutoff is (almost) now, on the real clock the runs finish on.
    first = prune_finished_runs(settings, store, older_than_days=1e-9)
    assert len(first.runs) == 2
    assert prune_finished_runs(settings, store, older_than_days=1e-9).runs == []
    assert prune_finished_runs(settings, store, older_than_days=1e-9, dry_run=True).runs == [], "already pruned"
    assert store.get_control(PRUNED_UNTIL) is not None

    later = run_cycle(settings, mode="live", trigger="test", store=store).run_id
    assert prune_finished_runs(settings, store, older_than_days=1e-9).runs == [later]
    store.dispose()


def test_a_dry_run_deletes_nothing_and_does_not_move_the_mark(three_runs: tuple[Settings, Store, list[str]]) -> None:
    settings, store, (done1, done2, _failed) = three_runs
    result = prune_finished_runs(settings, store, now=utcnow() + timedelta(days=31), dry_run=True)
    assert result.dry_run and result.runs == [done1, done2] and result.snapshot_rows == 0
    assert store.load_snapshots(done1) and checkpointed(settings, done1)
    assert store.get_control(PRUNED_UNTIL) is None
    store.dispose()


def test_an_unset_retention_prunes_nothing_by_itself_and_asks_for_an_age(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", retention_days=None)
    store = Store(settings.resolved_database_url)
    assert maybe_prune(settings, store) is None
    with pytest.raises(InputError, match="retention_days is not set") as caught:
        prune_finished_runs(settings, store)
    assert "--older-than" in (caught.value.hint or "")
    store.dispose()


def test_the_scheduler_prunes_at_most_once_a_day(three_runs: tuple[Settings, Store, list[str]]) -> None:
    settings, store, (done1, _done2, _failed) = three_runs
    scheduled = settings.model_copy(
        update={"schedules": [ScheduleConfig(name="never", accounts=["sim-meta"], cron=["0 0 1 1 *"])]}
    )
    lines: list[str] = []
    scheduler = Scheduler(scheduled, store, progress=lines.append)
    scheduler.tick()
    assert store.get_control("retention.last_prune_at") is not None
    assert store.load_snapshots(done1), "a run that finished just now is within the retention"
    assert maybe_prune(scheduled, store, now=utcnow() + timedelta(hours=23)) is None
    result = maybe_prune(scheduled, store, now=utcnow() + timedelta(days=31))
    assert result is not None and done1 in result.runs
    store.dispose()


def test_store_prune_command(
    three_runs: tuple[Settings, Store, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, store, (done1, done2, _failed) = three_runs
    store.dispose()

    def bidloop(*argv: str) -> int:
        return cli_main.main(["--data-dir", str(settings.data_dir), *argv])

    # Nothing is 30 days old yet; with a tiny age both completed runs qualify (the failed one never does).
    assert bidloop("store", "prune", "--dry-run", "--json") == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    assert bidloop("store", "prune", "--older-than", "0.000001", "--json", "--vacuum") == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert out["runs"] == [done1, done2] and out["checkpoint_threads"] == 2 and not out["dry_run"]
    assert bidloop("store", "prune", "--older-than", "0") == 2
    assert "--older-than" in capsys.readouterr().err
    assert bidloop("store", "prune", "--help") == 0
    assert "audit log" in capsys.readouterr().out
