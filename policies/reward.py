"""Turn a performance delta into reward with the configurable reward spec.

The default spec follows the operator's usual stack (see `bidloop.core.settings.RewardConfig`):
+2 when ROAS >= target (3), +1 when spend is within +-5 % of pace, -3 when CPC rose more than 20 %.
The same function scores an action's matured window and a simulated day, so learning and reporting
agree on what "good" means.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from bidloop.core.metrics import Metrics
from bidloop.core.settings import RewardConfig

__all__ = ["RewardBreakdown", "score_period"]


class RewardBreakdown(BaseModel):
    """A reward and the terms it is made of."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total: float
    roas_term: float
    pace_term: float
    cpc_term: float
    roas: float | None
    pace_ratio: float | None
    """Spend / planned spend over the period (1.0 = exactly on pace)."""
    cpc_change_pct: float | None


def score_period(
    after: Metrics,
    *,
    planned_spend_micros: int | None,
    before: Metrics | None,
    spec: RewardConfig,
) -> RewardBreakdown:
    """Score one period's outcome.

    Args:
        after: What happened in the period being scored (e.g. the attribution window after an action).
        planned_spend_micros: What should have been spent in the period (budget x pace share); None or 0
            means pacing is not judged.
        before: The comparable period before, for the CPC change; None means CPC is not judged.
        spec: The reward spec.

    Returns:
        The total and its terms. Terms that cannot be judged (nothing spent, no clicks) are 0.
    """
    roas = after.roas
    roas_term = spec.roas_bonus if roas is not None and roas >= spec.roas_target else 0.0

    pace_ratio: float | None = None
    pace_term = 0.0
    if planned_spend_micros:
        pace_ratio = after.cost_micros / planned_spend_micros
        if abs(pace_ratio - 1.0) * 100.0 <= spec.pace_tolerance_pct:
            pace_term = spec.pace_bonus

    cpc_change_pct: float | None = None
    cpc_term = 0.0
    if before is not None and before.cpc_micros and after.cpc_micros:
        cpc_change_pct = (after.cpc_micros / before.cpc_micros - 1.0) * 100.0
        if cpc_change_pct > spec.cpc_spike_pct:
            cpc_term = spec.cpc_spike_penalty

    total = roas_term + pace_term + cpc_term
    if not math.isfinite(total):  # pragma: no cover - every term is a finite config value
        total = 0.0
    return RewardBreakdown(
        total=total,
        roas_term=roas_term,
        pace_term=pace_term,
        cpc_term=cpc_term,
        roas=roas,
        pace_ratio=pace_ratio,
        cpc_change_pct=cpc_change_pct,
    )
