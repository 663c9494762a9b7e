"""Project per-holder wishes onto budgets that keep the account total and the max-change limit.

A policy (learned or baseline) says, per budget holder, by what factor it would like the budget to
move. `project_budgets` turns those wishes into integer-micro budgets that:

* sum to exactly the account's total (never more), whatever the wishes;
* move each budget by at most `max_change_pct` (the guardrails' limit, 20 % by default), so little or
  nothing gets clipped downstream;
* never cut a budget below what the holder already spent today (a cut below that cannot take money
  back, and would let the account's day total exceed its budget).

It is a water-filling: find the scale λ with Σ clip(λ·wish_i, low_i, high_i) = total by bisection,
vectorised, so 10,000 holders cost a few milliseconds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bidloop.core.errors import InputError

__all__ = ["action_to_multipliers", "project_bid_multipliers", "project_budgets"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def action_to_multipliers(action: NDArray[np.floating], max_change_pct: float) -> tuple[FloatArray, FloatArray]:
    """Map a policy's raw output in [-1, 1] (shape ``(N, 2)``) to budget wishes and bid factors.

    Column 0 is the budget wish ``(1 + max_change)**a``; column 1 the bid factor ``(1 + max_change)**a``.
    Values outside [-1, 1] are clipped first.

    Raises:
        InputError: If the array is not ``(N, 2)``.
    """
    a = np.asarray(action, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise InputError(f"a policy action must have shape (N, 2), got {a.shape}")
    a = np.clip(np.nan_to_num(a, nan=0.0), -1.0, 1.0)
    step = np.log1p(max_change_pct / 100.0)
    return np.exp(a[:, 0] * step), np.exp(a[:, 1] * step)


def project_budgets(
    current_micros: NDArray[np.integer] | FloatArray,
    wish: FloatArray,
    *,
    total_micros: int,
    max_change_pct: float,
    floor_micros: NDArray[np.integer] | FloatArray | None = None,
    min_budget_micros: int = 0,
) -> IntArray:
    """Return new daily budgets in micros that sum to `total_micros` and move by at most `max_change_pct`.

    Args:
        current_micros: ``(N,)`` budgets now.
        wish: ``(N,)`` wished multiplicative change (1 = keep); non-finite or negative values count as 1.
        total_micros: The account's total daily budget to keep (usually ``current_micros.sum()``).
        max_change_pct: Largest move of one budget, in percent of its current value.
        floor_micros: ``(N,)`` spend today so far: no budget is set below it.
        min_budget_micros: Platform minimum for a budget.

    Returns:
        ``(N,)`` int64 budgets. When the limits make the total unreachable (e.g. floors above it), the
        budgets are the closest feasible ones below the total: the sum never exceeds `total_micros`
        unless the floors alone do.

    Raises:
        InputError: If shapes differ or the limit is not positive.
    """
    cur = np.asarray(current_micros, dtype=np.float64)
    w = np.asarray(wish, dtype=np.float64)
    if cur.shape != w.shape or cur.ndim != 1:
        raise InputError(f"budgets {cur.shape} and wishes {w.shape} must be 1-d of the same length")
    if max_change_pct <= 0:
        raise InputError("max_change_pct must be positive", hint="the guardrails' default is 20")
    if cur.size == 0:
        return np.zeros(0, dtype=np.int64)
    w = np.where(np.isfinite(w) & (w > 0), w, 1.0)
    delta = max_change_pct / 100.0
    low = np.floor(cur * (1.0 - delta))
    high = np.floor(cur * (1.0 + delta))
    low = np.maximum(low, float(min_budget_micros))
    if floor_micros is not None:
        low = np.maximum(low, np.ceil(np.asarray(floor_micros, dtype=np.float64)))
    high = np.maximum(high, low)
    total = float(total_micros)
    target = np.maximum(cur * w, 1e-9)
    if low.sum() >= total:
        budgets = low
    elif high.sum() <= total:
        budgets = high
    else:
        budgets = np.clip(_water_level(target, low, high, total) * target, low, high)
    return _round_to_total(budgets, low, high, total)


def _water_level(target: FloatArray, low: FloatArray, high: FloatArray, total: float) -> float:
    """Return λ with Σ clip(λ·target, low, high) = total, exactly, in O(N log N).

    The sum is continuous, piecewise linear and non-decreasing in λ with breakpoints low/target and
    high/target; find the segment that reaches `total` and solve the linear piece.
    """
    a = low / target
    c = high / target
    order_a = np.argsort(a, kind="stable")
    order_c = np.argsort(c, kind="stable")
    a_sorted, c_sorted = a[order_a], c[order_c]
    cum_lo = np.concatenate([[0.0], np.cumsum(low[order_a])])
    cum_t_a = np.concatenate([[0.0], np.cumsum(target[order_a])])
    cum_hi = np.concatenate([[0.0], np.cumsum(high[order_c])])
    cum_t_c = np.concatenate([[0.0], np.cumsum(target[order_c])])

    def parts(lam: FloatArray) -> tuple[FloatArray, FloatArray]:
        below_a = np.searchsorted(a_sorted, lam, side="left")  # a_i < λ
        below_c = np.searchsorted(c_sorted, lam, side="right")  # c_i <= λ
        fixed = (cum_lo[-1] - cum_lo[below_a]) + cum_hi[below_c]
        slope = cum_t_a[below_a] - cum_t_c[below_c]
        return fixed, slope

    points = np.unique(np.concatenate([a, c]))
    fixed, slope = parts(points)
    values = fixed + points * slope
    k = int(np.searchsorted(values, total, side="left"))
    if k == 0:
        return float(points[0])
    if k >= points.size:
        return float(points[-1])
    mid = np.array([0.5 * (points[k - 1] + points[k])])
    fixed_mid, slope_mid = parts(mid)
    if slope_mid[0] <= 0:
        return float(points[k])
    return float((total - fixed_mid[0]) / slope_mid[0])


def _round_to_total(budgets: FloatArray, low: FloatArray, high: FloatArray, total: float) -> IntArray:
    """Round budgets down to integer micros, then add one micro to the largest fractions until the total is met."""
    floors = np.floor(budgets)
    out = floors.astype(np.int64)
    remainder = int(min(total, float(np.floor(high).sum())) - floors.sum())
    if remainder > 0:
        room = np.floor(high) - floors >= 1.0
        fraction = np.where(room, budgets - floors, -1.0)
        order = np.argsort(-fraction, kind="stable")[:remainder]
        out[order[room[order]]] += 1
    return out


def project_bid_multipliers(
    current: FloatArray, factor: FloatArray, *, low: float = 0.5, high: float = 2.0
) -> FloatArray:
    """Return ``current · factor`` clipped to [low, high] (bid multipliers relative to a reference bid)."""
    f = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
    return np.clip(np.asarray(current, dtype=np.float64) * f, low, high)
