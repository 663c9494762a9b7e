"""Load the trajectories logged by runs (state, action, reward, next state) as a dataset for learning.

Each applied budget or bid action a run logs becomes one transition once its attribution window has
matured (`bidloop.graph.nodes.log` fills in the reward with the configured reward spec). This module
reads them from the store (`Store.trajectories()`, rows of `TrajectoryRow`) into plain arrays: what was
observed of the holder, the action as a log-change of the value it set, the reward and what followed.
Off-policy evaluation and fine-tuning start from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bidloop.core.store import Store, TrajectoryRow

__all__ = ["STATE_COLUMNS", "TrajectoryDataset", "load_trajectory_dataset", "trajectory_dataset_from_rows"]

STATE_COLUMNS: tuple[str, ...] = ("log_daily_budget", "log_roas_7d", "expected_spend_fraction", "log_cost_per_day_7d")
"""The state features of a transition, in column order (NaN where the row does not say)."""


@dataclass(frozen=True)
class TrajectoryDataset:
    """Logged transitions as arrays (one row per matured action).

    Attributes:
        action_ids: The logged action ids.
        policy_versions: The policy that proposed each action.
        kinds: ``set_budget`` or ``set_bid`` (other kinds are skipped).
        states: ``(M, len(STATE_COLUMNS))`` float64.
        actions: ``(M,)`` log(new value / old value) of the budget or bid.
        rewards: ``(M,)`` the matured reward.
        next_states: ``(M, len(STATE_COLUMNS))`` float64 (NaN where unknown).
        feedback: A person's approval or rejection, where given (None otherwise).
    """

    action_ids: list[str]
    policy_versions: list[str]
    kinds: list[str]
    states: NDArray[np.float64]
    actions: NDArray[np.float64]
    rewards: NDArray[np.float64]
    next_states: NDArray[np.float64]
    feedback: list[dict[str, Any] | None]

    def __len__(self) -> int:
        return len(self.action_ids)

    def mean_reward(self, policy_version: str | None = None) -> float:
        """Return the mean reward (of one policy version if given); NaN when there is none."""
        mask = np.array([policy_version is None or v == policy_version for v in self.policy_versions], dtype=bool)
        return float(self.rewards[mask].mean()) if mask.any() else math.nan


def _log(x: Any) -> float:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return math.log(value) if value > 0 else math.nan


def _state_row(state: dict[str, Any] | None) -> list[float]:
    state = state or {}
    day = state.get("day_avg_7d") or state.get("last_day") or {}
    esf = state.get("expected_spend_fraction")
    return [
        _log(state.get("daily_budget_micros")),
        _log(state.get("roas_7d")),
        float(esf) if isinstance(esf, int | float) else math.nan,
        _log(day.get("cost_micros")) if isinstance(day, dict) else math.nan,
    ]


def _action_change(action: dict[str, Any]) -> tuple[str, float] | None:
    kind = action.get("kind")
    if kind == "set_budget":
        return kind, _log(action.get("new_daily_budget_micros")) - _log(action.get("old_daily_budget_micros"))
    if kind == "set_bid":
        return kind, _log(action.get("new_cpc_bid_micros")) - _log(action.get("old_cpc_bid_micros"))
    return None


def trajectory_dataset_from_rows(rows: Iterable[TrajectoryRow]) -> TrajectoryDataset:
    """Return the dataset of the budget and bid transitions among `rows` that carry a reward."""
    ids: list[str] = []
    versions: list[str] = []
    kinds: list[str] = []
    states: list[list[float]] = []
    actions: list[float] = []
    rewards: list[float] = []
    nexts: list[list[float]] = []
    feedback: list[dict[str, Any] | None] = []
    for row in rows:
        if row.reward is None:
            continue
        change = _action_change(row.action or {})
        if change is None:
            continue
        ids.append(row.action_id)
        versions.append(row.policy_version)
        kinds.append(change[0])
        actions.append(change[1])
        rewards.append(float(row.reward))
        states.append(_state_row(row.state))
        nexts.append(_state_row(row.next_state))
        feedback.append(row.feedback)
    width = len(STATE_COLUMNS)
    return TrajectoryDataset(
        action_ids=ids,
        policy_versions=versions,
        kinds=kinds,
        states=np.array(states, dtype=np.float64).reshape(-1, width),
        actions=np.array(actions, dtype=np.float64),
        rewards=np.array(rewards, dtype=np.float64),
        next_states=np.array(nexts, dtype=np.float64).reshape(-1, width),
        feedback=feedback,
    )


def load_trajectory_dataset(store: Store, *, limit: int | None = None) -> TrajectoryDataset:
    """Return the matured budget and bid transitions logged in a store, oldest first."""
    return trajectory_dataset_from_rows(store.trajectories(matured=True, limit=limit))
