"""Build the learned policy's per-holder observation from what a platform reports (spec `OBSERVATION_SPEC_VERSION`).

One function, `holder_features`, turns a `ReportedHolders` view into one feature row per budget holder.
The view is built either from a live `Snapshot` (`reported_from_snapshot`) or by the training env from
its reported numbers (`bidloop.policies.env.MarketSession.reported`): spend and clicks as the platform
reports them, conversion value as reported so far (delayed and noisy). Never the simulator's hidden truth.

Every feature is a ratio or a log-ratio, so the same policy serves accounts of any size and currency.
Changing a feature's meaning or order is a new spec version: a policy trained on another version is
refused by the loader instead of acting on garbage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bidloop.core.entities import EntityState, Status
from bidloop.core.errors import InputError
from bidloop.core.snapshot import Snapshot

__all__ = [
    "FEATURE_NAMES",
    "N_FEATURES",
    "OBSERVATION_SPEC_VERSION",
    "ReportedHolders",
    "holder_features",
    "reported_from_snapshot",
    "uses_bids",
]

OBSERVATION_SPEC_VERSION = "holder-obs@2"
"""The observation spec a policy was trained on; stored in its metadata and checked at load."""

FEATURE_NAMES: tuple[str, ...] = (
    "log_budget_share_x_n",
    "pacing_today",
    "utilisation_week",
    "log_roas_vs_account_week",
    "log_roas_week",
    "log_roas_today_vs_week",
    "log_cpc_today_vs_week",
    "log_bid_vs_cpc_week",
    "has_bid",
    "daypart_sin",
    "daypart_cos",
    "expected_spend_fraction",
    "account_pacing_today",
    "log_cost_share_x_n_week",
    "uses_target",
    "log_target_slack_week",
)
"""Feature names, in column order."""

N_FEATURES = len(FEATURE_NAMES)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ReportedHolders:
    """What the platform reports about an account's budget holders (arrays of length N, money in micros).

    Attributes:
        budget_micros: Current daily budget of each holder.
        bid_micros: Current bid of each holder (or the mean bid of its keywords); NaN where none is set.
        today_cost_micros: Spend today so far.
        today_value_micros: Conversion value reported today so far.
        today_clicks: Clicks today so far.
        week_cost_micros: Spend over the last full days (up to 7).
        week_value_micros: Conversion value reported over those days.
        week_clicks: Clicks over those days.
        days_seen: How many full days the week counters cover (0 to 7).
        daypart: The daypart about to be played (0 .. dayparts_per_day - 1).
        dayparts_per_day: Decision steps per day.
        expected_spend_fraction: Share of a day's budget that should be spent by now, in [0, 1].
        week_conversions: Conversions reported over the week's days (for the CPA); None = unknown.
        target_roas: ROAS target of holders bidding to one (1.0 = 100 %); NaN elsewhere; None = none at all.
        target_cpa_micros: CPA target of holders bidding to one; NaN elsewhere; None = none at all.
    """

    budget_micros: FloatArray
    bid_micros: FloatArray
    today_cost_micros: FloatArray
    today_value_micros: FloatArray
    today_clicks: FloatArray
    week_cost_micros: FloatArray
    week_value_micros: FloatArray
    week_clicks: FloatArray
    days_seen: int
    daypart: int
    dayparts_per_day: int
    expected_spend_fraction: float
    week_conversions: FloatArray | None = None
    target_roas: FloatArray | None = None
    target_cpa_micros: FloatArray | None = None

    @property
    def n_holders(self) -> int:
        """Return N."""
        return int(self.budget_micros.shape[0])


def _safe_log_ratio(num: FloatArray, den: FloatArray, clip: float) -> FloatArray:
    """Return log(num / den) clipped to ±clip, and 0 where either side is not positive."""
    ok = (num > 0) & (den > 0)
    ratio = np.where(ok, num / np.where(den > 0, den, 1.0), 1.0)
    return np.clip(np.log(np.where(ok, ratio, 1.0)), -clip, clip)


def holder_features(reported: ReportedHolders) -> NDArray[np.float32]:
    """Return the observation: one row of `N_FEATURES` float32 features per holder (see `FEATURE_NAMES`).

    Raises:
        InputError: If the view has no holder or an array's length differs from the budgets'.
    """
    n = reported.n_holders
    if n < 1:
        raise InputError("an observation needs at least one budget holder", hint="check the account's snapshot")
    for name in ("bid_micros", "today_cost_micros", "today_value_micros", "today_clicks", "week_cost_micros"):
        if getattr(reported, name).shape != (n,):
            raise InputError(f"ReportedHolders.{name} must have one value per holder ({n})")
    budget = np.maximum(reported.budget_micros.astype(np.float64), 0.0)
    total_budget = float(budget.sum())
    esf = float(np.clip(reported.expected_spend_fraction, 0.0, 1.0))
    days = max(int(reported.days_seen), 0)
    today_cost = reported.today_cost_micros
    week_cost = reported.week_cost_micros

    share = _safe_log_ratio(budget * n, np.full(n, total_budget), 3.0)
    planned_today = budget * esf
    pacing = np.where(planned_today > 0, today_cost / np.maximum(planned_today, 1.0), 1.0)
    utilisation = np.where((budget > 0) & (days > 0), week_cost / np.maximum(budget * max(days, 1), 1.0), 1.0)
    roas_week = np.where(week_cost > 0, reported.week_value_micros / np.maximum(week_cost, 1.0), 0.0)
    account_cost = float(week_cost.sum())
    account_roas = float(reported.week_value_micros.sum()) / account_cost if account_cost > 0 else 0.0
    roas_today = np.where(today_cost > 0, reported.today_value_micros / np.maximum(today_cost, 1.0), 0.0)
    cpc_week = np.where(reported.week_clicks > 0, week_cost / np.maximum(reported.week_clicks, 1e-9), 0.0)
    cpc_today = np.where(reported.today_clicks > 0, today_cost / np.maximum(reported.today_clicks, 1e-9), 0.0)
    has_bid = np.isfinite(reported.bid_micros) & (reported.bid_micros > 0)
    bid = np.where(has_bid, reported.bid_micros, 0.0)
    angle = 2.0 * math.pi * reported.daypart / max(reported.dayparts_per_day, 1)
    nan = np.full(n, np.nan)
    t_roas = reported.target_roas if reported.target_roas is not None else nan
    t_cpa = reported.target_cpa_micros if reported.target_cpa_micros is not None else nan
    has_roas = np.isfinite(t_roas) & (t_roas > 0)
    has_cpa = np.isfinite(t_cpa) & (t_cpa > 0) & ~has_roas
    week_conv = reported.week_conversions if reported.week_conversions is not None else np.zeros(n)
    cpa_week = np.where(week_conv > 0, week_cost / np.maximum(week_conv, 1e-9), 0.0)
    # Slack of the target vs. what the week achieved (> 0: the target is looser than what was achieved).
    slack = np.where(
        has_roas,
        _safe_log_ratio(roas_week, np.where(has_roas, t_roas, 0.0), 2.0),
        np.where(has_cpa, _safe_log_ratio(np.where(has_cpa, t_cpa, 0.0), cpa_week, 2.0), 0.0),
    )
    account_planned = total_budget * esf
    account_pacing = float(today_cost.sum()) / account_planned if account_planned > 0 else 1.0

    columns = [
        share,
        np.clip(pacing, 0.0, 2.0),
        np.clip(utilisation, 0.0, 2.0),
        _safe_log_ratio(roas_week, np.full(n, account_roas), 2.0),
        np.clip(np.log(np.maximum(roas_week, 0.05)), -3.0, 3.0),
        _safe_log_ratio(roas_today, roas_week, 2.0),
        _safe_log_ratio(cpc_today, cpc_week, 1.5),
        _safe_log_ratio(bid, cpc_week, 2.0),
        has_bid.astype(np.float64),
        np.full(n, math.sin(angle)),
        np.full(n, math.cos(angle)),
        np.full(n, esf),
        np.full(n, min(max(account_pacing, 0.0), 2.0)),
        _safe_log_ratio(week_cost * n, np.full(n, account_cost), 3.0),
        (has_roas | has_cpa).astype(np.float64),
        slack,
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def uses_bids(entity: EntityState) -> bool:
    """Return True if the platform acts on the entity's bids (manual CPC, bid cap; unknown counts as manual)."""
    return entity.bidding_strategy is None or entity.bidding_strategy.uses_bids


def _child_bids(snapshot: Snapshot) -> dict[str, list[int]]:
    """Return the enabled bids the platform acts on under each campaign / parent id, in one pass."""
    bids: dict[str, list[int]] = {}
    for e in snapshot.entities:
        if not e.cpc_bid_micros or e.status is not Status.ENABLED or not uses_bids(e):
            continue
        for parent in {e.campaign_id, e.parent_id} - {None, e.ref.entity_id}:
            bids.setdefault(str(parent), []).append(e.cpc_bid_micros)
    return bids


def _holder_bid_micros(holder: EntityState, child_bids: dict[str, list[int]]) -> float:
    """Return the holder's own bid, else the mean bid of its enabled keywords/ad groups, else NaN.

    NaN too where the holder's strategy ignores bids (Smart Bidding, lowest cost).
    """
    if not uses_bids(holder):
        return math.nan
    if holder.cpc_bid_micros:
        return float(holder.cpc_bid_micros)
    bids = child_bids.get(holder.ref.entity_id)
    return float(np.mean(bids)) if bids else math.nan


def reported_from_snapshot(snapshot: Snapshot, holders: list[EntityState] | None = None) -> ReportedHolders:
    """Build the reported view of a live (or simulated) account from its snapshot.

    Args:
        snapshot: The account as observed.
        holders: The budget holders to include, in order (default: the snapshot's delivering holders).

    Raises:
        InputError: If there is no enabled budget holder.
    """
    if holders is None:
        holders = [h for h in snapshot.budget_holders() if h.is_delivering]
    if not holders:
        raise InputError(
            f"account {snapshot.account_id} has no enabled budget holder to observe",
            hint="enable a campaign (or ad set) with a daily budget",
        )
    child_bids = _child_bids(snapshot)
    days_seen = max((min(len(h.daily_history), 7) for h in holders), default=0)
    if days_seen == 0 and any(h.trailing_7d.cost_micros > 0 for h in holders):
        days_seen = 7

    def column(get: object) -> FloatArray:
        return np.array([float(get(h)) for h in holders], dtype=np.float64)  # type: ignore[operator]

    return ReportedHolders(
        budget_micros=column(lambda h: h.daily_budget_micros or 0),
        bid_micros=np.array([_holder_bid_micros(h, child_bids) for h in holders], dtype=np.float64),
        today_cost_micros=column(lambda h: h.today.cost_micros),
        today_value_micros=column(lambda h: h.today.conversion_value_micros),
        today_clicks=column(lambda h: h.today.clicks),
        week_cost_micros=column(lambda h: h.trailing_7d.cost_micros),
        week_value_micros=column(lambda h: h.trailing_7d.conversion_value_micros),
        week_clicks=column(lambda h: h.trailing_7d.clicks),
        days_seen=days_seen,
        daypart=snapshot.daypart % snapshot.dayparts_per_day,
        dayparts_per_day=snapshot.dayparts_per_day,
        expected_spend_fraction=snapshot.expected_spend_fraction,
        week_conversions=column(lambda h: h.trailing_7d.conversions),
        target_roas=np.array([_target_roas(h) for h in holders], dtype=np.float64),
        target_cpa_micros=np.array([_target_cpa(h) for h in holders], dtype=np.float64),
    )


def _target_roas(holder: EntityState) -> float:
    """Return the holder's ROAS target as a ratio where its strategy bids to one, else NaN."""
    s = holder.bidding_strategy
    if s is None or not s.uses_target_roas or not holder.target_roas_bps:
        return math.nan
    return holder.target_roas_bps / 10_000


def _target_cpa(holder: EntityState) -> float:
    """Return the holder's CPA target in micros where its strategy bids to one, else NaN."""
    s = holder.bidding_strategy
    if s is None or not s.uses_target_cpa or not holder.target_cpa_micros:
        return math.nan
    return float(holder.target_cpa_micros)
