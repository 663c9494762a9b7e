"""Describe the guardrail limits an operator configures; the filter in `bidloop.guardrails` enforces them.

Fail closed: every limit has a conservative default, so an empty configuration never means
"anything goes".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bidloop.core.entities import Platform
from bidloop.core.money import Micros

__all__ = ["GuardrailLimits"]

_DEFAULT_MIN_BUDGET: dict[Platform, int] = {
    Platform.GOOGLE_ADS: 1_000_000,
    Platform.META: 1_000_000,
    Platform.AMAZON_ADS: 1_000_000,
}


class GuardrailLimits(BaseModel):
    """Limits on what any action may do. Percentages are of the current value.

    Attributes:
        max_change_pct: Largest change of a budget or bid in one action, in percent of its old value.
        bid_floor_micros: Lowest bid any action may set.
        bid_ceiling_micros: Highest bid any action may set.
        account_daily_budget_cap_micros: Highest total daily budget of an account after a run.
            None means the total may not grow above what it was when the run started.
        min_budget_micros: The platforms' minimum daily budgets; no budget may be set below.
        approval_above_micros: A budget or bid increase larger than this needs a person's approval.
    """

    model_config = ConfigDict(extra="forbid")

    max_change_pct: float = Field(default=20.0, gt=0, le=100, allow_inf_nan=False)
    bid_floor_micros: Micros = 50_000
    bid_ceiling_micros: Micros = 20_000_000
    account_daily_budget_cap_micros: Micros | None = None
    min_budget_micros: dict[Platform, Micros] = Field(default_factory=lambda: dict(_DEFAULT_MIN_BUDGET))
    approval_above_micros: Micros = 500_000_000

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> GuardrailLimits:
        if self.bid_floor_micros > self.bid_ceiling_micros:
            raise ValueError(
                f"bid_floor_micros ({self.bid_floor_micros}) is above bid_ceiling_micros ({self.bid_ceiling_micros})"
            )
        return self
