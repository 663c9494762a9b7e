"""Read what Meta's budget, bid and status fields mean for one campaign, ad set or ad.

The same field means different things by context, and the client must know which before it reads
or writes money:

* A campaign with a `daily_budget` or `lifetime_budget` holds the budget (Advantage campaign budget,
  CBO); its ad sets then have no budget, only spend limits (`daily_min_spend_target`,
  `daily_spend_cap`), and the campaign's `bid_strategy` applies to them.
* A lifetime budget is read as what remains (`budget_remaining`) over the days left in the flight
  (today included, in the account's zone); a write keeps what was spent and gives the new daily
  rate to each remaining day.
* `bid_amount` is a bid cap under `LOWEST_COST_WITH_BID_CAP`, a cost per result under `COST_CAP`,
  and ignored under `LOWEST_COST_WITHOUT_CAP`; `bid_constraints.roas_average_floor` is the minimum
  ROAS (x10,000) under `LOWEST_COST_WITH_MIN_ROAS`.
* `status` is the object's own setting; `effective_status` says whether it delivers, given its
  parents and its review.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, Status
from bidloop.tools.meta._currency import meta_units_to_micros

__all__ = [
    "DEFAULT_STRATEGY",
    "FLIGHT_ENDED",
    "FLIGHT_NOT_STARTED",
    "REVIEW_BLOCKS",
    "BudgetShape",
    "Lever",
    "days_left",
    "describe",
    "holds_budget",
    "parse_time",
    "strategy_from_meta",
    "units",
]

FLIGHT_ENDED = "FLIGHT_ENDED"
"""`delivery_blocked_by` of a holder whose flight (`end_time` / `stop_time`) is over."""
FLIGHT_NOT_STARTED = "FLIGHT_NOT_STARTED"
"""`delivery_blocked_by` of a holder whose flight starts after today."""

_STATUS_FROM_META = {"ACTIVE": Status.ENABLED, "PAUSED": Status.PAUSED}
"""A configured status; DELETED and ARCHIVED (and anything unknown) read as REMOVED."""

_STRATEGY_FROM_META = {
    "LOWEST_COST_WITHOUT_CAP": BiddingStrategy.LOWEST_COST,
    "COST_CAP": BiddingStrategy.COST_CAP,
    "LOWEST_COST_WITH_BID_CAP": BiddingStrategy.BID_CAP,
    "LOWEST_COST_WITH_MIN_ROAS": BiddingStrategy.MIN_ROAS,
}
REVIEW_BLOCKS = frozenset({"DISAPPROVED", "PENDING_REVIEW", "WITH_ISSUES", "PENDING_BILLING_INFO"})
"""Ad effective statuses that come from review or billing, not a switch: enabling the ad does not help."""

DEFAULT_STRATEGY = BiddingStrategy.LOWEST_COST
"""What an object with no `bid_strategy` bids with: Meta's default, LOWEST_COST_WITHOUT_CAP."""


@dataclass(frozen=True)
class BudgetShape:
    """How a holder keeps its budget, as needed to write a new daily rate.

    Attributes:
        field: `daily_budget` or `lifetime_budget`.
        days_left: Days left in the flight, today included (1 for a daily budget).
        spent_units: What a lifetime budget has spent so far (lifetime - remaining), in Meta units.
    """

    field: Literal["daily_budget", "lifetime_budget"]
    days_left: int = 1
    spent_units: int = 0


@dataclass(frozen=True)
class Lever:
    """What the client must know about one object to plan a write on it.

    Attributes:
        kind: Campaign, ad group (ad set) or creative (ad).
        strategy: The bid strategy in force (None for ads).
        shape: How it holds its budget; None when it holds none.
        budget_holder_id: For an ad set inside a campaign budget, the campaign that holds it.
        review_block: For an ad, the review outcome that stops it whatever its own status (DISAPPROVED, ...).
    """

    kind: EntityKind
    strategy: BiddingStrategy | None = None
    shape: BudgetShape | None = None
    budget_holder_id: str | None = None
    review_block: str | None = None


def units(value: object) -> int | None:
    """Return a Graph money field (an integer in Meta units, sent as a string), or None when unset."""
    if value in (None, ""):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number >= 0 else None


def _positive(value: object) -> int | None:
    number = units(value)
    return number if number else None


def parse_time(text: object) -> datetime | None:
    """Parse a Graph datetime (`2026-06-30T23:59:59-0700`); None when unset or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    for fmt in (None, "%Y-%m-%dT%H:%M:%S%z"):
        try:
            moment = datetime.fromisoformat(text) if fmt is None else datetime.strptime(text, fmt)
        except ValueError:
            continue
        return moment if moment.tzinfo is not None else None
    return None


def days_left(end: datetime, now: datetime) -> int:
    """Return the days left in a flight ending at `end`, today (in `now`'s zone) included; at least 1."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((end.astimezone(now.tzinfo) - midnight).total_seconds() / 86_400))


def strategy_from_meta(value: object) -> BiddingStrategy:
    """Map a Meta `bid_strategy` to bidloop's; unset means Meta's default, unknown ones are OTHER."""
    if value in (None, ""):
        return DEFAULT_STRATEGY
    return _STRATEGY_FROM_META.get(str(value), BiddingStrategy.OTHER)


def holds_budget(raw: Mapping[str, Any]) -> bool:
    """Return True if a campaign or ad set has a budget of its own (a campaign: CBO)."""
    return _positive(raw.get("daily_budget")) is not None or _positive(raw.get("lifetime_budget")) is not None


def _budget(
    raw: Mapping[str, Any], end_field: str, currency: str, now: datetime
) -> tuple[BudgetShape | None, dict[str, Any]]:
    daily = _positive(raw.get("daily_budget"))
    if daily is not None:
        return BudgetShape("daily_budget"), {"daily_budget_micros": meta_units_to_micros(daily, currency)}
    lifetime = _positive(raw.get("lifetime_budget"))
    if lifetime is None:
        return None, {}
    remaining = units(raw.get("budget_remaining"))
    remaining = lifetime if remaining is None else min(remaining, lifetime)
    start, end = parse_time(raw.get("start_time")), parse_time(raw.get(end_field))
    left = days_left(end, now) if end is not None else 1
    remaining_micros = meta_units_to_micros(remaining, currency)
    fields: dict[str, Any] = {
        "budget_period": BudgetPeriod.LIFETIME,
        "lifetime_budget_micros": meta_units_to_micros(lifetime, currency),
        "budget_remaining_micros": remaining_micros,
        "daily_budget_micros": remaining_micros // left,
        "flight_start": start,
        "flight_end": end,
    }
    return BudgetShape("lifetime_budget", left, lifetime - remaining), fields


def _flight_block(raw: Mapping[str, Any], end_field: str, now: datetime) -> str | None:
    start, end = parse_time(raw.get("start_time")), parse_time(raw.get(end_field))
    if end is not None and end <= now:
        return FLIGHT_ENDED
    tomorrow = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    if start is not None and start >= tomorrow:
        return FLIGHT_NOT_STARTED
    return None


def _bid_fields(strategy: BiddingStrategy, raw: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """Read `bid_amount` / `roas_average_floor` as the lever the strategy makes of them."""
    amount = _positive(raw.get("bid_amount"))
    if strategy is BiddingStrategy.BID_CAP and amount is not None:
        return {"cpc_bid_micros": meta_units_to_micros(amount, currency)}
    if strategy is BiddingStrategy.COST_CAP and amount is not None:
        return {"target_cpa_micros": meta_units_to_micros(amount, currency)}
    if strategy is BiddingStrategy.MIN_ROAS:
        constraints = raw.get("bid_constraints")
        floor = units(constraints.get("roas_average_floor")) if isinstance(constraints, Mapping) else None
        if floor:
            return {"target_roas_bps": floor}
    return {}


def describe(
    kind: EntityKind,
    raw: Mapping[str, Any],
    *,
    currency: str,
    now: datetime,
    campaign: Mapping[str, Any] | None = None,
    child_strategies: set[BiddingStrategy] | None = None,
    min_daily_budget_units: int | None = None,
) -> tuple[dict[str, Any], Lever]:
    """Return one object's `EntityState` fields (no metrics, no ids) and its `Lever`.

    Args:
        kind: CAMPAIGN, AD_GROUP (ad set) or CREATIVE (ad).
        raw: The object as Graph returned it.
        currency: The account currency (budgets and bids are in Meta units of it).
        now: The current moment in the account's zone (flights and days left are judged by it).
        campaign: For an ad set, its campaign as Graph returned it (CBO and its strategy), if read.
        child_strategies: For a campaign without its own `bid_strategy`, its ad sets' strategies.
        min_daily_budget_units: The ad account's `min_daily_budget`, put on budget holders.
    """
    status = _STATUS_FROM_META.get(str(raw.get("status")), Status.REMOVED)
    effective = raw.get("effective_status")
    blocked: str | None = None
    if status is Status.ENABLED and effective not in (None, "", "ACTIVE"):
        blocked = str(effective)
    fields: dict[str, Any] = {"status": status}
    if kind is EntityKind.CREATIVE:
        review = str(effective) if effective in REVIEW_BLOCKS else None
        # A review outcome is kept even on a paused ad: it says an enable would not deliver.
        fields["delivery_blocked_by"] = blocked or review
        return fields, Lever(kind, review_block=review)

    end_field = "stop_time" if kind is EntityKind.CAMPAIGN else "end_time"
    shape, budget_fields = _budget(raw, end_field, currency, now)
    fields.update(budget_fields)
    if status is Status.ENABLED and blocked is None and (shape is not None or kind is EntityKind.AD_GROUP):
        blocked = _flight_block(raw, end_field, now)
    fields["delivery_blocked_by"] = blocked
    if shape is not None and min_daily_budget_units:
        fields["min_daily_budget_micros"] = meta_units_to_micros(min_daily_budget_units, currency)

    if kind is EntityKind.CAMPAIGN:
        if raw.get("bid_strategy"):
            strategy: BiddingStrategy | None = strategy_from_meta(raw.get("bid_strategy"))
        elif child_strategies:
            strategy = next(iter(child_strategies)) if len(child_strategies) == 1 else BiddingStrategy.OTHER
        else:
            strategy = DEFAULT_STRATEGY if shape is not None else None
        fields["bidding_strategy"] = strategy
        return fields, Lever(kind, strategy, shape)

    holder_id: str | None = None
    own = raw.get("bid_strategy")
    if campaign is not None and holds_budget(campaign):
        holder_id = str(campaign.get("id") or raw.get("campaign_id"))
        own = campaign.get("bid_strategy") or own
        for name, field in (
            ("daily_min_spend_target", "daily_min_spend_micros"),
            ("daily_spend_cap", "daily_spend_cap_micros"),
        ):
            limit = _positive(raw.get(name))
            if limit is not None:
                fields[field] = meta_units_to_micros(limit, currency)
    strategy = strategy_from_meta(own)
    fields["bidding_strategy"] = strategy
    fields.update(_bid_fields(strategy, raw, currency))
    return fields, Lever(kind, strategy, shape, holder_id)
