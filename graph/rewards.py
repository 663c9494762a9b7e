"""Delayed rewards: when an action's outcome is known, scoring it, restating it, and summarising them.

An action's outcome is the first full day after it, in the account's time zone. Its reward matures once
that day's attribution window has closed (the platform's, or the account's own): the graph's `log` node
scores it on the account's next run after that. Conversions that still arrive for that day later (the
platforms book them on the click's day) restate the reward, up to the restatement horizon; the first
value and every change are kept. `reward_summary` reads them for `bidloop rewards`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select

from bidloop.core.entities import EntityKind, EntityState
from bidloop.core.errors import UnknownAccountError
from bidloop.core.metrics import Metrics
from bidloop.core.settings import Settings
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import OutcomeObservation, RewardRestatement, Store, TrajectoryRow
from bidloop.policies.reward import score_period

__all__ = [
    "AccountRewards",
    "RestatedReward",
    "RewardSchedule",
    "RewardSummary",
    "SettledRewards",
    "reward_schedule",
    "reward_summary",
    "settle_rewards",
]


@dataclass(frozen=True)
class RewardSchedule:
    """When an action's reward is known and for how long it may change.

    Attributes:
        outcome_date: The day whose performance is the outcome (the first full day after the action).
        matures_at: The end of that day plus the attribution window.
        restate_until: The action plus the restatement horizon.
    """

    outcome_date: date
    matures_at: datetime
    restate_until: datetime


def reward_schedule(settings: Settings, account_id: str, snap: Snapshot) -> RewardSchedule:
    """Return the reward schedule of an action taken at `snap.as_of` (the account's clock and zone)."""
    try:
        window = settings.reward_window_hours(account_id)
    except UnknownAccountError:
        window = settings.reward.window_hours(snap.platform)
    outcome = snap.as_of.date() + timedelta(days=1)
    day_end = datetime.combine(outcome + timedelta(days=1), time(0), tzinfo=snap.as_of.tzinfo)
    return RewardSchedule(
        outcome_date=outcome,
        matures_at=day_end + timedelta(hours=window),
        restate_until=snap.as_of + timedelta(days=settings.reward.restatement_horizon_days),
    )


@dataclass(frozen=True)
class SettledRewards:
    """What one account's run did to rewards: matured now, restated now."""

    matured: int = 0
    restated: int = 0


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _holder(snap: Snapshot, state: dict[str, Any]) -> EntityState | None:
    kind = EntityKind(state["holder_kind"])
    return next((e for e in snap.entities if e.ref.entity_id == state["holder_id"] and e.ref.kind is kind), None)


def _day(holder: EntityState | None, as_of: datetime, day: date) -> Metrics | None:
    """Return `day`'s metrics from the holder's daily history (which ends yesterday), if it still holds it."""
    if holder is None:
        return None
    back = (as_of.date() - day).days
    if back < 1 or back > len(holder.daily_history):
        return None
    return holder.daily_history[-back]


def _reading(m: Metrics, snap: Snapshot) -> dict[str, Any]:
    return {"metrics": m.model_dump(), "observed_at": snap.as_of.isoformat()}


def _next_state(holder: EntityState | None, snap: Snapshot, m: Metrics) -> dict[str, Any]:
    return {
        "as_of": snap.as_of.isoformat(),
        "daily_budget_micros": holder.daily_budget_micros if holder is not None else None,
        "last_day": m.model_dump(),
        "roas_7d": holder.trailing_7d.roas if holder is not None else None,
    }


def settle_rewards(store: Store, settings: Settings, account_id: str, snap: Snapshot) -> SettledRewards:
    """Mature the account's rewards whose window closed, and restate matured ones whose day changed.

    Pending actions whose outcome day is over get its latest reading kept (so a reward can still be scored
    after the day leaves the platform's daily history). A matured reward is recomputed when the day's
    conversions or conversion value differ from the reading it was scored on, until `restate_until`.
    Rows logged before outcome days existed mature on the last full day, as they did, and never restate.
    """
    spec = settings.reward
    now = snap.as_of
    done: list[dict[str, Any]] = []
    readings: list[OutcomeObservation] = []
    restated: list[RewardRestatement] = []
    for t in store.reward_candidates(account_id=account_id, now=now):
        holder = _holder(snap, t.state)
        before = Metrics(**t.state["day_avg_7d"]) if "day_avg_7d" in t.state else None
        planned = t.state.get("daily_budget_micros")
        if t.outcome_date is None:
            if t.matured_at is None and _aware(t.matures_at) <= now and holder is not None and holder.daily_history:
                last = holder.daily_history[-1]
                b = score_period(last, planned_spend_micros=planned, before=before, spec=spec)
                done.append(
                    {
                        "id": t.id,
                        "reward": b.total,
                        "reward_components": b.model_dump(),
                        "next_state": _next_state(holder, snap, last),
                    }
                )
            continue
        if now.date() <= t.outcome_date:
            continue  # the outcome day is not over yet
        fresh = _day(holder, now, t.outcome_date)
        if t.matured_at is None:
            reading = _reading(fresh, snap) if fresh is not None else t.outcome
            if reading is None:
                continue  # never seen: wait for a read that holds the day
            if _aware(t.matures_at) > now:
                if fresh is not None:
                    readings.append(OutcomeObservation(trajectory_id=t.id, outcome=reading))
                continue
            m = Metrics(**reading["metrics"])
            b = score_period(m, planned_spend_micros=planned, before=before, spec=spec)
            done.append(
                {
                    "id": t.id,
                    "reward": b.total,
                    "reward_components": b.model_dump(),
                    "outcome": reading,
                    "next_state": _next_state(holder, snap, m),
                }
            )
            continue
        if fresh is None:
            continue
        old = Metrics(**t.outcome["metrics"]) if t.outcome else None
        if old is not None and (old.conversions, old.conversion_value_micros) == (
            fresh.conversions,
            fresh.conversion_value_micros,
        ):
            continue
        b = score_period(fresh, planned_spend_micros=planned, before=before, spec=spec)
        restated.append(
            RewardRestatement(
                trajectory_id=t.id,
                reward=b.total,
                reward_components=b.model_dump(),
                outcome=_reading(fresh, snap),
                restated_at=now,
                next_state={**(t.next_state or {}), "last_day": fresh.model_dump()},
            )
        )
    store.record_outcome_observations(readings)
    store.complete_trajectories(done)
    store.restate_rewards(restated)
    return SettledRewards(matured=len(done), restated=len(restated))


@dataclass(frozen=True)
class AccountRewards:
    """Rewards of one account.

    Attributes:
        account_id: The account.
        matured: Actions whose reward is in.
        mean_reward: Mean reward of the matured ones, latest (restated) values (None when none matured).
        pending: Actions still inside their attribution window (or waiting for the account's next run).
        next_maturity: When the earliest pending window closes (platform clock, UTC), if any.
        restated: Matured rewards that late conversions changed at least once.
    """

    account_id: str
    matured: int
    mean_reward: float | None
    pending: int
    next_maturity: datetime | None
    restated: int = 0


@dataclass(frozen=True)
class RestatedReward:
    """A reward that changed after it matured: its first and current value, and when it last changed."""

    action_id: str
    account_id: str
    entity_key: str
    first_reward: float | None
    reward: float | None
    restatements: int
    restated_at: datetime


@dataclass(frozen=True)
class RewardSummary:
    """Matured and pending rewards per account, plus the most recent matured records."""

    accounts: list[AccountRewards]
    recent: list[dict[str, Any]]
    restated: list[RestatedReward]
    """The most recently restated rewards, newest first."""

    @property
    def matured(self) -> int:
        """Return how many actions have their reward."""
        return sum(a.matured for a in self.accounts)

    @property
    def pending(self) -> int:
        """Return how many actions wait for their window to mature."""
        return sum(a.pending for a in self.accounts)


def reward_summary(store: Store, *, recent: int = 10) -> RewardSummary:
    """Count matured and pending rewards per account and return the `recent` latest matured records.

    Raises:
        StoreError: If the database cannot be read.
    """
    per: dict[str, dict[str, Any]] = {}
    with store.session() as s:
        matured_q = (
            select(TrajectoryRow.account_id, func.count(), func.avg(TrajectoryRow.reward))
            .where(TrajectoryRow.matured_at.is_not(None))
            .group_by(TrajectoryRow.account_id)
        )
        for account_id, n, mean in s.execute(matured_q):
            per.setdefault(account_id, {})["matured"] = (int(n), None if mean is None else float(mean))
        pending_q = (
            select(TrajectoryRow.account_id, func.count(), func.min(TrajectoryRow.matures_at))
            .where(TrajectoryRow.matured_at.is_(None))
            .group_by(TrajectoryRow.account_id)
        )
        for account_id, n, first in s.execute(pending_q):
            per.setdefault(account_id, {})["pending"] = (int(n), first)
        restated_q = (
            select(TrajectoryRow.account_id, func.count())
            .where(TrajectoryRow.restatements > 0)
            .group_by(TrajectoryRow.account_id)
        )
        for account_id, n in s.execute(restated_q):
            per.setdefault(account_id, {})["restated"] = int(n)
        restated_rows = s.scalars(
            select(TrajectoryRow)
            .where(TrajectoryRow.restatements > 0)
            .order_by(TrajectoryRow.restated_at.desc(), TrajectoryRow.id.desc())
            .limit(recent)
        ).all()
        restated = [
            RestatedReward(
                action_id=t.action_id,
                account_id=t.account_id,
                entity_key=t.entity_key,
                first_reward=t.first_reward,
                reward=t.reward,
                restatements=t.restatements,
                restated_at=_aware(t.restated_at) if t.restated_at is not None else _aware(t.matures_at),
            )
            for t in restated_rows
        ]
        latest = s.scalars(
            select(TrajectoryRow)
            .where(TrajectoryRow.matured_at.is_not(None))
            .order_by(TrajectoryRow.matured_at.desc(), TrajectoryRow.id.desc())
            .limit(recent)
        ).all()
        rows = [
            {
                "run_id": t.run_id,
                "action_id": t.action_id,
                "account_id": t.account_id,
                "entity_key": t.entity_key,
                "reward": t.reward,
                "first_reward": t.first_reward,
                "restatements": t.restatements,
                "matures_at": t.matures_at,
                "policy_version": t.policy_version,
            }
            for t in latest
        ]
    accounts = [
        AccountRewards(
            account_id=account_id,
            matured=v.get("matured", (0, None))[0],
            mean_reward=v.get("matured", (0, None))[1],
            pending=v.get("pending", (0, None))[0],
            next_maturity=v.get("pending", (0, None))[1],
            restated=v.get("restated", 0),
        )
        for account_id, v in sorted(per.items())
    ]
    return RewardSummary(accounts=accounts, recent=rows, restated=restated)
