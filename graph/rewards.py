"""Summarise delayed rewards: which actions' attribution windows matured (reward in) and which are pending.

Rewards are computed by the graph's `log` node on the next run of the account after an action's window
closes (late conversions included); this module only reads the `trajectories` table for `bidloop rewards`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bidloop.core.store import Store, TrajectoryRow

__all__ = ["AccountRewards", "RewardSummary", "reward_summary"]


@dataclass(frozen=True)
class AccountRewards:
    """Rewards of one account.

    Attributes:
        account_id: The account.
        matured: Actions whose reward is in.
        mean_reward: Mean reward of the matured ones (None when none matured).
        pending: Actions still inside their attribution window (or waiting for the account's next run).
        next_maturity: When the earliest pending window closes (platform clock, UTC), if any.
    """

    account_id: str
    matured: int
    mean_reward: float | None
    pending: int
    next_maturity: datetime | None


@dataclass(frozen=True)
class RewardSummary:
    """Matured and pending rewards per account, plus the most recent matured records."""

    accounts: list[AccountRewards]
    recent: list[dict[str, Any]]

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
        )
        for account_id, v in sorted(per.items())
    ]
    return RewardSummary(accounts=accounts, recent=rows)
