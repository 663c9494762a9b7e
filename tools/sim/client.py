"""Serve the simulated market through bidloop's one platform protocol (`PlatformClient`, name `sim`).

Reads return what a platform would report: money in integer micros, conversions as they arrive
(delayed and noisy), never the market's hidden truth. Writes take `Clearance`s only; every item is
verified before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from bidloop.core.clearance import Clearance, verify_clearance
from bidloop.core.decisions import WriteResult, WriteStatus
from bidloop.core.entities import AccountInfo, BudgetPeriod, EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.tools.sim.market import SIM_EPOCH, STRATEGY_BY_PLATFORM, AccountView, SimMarket

__all__ = ["SimClient"]

_STRATEGY_KINDS = (EntityKind.CAMPAIGN, EntityKind.AD_GROUP, EntityKind.KEYWORD)
"""Kinds that carry the bidding strategy in force (inherited from their budget holder)."""

_METRIC_FIELDS = ("impressions", "clicks", "cost_micros", "conversions", "conversion_value_micros")


def _metrics_rows(counters: dict[str, np.ndarray]) -> list[Metrics]:
    """Build one `Metrics` per column of the counter arrays (trusted data: no validation)."""
    columns = [counters[name].tolist() for name in _METRIC_FIELDS]
    return [
        Metrics.model_construct(
            impressions=int(i), clicks=int(c), cost_micros=int(m), conversions=float(v), conversion_value_micros=int(w)
        )
        for i, c, m, v, w in zip(*columns, strict=True)
    ]


class SimClient:
    """A `PlatformClient` over a `SimMarket`: list accounts, read snapshots, apply cleared actions, read back.

    The client never advances time; whoever owns the market (the simulate mode, the env) calls
    `SimMarket.advance`.
    """

    name = "sim"

    def __init__(self, market: SimMarket) -> None:
        self.market = market

    def list_accounts(self) -> list[AccountInfo]:
        """Return the market's accounts."""
        return self.market.accounts()

    def read_snapshot(self, account_id: str) -> Snapshot:
        """Read one account: structure, settings, and reported metrics (today so far, trailing 7 days, history).

        Raises:
            UnknownAccountError: If the market has no such account.
        """
        view = self.market.account_view(account_id)
        entities = self._entity_states(view)
        return Snapshot.model_construct(
            account_id=view.info.account_id,
            platform=view.info.platform,
            currency=view.info.currency,
            time_zone=view.info.time_zone,
            as_of=view.as_of,
            daypart=view.daypart,
            dayparts_per_day=view.dayparts_per_day,
            expected_spend_fraction=view.expected_spend_fraction,
            account_daily_budget_micros=view.account_daily_budget_micros,
            entities=entities,
        )

    def _entity_states(self, view: AccountView) -> list[EntityState]:
        platform = view.info.platform
        account_id = view.info.account_id
        today = _metrics_rows(view.today)
        trailing = _metrics_rows(view.trailing_7d)
        n_days = view.history["impressions"].shape[0]
        history_rows: dict[int, list[Metrics]] = {}
        if n_days:
            wanted = np.flatnonzero(view.history_mask)
            per_day = [_metrics_rows({k: v[d, wanted] for k, v in view.history.items()}) for d in range(n_days)]
            for j, column in enumerate(wanted.tolist()):
                history_rows[column] = [per_day[d][j] for d in range(n_days)]
        budgets = view.budget_micros.tolist()
        bids = view.bid_micros.tolist()
        names = STRATEGY_BY_PLATFORM[Platform(platform)]
        codes = view.strategy_codes.tolist() if view.strategy_codes is not None else [-1] * len(budgets)
        blocked = view.blocked_by or [None] * len(budgets)
        enabled = view.enabled.tolist()
        negatives = self.market.negatives_by_entity()
        indices = view.indices.tolist()
        states: list[EntityState] = []
        for i, kind in enumerate(view.kinds):
            ref = EntityRef.model_construct(platform=platform, account_id=account_id, kind=kind, entity_id=view.ids[i])
            status = Status.ENABLED if enabled[i] else Status.PAUSED
            strategy = names.get(codes[i]) if kind in _STRATEGY_KINDS else None
            # Bids are reported only where the strategy in force acts on them (the convention of every client).
            bid_used = strategy is None or strategy.uses_bids
            fields: dict[str, Any] = {
                "ref": ref,
                "name": view.names[i],
                "parent_id": view.parent_ids[i],
                "campaign_id": view.campaign_ids[i],
                "status": status,
                "daily_budget_micros": budgets[i] if budgets[i] >= 0 else None,
                "cpc_bid_micros": bids[i]
                if bids[i] >= 0 and kind in (EntityKind.KEYWORD, EntityKind.AD_GROUP) and bid_used
                else None,
                "bidding_strategy": strategy,
                "delivery_blocked_by": blocked[i],
                "text": view.texts[i] if kind is not EntityKind.ACCOUNT else None,
                "match_type": view.match_types[i],
                "today": today[i],
                "trailing_7d": trailing[i],
                "daily_history": history_rows.get(i, []),
                "negative_keywords": negatives.get(indices[i], []),
            }
            if budgets[i] >= 0:
                fields.update(self._budget_fields(view, i))
            states.append(EntityState.model_construct(**fields))
        return states

    def _budget_fields(self, view: AccountView, i: int) -> dict[str, Any]:
        """Return a budget holder's target and lifetime-budget fields (the daily budget is set by the caller)."""
        out: dict[str, Any] = {}
        if view.target_roas_bps is not None and view.target_roas_bps[i] > 0:
            out["target_roas_bps"] = int(view.target_roas_bps[i])
        if view.target_cpa_micros is not None and view.target_cpa_micros[i] > 0:
            out["target_cpa_micros"] = int(view.target_cpa_micros[i])
        if view.lifetime_micros is None or view.lifetime_micros[i] < 0:
            return out
        assert view.flight_spent_micros is not None and view.flight_start_day is not None
        assert view.flight_end_day is not None
        out["budget_period"] = BudgetPeriod.LIFETIME
        out["lifetime_budget_micros"] = int(view.lifetime_micros[i])
        out["budget_remaining_micros"] = max(int(view.lifetime_micros[i] - view.flight_spent_micros[i]), 0)
        out["flight_start"] = SIM_EPOCH + timedelta(days=int(view.flight_start_day[i]))
        out["flight_end"] = SIM_EPOCH + timedelta(days=int(view.flight_end_day[i]) + 1)
        return out

    def apply(
        self, account_id: str, clearances: Sequence[Clearance], *, validate_only: bool = False
    ) -> list[WriteResult]:
        """Apply cleared actions in order (from the next daypart on); one result per action.

        Every clearance is verified before anything changes. A target that does not exist (or is in
        another account) gives a `failed` result. With `validate_only`, nothing changes and successful
        results are `validated`. Actions are absolute targets, so stale `old_*` values do not matter.

        Raises:
            UnfilteredActionError: If any item is not a valid clearance (nothing is changed).
            UnknownAccountError: If the market has no such account.
        """
        actions = [verify_clearance(c) for c in clearances]
        self.market.account_index(account_id)
        results: list[WriteResult] = []
        for action in actions:
            if action.entity.account_id != account_id:
                results.append(
                    WriteResult(
                        action_id=action.action_id,
                        status=WriteStatus.FAILED,
                        message=f"action targets account {action.entity.account_id}, not {account_id}",
                    )
                )
                continue
            results.append(self.market.apply_action(action, validate_only=validate_only))
        return results

    def read_back(self, account_id: str, refs: Sequence[EntityRef]) -> dict[str, EntityState]:
        """Read the current settings (and metrics) of the given entities, keyed by `EntityRef.key`.

        Entities that do not exist are left out.

        Raises:
            UnknownAccountError: If the market has no such account.
        """
        platform = self.market.accounts()[self.market.account_index(account_id)].platform
        found: list[tuple[str, int]] = []
        for ref in refs:
            if ref.account_id != account_id or ref.platform is not platform:
                continue
            index = self.market.find(account_id, ref.kind, ref.entity_id)
            if index is not None:
                found.append((ref.key, index))
        if not found:
            return {}
        view = self.market.account_view(account_id, np.asarray([i for _, i in found], dtype=np.int64))
        states = self._entity_states(view)
        return {key: state for (key, _), state in zip(found, states, strict=True)}
