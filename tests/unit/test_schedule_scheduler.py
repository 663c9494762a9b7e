"""The scheduler: what is due, missed-run policy, skipping locked accounts, one run per slot, resuming crashed runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bidloop.core.errors import ConfigError, PlatformError
from bidloop.core.schedules import ScheduleConfig
from bidloop.core.settings import Settings
from bidloop.core.store import Store
from bidloop.graph.locks import AccountLease
from bidloop.graph.runner import RunOutcome
from bidloop.graph.scheduler import Scheduler, scheduler_status

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)  # a Wednesday, 08:00 UTC


class FakeRuns:
    """Stands in for `run_cycle`/`resume_run`: records calls and the run rows like the real ones."""

    def __init__(self, store: Store, fail_with: Exception | None = None) -> None:
        self.store = store
        self.calls: list[dict[str, Any]] = []
        self.resumed: list[str] = []
        self.fail_with = fail_with

    def run(self, settings: Settings, **kw: Any) -> RunOutcome:
        self.calls.append(kw)
        self.store.start_run(kw["run_id"], mode=kw["mode"], trigger=kw["trigger"], accounts=kw["account_ids"])
        if self.fail_with is not None:
            self.store.finish_run(kw["run_id"], status="failed", error=str(self.fail_with))
            raise self.fail_with
        self.store.finish_run(kw["run_id"], status="completed")
        return RunOutcome(run_id=kw["run_id"], status="completed")

    def resume(self, settings: Settings, run_id: str, **kw: Any) -> RunOutcome:
        self.resumed.append(run_id)
        self.store.finish_run(run_id, status="completed")
        return RunOutcome(run_id=run_id, status="completed")


def make(
    tmp_settings: Settings, store: Store, *schedules: ScheduleConfig, fail_with: Exception | None = None
) -> tuple[Scheduler, FakeRuns]:
    settings = tmp_settings.model_copy(update={"schedules": list(schedules)})
    fake = FakeRuns(store, fail_with)
    return Scheduler(settings, store, run_fn=fake.run, resume_fn=fake.resume, lease_ttl_s=30), fake


def hourly(name: str = "hourly", **kw: Any) -> ScheduleConfig:
    return ScheduleConfig(name=name, cron=["0 * * * *"], time_zone="UTC", **kw)


def test_a_slot_within_the_grace_period_runs_once_and_is_not_due_again(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(accounts=["sim-meta"]))
    attempts = sched.tick(T0 + timedelta(minutes=3))
    assert [(a.schedule, a.status) for a in attempts] == [("hourly", "completed")]
    assert fake.calls[0]["account_ids"] == ["sim-meta"] and fake.calls[0]["trigger"] == "schedule"
    assert sched.tick(T0 + timedelta(minutes=20)) == []
    assert store.get_run(attempts[0].run_id or "").status == "completed"


def test_a_schedule_never_run_before_has_missed_nothing(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(missed="run_once"))
    assert sched.tick(T0 + timedelta(minutes=30)) == []  # 08:00 is 30 min late, beyond the 10 min grace
    assert fake.calls == []


def test_missed_slots_with_policy_skip_are_recorded_as_one_skipped_run(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(missed="skip"))
    sched.tick(T0)
    # The machine was off from 08:00 to 12:30: 09:00 ... 12:00 were missed.
    attempts = sched.tick(T0 + timedelta(hours=4, minutes=30))
    assert [a.status for a in attempts] == ["missed"]
    assert "missed 4 slot(s)" in attempts[0].message
    assert store.get_run(attempts[0].run_id or "").status == "skipped"
    assert len(fake.calls) == 1
    assert sched.tick(T0 + timedelta(hours=4, minutes=40)) == []


def test_missed_slots_with_policy_run_once_run_exactly_one_catch_up(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(missed="run_once"))
    sched.tick(T0)
    attempts = sched.tick(T0 + timedelta(hours=4, minutes=30))
    assert [a.status for a in attempts] == ["completed"]
    assert len(fake.calls) == 2
    assert sched.tick(T0 + timedelta(hours=4, minutes=40)) == []


def test_an_on_time_slot_after_downtime_runs_once_whatever_the_policy(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(missed="skip"))
    sched.tick(T0)
    attempts = sched.tick(T0 + timedelta(hours=4, minutes=2))
    assert [a.status for a in attempts] == ["completed"]
    assert len(fake.calls) == 2


def test_a_run_whose_account_is_locked_is_skipped_and_recorded_as_skipped(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly(accounts=["sim-meta", "sim-google"]))
    other = AccountLease.acquire(store, ["sim-google"], run_id="manual-run", holder="other-host:1:x", renew=False)
    attempts = sched.tick(T0 + timedelta(minutes=1))
    other.release()
    assert [a.status for a in attempts] == ["skipped"]
    assert "sim-google (run manual-run on other-host:1:x" in attempts[0].message
    row = store.get_run(attempts[0].run_id or "")
    assert (row.status, row.trigger) == ("skipped", "schedule")
    assert fake.calls == []
    assert {lk.account_id for lk in store.account_locks()} == set()  # sim-meta was not kept


def test_two_schedulers_on_one_database_run_a_slot_once(tmp_settings: Settings, store: Store) -> None:
    first, fake1 = make(tmp_settings, store, hourly())
    second, fake2 = make(tmp_settings, store, hourly())
    now = T0 + timedelta(minutes=1)
    assert [a.status for a in first.tick(now)] == ["completed"]
    assert [a.status for a in second.tick(now)] in ([], ["taken"])
    assert len(fake1.calls) + len(fake2.calls) == 1


def test_a_failing_run_is_recorded_and_the_other_schedules_still_run(tmp_settings: Settings, store: Store) -> None:
    error = PlatformError("meta is down", platform="meta", retryable=True)
    sched, _ = make(tmp_settings, store, hourly("a"), hourly("b"), fail_with=error)
    attempts = sched.tick(T0 + timedelta(minutes=1))
    assert [(a.schedule, a.status) for a in attempts] == [("a", "failed"), ("b", "failed")]
    status = scheduler_status(sched.settings, store, now=T0 + timedelta(minutes=2))
    assert len(status.recent_failures) == 2 and "meta is down" in (status.recent_failures[0]["error"] or "")


def test_a_run_failing_before_it_started_is_still_recorded_as_failed(tmp_settings: Settings, store: Store) -> None:
    settings = tmp_settings.model_copy(update={"schedules": [hourly()]})

    def broken(_settings: Settings, **_kw: Any) -> RunOutcome:
        raise ConfigError("account sim-meta has no credentials")

    sched = Scheduler(settings, store, run_fn=broken)
    [attempt] = sched.tick(T0 + timedelta(minutes=1))
    assert attempt.status == "failed"
    assert store.get_run(attempt.run_id or "").status == "failed"


def test_a_scheduled_run_left_running_by_a_dead_process_is_resumed_first(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store, hourly())
    store.start_run("crashed-run", mode="live", trigger="schedule", accounts=["sim-meta"])
    attempts = sched.tick(T0 + timedelta(minutes=1))
    assert (attempts[0].run_id, attempts[0].status) == ("crashed-run", "resumed")
    assert fake.resumed == ["crashed-run"]
    assert store.get_run("crashed-run").status == "completed"


def test_a_scheduled_run_still_held_by_a_live_process_is_not_resumed(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store)
    store.start_run("live-run", mode="live", trigger="schedule", accounts=["sim-meta"])
    lease = AccountLease.acquire(store, ["sim-meta"], run_id="live-run", holder="alive:1:x", renew=False)
    assert sched.resume_interrupted() == []
    lease.release()
    assert fake.resumed == []


def test_a_crashed_cli_run_is_left_to_the_operator(tmp_settings: Settings, store: Store) -> None:
    sched, fake = make(tmp_settings, store)
    store.start_run("cli-run", mode="live", trigger="cli", accounts=["sim-meta"])
    assert sched.resume_interrupted() == []
    assert fake.resumed == []


def test_duplicate_schedule_names_and_unknown_accounts_are_configuration_errors(
    tmp_settings: Settings, store: Store
) -> None:
    with pytest.raises(ConfigError, match="used twice: a"):
        make(tmp_settings, store, hourly("a"), hourly("a"))
    with pytest.raises(ConfigError, match="schedule 'b': no account 'nope'"):
        make(tmp_settings, store, hourly("b", accounts=["nope"]))


def test_status_shows_last_and_next_runs_and_pending_approvals(tmp_settings: Settings, store: Store) -> None:
    sched, _ = make(tmp_settings, store, hourly())
    [attempt] = sched.tick(T0 + timedelta(minutes=1))
    store.start_run("waiting", mode="live", trigger="cli", accounts=["sim-meta"])
    store.add_pending_approvals("waiting", [{"action_id": "act-1", "payload": {"message": "budget +60 %"}}])
    status = scheduler_status(sched.settings, store, now=T0 + timedelta(minutes=5))
    [item] = status.schedules
    assert (item.last_run_id, item.last_run_status) == (attempt.run_id, "completed")
    assert item.last_slot == T0 and item.next_run == T0 + timedelta(hours=1)
    assert status.pending_approvals == [{"approval_id": "act-1", "run_id": "waiting", "message": "budget +60 %"}]
    assert status.interrupted_runs == []


def test_serve_stops_after_the_current_run_when_asked(tmp_settings: Settings, store: Store) -> None:
    stop = threading.Event()
    clock_now = [T0 + timedelta(minutes=1)]
    settings = tmp_settings.model_copy(update={"schedules": [hourly("a"), hourly("b")]})
    calls: list[str] = []

    def run_then_ask_to_stop(_settings: Settings, **kw: Any) -> RunOutcome:
        calls.append(kw["run_id"])
        stop.set()  # a SIGTERM arriving during the first run
        return RunOutcome(run_id=kw["run_id"], status="completed")

    clock: Callable[[], datetime] = lambda: clock_now[0]  # noqa: E731
    sched = Scheduler(settings, store, run_fn=run_then_ask_to_stop, clock=clock)
    attempts = sched.serve(stop, poll_s=0.01)
    assert [a.status for a in attempts] == ["completed"]  # the run under way finished; "b" never started
    assert len(calls) == 1
