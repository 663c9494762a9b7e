"""A reward waits for its outcome day's attribution window, then late conversions restate it (history kept).

Run on SQLite and PostgreSQL, for an account at UTC and one west of it (Los Angeles), where the account's
day and the UTC day differ in the evening.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform
from bidloop.core.metrics import Metrics
from bidloop.core.settings import AccountConfig, RewardConfig, Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.graph.rewards import reward_schedule, reward_summary, settle_rewards
from bidloop.policies.dataset import load_trajectory_dataset

M = 1_000_000
BUDGET = 100 * M
ACTION_DAY = date(2026, 6, 10)


def settings_for(zone: str, **reward: float) -> Settings:
    return Settings(
        accounts=[AccountConfig(id="acct", platform=Platform.META, time_zone=zone)], reward=RewardConfig(**reward)
    )


def day(value: float, cost: float = 100.0) -> Metrics:
    return Metrics(
        impressions=2000,
        clicks=100,
        cost_micros=int(cost * M),
        conversions=value / 50,
        conversion_value_micros=int(value * M),
    )


def snap_at(local: datetime, history: dict[date, Metrics]) -> Snapshot:
    """A snapshot at `local` whose campaign's daily history (14 days, ending yesterday) holds `history`."""
    days = [local.date() - timedelta(days=back) for back in range(14, 0, -1)]
    ref = EntityRef(platform=Platform.META, account_id="acct", kind=EntityKind.CAMPAIGN, entity_id="c1")
    holder = EntityState(
        ref=ref, name="c1", daily_budget_micros=BUDGET, daily_history=[history.get(d, day(0.0)) for d in days]
    )
    return Snapshot(account_id="acct", platform=Platform.META, as_of=local, entities=[holder])


def log_action(store: Store, settings: Settings, at: datetime) -> None:
    store.start_run("r1", mode="live", trigger="test", accounts=["acct"])
    schedule = reward_schedule(settings, "acct", snap_at(at, {}))
    store.add_trajectories(
        "r1",
        [
            {
                "action_id": "a1",
                "account_id": "acct",
                "entity_key": "meta:acct:campaign:c1",
                "policy_version": "v1",
                "state": {
                    "as_of": at.isoformat(),
                    "holder_id": "c1",
                    "holder_kind": "campaign",
                    "daily_budget_micros": BUDGET,
                    "day_avg_7d": day(200.0).model_dump(),
                },
                "action": {"kind": "set_budget", "old_daily_budget_micros": BUDGET, "new_daily_budget_micros": 110 * M},
                "matures_at": schedule.matures_at,
                "outcome_date": schedule.outcome_date,
                "restate_until": schedule.restate_until,
            }
        ],
    )


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles"])
def test_a_meta_reward_waits_seven_days_after_its_outcome_day_then_late_conversions_restate_it(
    store: Store, zone: str
) -> None:
    tz = ZoneInfo(zone)
    settings = settings_for(zone)
    acted = datetime(2026, 6, 10, 20, 0, tzinfo=tz)  # 03:00 UTC the next day in Los Angeles
    outcome = ACTION_DAY + timedelta(days=1)
    log_action(store, settings, acted)
    (t,) = store.trajectories()
    assert t.outcome_date == outcome, "the outcome is the account's next day, not the UTC one"

    # Day 8 after the outcome day, one minute before its 7-day window closes: still pending.
    early = settle_rewards(
        store, settings, "acct", snap_at(datetime(2026, 6, 18, 23, 59, tzinfo=tz), {outcome: day(200.0)})
    )
    assert early.matured == 0 and store.trajectories(matured=True) == []

    # Window closed: scored on the outcome day (ROAS 2 < 3: no ROAS bonus; spend on budget: pace +1).
    first = settle_rewards(
        store, settings, "acct", snap_at(datetime(2026, 6, 19, 0, 30, tzinfo=tz), {outcome: day(200.0)})
    )
    assert first.matured == 1
    (t,) = store.trajectories(matured=True)
    assert (t.reward, t.first_reward, t.restatements) == (1.0, 1.0, 0)

    # Late conversions booked on the click's day lift its ROAS to 4: restated to 3, first value kept.
    late = snap_at(datetime(2026, 6, 22, 9, 0, tzinfo=tz), {outcome: day(400.0)})
    assert settle_rewards(store, settings, "acct", late).restated == 1
    (t,) = store.trajectories(matured=True)
    assert (t.reward, t.first_reward, t.restatements) == (3.0, 1.0, 1)
    (h,) = store.reward_restatements(account_id="acct")
    assert (h.old_reward, h.new_reward) == (1.0, 3.0)
    assert h.restated_at == late.as_of

    # The same numbers again change nothing.
    again = snap_at(datetime(2026, 6, 23, 9, 0, tzinfo=tz), {outcome: day(400.0)})
    assert settle_rewards(store, settings, "acct", again).restated == 0
    assert len(store.reward_restatements()) == 1

    summary = reward_summary(store)
    assert [(a.account_id, a.matured, a.restated) for a in summary.accounts] == [("acct", 1, 1)]
    (r,) = summary.restated
    assert (r.first_reward, r.reward, r.restatements, r.restated_at) == (1.0, 3.0, 1, late.as_of)
    assert load_trajectory_dataset(store).rewards.tolist() == [3.0], "training uses the latest restated reward"


def test_no_restatement_after_the_horizon(store: Store) -> None:
    tz = ZoneInfo("America/Los_Angeles")
    settings = settings_for("America/Los_Angeles", restatement_horizon_days=14)
    acted = datetime(2026, 6, 10, 20, 0, tzinfo=tz)
    outcome = ACTION_DAY + timedelta(days=1)
    log_action(store, settings, acted)
    settle_rewards(store, settings, "acct", snap_at(datetime(2026, 6, 19, 1, 0, tzinfo=tz), {outcome: day(200.0)}))
    past = snap_at(acted + timedelta(days=14, minutes=1), {outcome: day(400.0)})
    assert settle_rewards(store, settings, "acct", past).restated == 0
    (t,) = store.trajectories(matured=True)
    assert (t.reward, t.restatements) == (1.0, 0)


def test_a_reward_whose_day_left_the_history_is_scored_on_its_last_reading(store: Store) -> None:
    tz = ZoneInfo("UTC")
    settings = settings_for("UTC")
    acted = datetime(2026, 6, 10, 9, 0, tzinfo=tz)
    outcome = ACTION_DAY + timedelta(days=1)
    log_action(store, settings, acted)
    settle_rewards(store, settings, "acct", snap_at(datetime(2026, 6, 14, 9, 0, tzinfo=tz), {outcome: day(400.0)}))
    # The next run is 20 days later: the outcome day is no longer in the 14-day history.
    gone = settle_rewards(store, settings, "acct", snap_at(datetime(2026, 7, 1, 9, 0, tzinfo=tz), {}))
    assert gone.matured == 1
    (t,) = store.trajectories(matured=True)
    assert t.reward == 3.0 and t.outcome is not None and t.outcome["metrics"]["conversion_value_micros"] == 400 * M


def test_bidloop_rewards_shows_a_restated_reward_first_and_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bidloop.cli.main import main

    monkeypatch.setenv("BIDLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    settings = settings_for("UTC")
    store = Store(Settings(data_dir=tmp_path / "data").resolved_database_url)
    outcome = ACTION_DAY + timedelta(days=1)
    log_action(store, settings, datetime(2026, 6, 10, 9, 0, tzinfo=ZoneInfo("UTC")))
    settle_rewards(
        store, settings, "acct", snap_at(datetime(2026, 6, 19, 9, 0, tzinfo=ZoneInfo("UTC")), {outcome: day(200.0)})
    )
    settle_rewards(
        store, settings, "acct", snap_at(datetime(2026, 6, 21, 9, 0, tzinfo=ZoneInfo("UTC")), {outcome: day(400.0)})
    )
    store.dispose()
    assert main(["rewards"]) == 0
    out = capsys.readouterr().out
    assert "Restated by late conversions" in out and "+1.00" in out and "+3.00" in out and "2026-06-21 09:00" in out
    assert main(["rewards", "--json"]) == 0
    (restated,) = json.loads(capsys.readouterr().out)["restated"]
    assert (restated["first_reward"], restated["reward"], restated["restatements"]) == (1.0, 3.0, 1)
