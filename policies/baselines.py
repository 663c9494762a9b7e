"""Baseline bid policies every learned policy is judged against (all see only what a platform reports).

Each baseline answers, per daypart, a budget wish and a bid factor per holder (1 = keep); the
projection (`bidloop.policies.projection`) turns wishes into budgets that keep the account total and
the max-change limit, exactly as for the learned policy.

* `HoldCurrent`: keep the initial set-up.
* `EqualSplit`: move every budget toward an equal share.
* `RandomPolicy`: random wishes and bid factors (the floor).
* `RoasChaser`: budget shares proportional to trailing observed ROAS, with ε exploration.
* `PacingController`: budgets kept; each bid follows a PI controller on today's spend vs. pace.
* `FittedCurves`: fit a saturation curve value = a·spend^b per holder from its observed days (shrunk to a
  prior slope when spend barely varied), cap it at the volume the holder showed it can absorb, then
  allocate the account budget greedily by marginal return on a grid (Meridian-style hill climbing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from bidloop.core.errors import InputError
from bidloop.policies.observation import ReportedHolders

__all__ = [
    "BASELINE_NAMES",
    "BidPolicy",
    "EqualSplit",
    "FittedCurves",
    "HoldCurrent",
    "PacingController",
    "RandomPolicy",
    "RoasChaser",
    "make_baseline",
]

FloatArray = NDArray[np.float64]


class BidPolicy(Protocol):
    """What the evaluation plays: a name, a reset per episode and one decision per daypart."""

    name: str

    def reset(self, n_holders: int, seed: int) -> None:
        """Forget the last episode; `seed` seeds any randomness of the policy."""
        ...

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Return ``(budget_wish, bid_factor)``, each ``(N,)``, 1 = keep."""
        ...


class HoldCurrent:
    """Keep every budget and bid as they are."""

    name = "hold_current"

    def reset(self, n_holders: int, seed: int) -> None:
        """Nothing to forget."""
        self.n = n_holders

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Return ones."""
        ones = np.ones(reported.n_holders)
        return ones, ones.copy()


class EqualSplit:
    """Move every budget toward the account total divided equally."""

    name = "equal_split"

    def reset(self, n_holders: int, seed: int) -> None:
        """Nothing to forget."""

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Wish each budget to the mean budget."""
        b = np.maximum(reported.budget_micros, 1.0)
        return b.mean() / b, np.ones_like(b)


class RandomPolicy:
    """Random budget wishes and bid factors within the max-change limit (the floor)."""

    name = "random"

    def __init__(self, max_change_pct: float = 20.0) -> None:
        self.step = np.log1p(max_change_pct / 100.0)
        self.rng = np.random.default_rng(0)

    def reset(self, n_holders: int, seed: int) -> None:
        """Reseed."""
        self.rng = np.random.default_rng([seed, 4_242])

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Return log-uniform factors in [1/(1+δ), 1+δ]."""
        n = reported.n_holders
        return np.exp(self.rng.uniform(-1, 1, n) * self.step), np.exp(self.rng.uniform(-1, 1, n) * self.step)


def _trailing_roas(reported: ReportedHolders) -> FloatArray:
    cost = reported.week_cost_micros + reported.today_cost_micros
    value = reported.week_value_micros + reported.today_value_micros
    account = value.sum() / cost.sum() if cost.sum() > 0 else 1.0
    return np.where(cost > 0, value / np.maximum(cost, 1.0), account)


class RoasChaser:
    """Budget shares proportional to trailing observed ROAS, mixed with ε of an equal split."""

    name = "roas_chaser"

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = epsilon

    def reset(self, n_holders: int, seed: int) -> None:
        """Nothing to forget."""

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Wish budgets toward ROAS-proportional shares."""
        b = np.maximum(reported.budget_micros, 1.0)
        roas = np.maximum(_trailing_roas(reported), 1e-6)
        share = (1 - self.epsilon) * roas / roas.sum() + self.epsilon / b.size
        return share * b.sum() / b, np.ones_like(b)


class PacingController:
    """Keep budgets; move each bid with a PI controller on today's spend vs. the pace line."""

    name = "pacing_pi"

    def __init__(self, k_p: float = 0.6, k_i: float = 0.15, max_change_pct: float = 20.0) -> None:
        self.k_p = k_p
        self.k_i = k_i
        self.limit = np.log1p(max_change_pct / 100.0)
        self.integral = np.zeros(0)

    def reset(self, n_holders: int, seed: int) -> None:
        """Clear the integral term."""
        self.integral = np.zeros(n_holders)

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Raise the bid of holders behind pace, lower it for holders ahead."""
        b = np.maximum(reported.budget_micros, 1.0)
        if reported.expected_spend_fraction > 0.05:
            pace = reported.today_cost_micros / (b * reported.expected_spend_fraction)
        else:
            days = max(reported.days_seen, 1)
            pace = reported.week_cost_micros / (b * days) if reported.days_seen else np.ones_like(b)
        error = np.clip(1.0 - pace, -1.0, 1.0)
        self.integral = np.clip(self.integral + error, -3.0, 3.0)
        log_factor = np.clip(self.k_p * error + self.k_i * self.integral, -self.limit, self.limit)
        return np.ones_like(b), np.exp(log_factor)


class FittedCurves:
    """Fit value = a·spend^b per holder from observed days, then allocate greedily by marginal return.

    Args:
        prior_slope: The curve exponent assumed when the observed spend barely varied.
        prior_weight: How many days of evidence the prior is worth.
        grid_steps: Budget increments of the greedy allocation.
    """

    name = "fitted_curves"

    def __init__(self, prior_slope: float = 0.6, prior_weight: float = 2.0, grid_steps: int = 200) -> None:
        self.prior_slope = prior_slope
        self.prior_weight = prior_weight
        self.grid_steps = grid_steps
        self.days: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        self.last_today: tuple[FloatArray, FloatArray, FloatArray] | None = None

    def reset(self, n_holders: int, seed: int) -> None:
        """Forget the observed days."""
        self.days = []
        self.last_today = None

    def _record(self, reported: ReportedHolders) -> None:
        # At a day boundary the counters of the day just closed are the week's newest day; the week
        # totals move by it, so keep today's last counters and record them when the daypart wraps.
        if reported.daypart == 0 and self.last_today is not None:
            self.days.append(self.last_today)
            self.days = self.days[-14:]
        self.last_today = (
            reported.today_cost_micros.copy(),
            reported.today_value_micros.copy(),
            np.maximum(reported.budget_micros, 1.0),
        )

    def _fit(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Return per-holder (a, b, cap) with spend in micros."""
        n = reported.n_holders
        week_days = max(reported.days_seen, 1)
        mean_cost = np.maximum(reported.week_cost_micros / week_days, 1.0)
        mean_value = np.maximum(reported.week_value_micros / week_days, 1e-3)
        slope = np.full(n, self.prior_slope)
        if len(self.days) >= 3:
            cost = np.maximum(np.stack([d[0] for d in self.days]), 1.0)
            value = np.maximum(np.stack([d[1] for d in self.days]), 1e-3)
            x = np.log(cost) - np.log(cost).mean(axis=0)
            y = np.log(value) - np.log(value).mean(axis=0)
            sxx = (x * x).sum(axis=0)
            ols = np.where(sxx > 1e-9, (x * y).sum(axis=0) / np.maximum(sxx, 1e-12), self.prior_slope)
            evidence = sxx / 0.01  # a day with a 10 % spend move is worth one prior day
            slope = (evidence * ols + self.prior_weight * self.prior_slope) / (evidence + self.prior_weight)
        slope = np.clip(slope, 0.2, 1.0)
        a = mean_value / mean_cost**slope
        budget = np.maximum(reported.budget_micros, 1.0)
        utilisation = reported.week_cost_micros / (budget * week_days) if reported.days_seen else np.ones(n)
        cap = np.where(utilisation < 0.9, mean_cost * 1.1, np.inf)
        return a, slope, cap

    def act(self, reported: ReportedHolders) -> tuple[FloatArray, FloatArray]:
        """Wish budgets toward the greedy marginal-return allocation of the fitted curves."""
        self._record(reported)
        b = np.maximum(reported.budget_micros, 1.0)
        if reported.days_seen == 0:
            return np.ones_like(b), np.ones_like(b)
        a, slope, cap = self._fit(reported)
        total = b.sum()
        step = total / self.grid_steps
        alloc = np.zeros_like(b)
        for _ in range(self.grid_steps):
            gain = a * ((alloc + step) ** slope - alloc**slope)
            gain = np.where(alloc + step <= cap, gain, -np.inf)
            best = int(np.argmax(gain))
            if not np.isfinite(gain[best]):
                alloc += step / b.size  # every holder is at its volume cap: spread the rest
                continue
            alloc[best] += step
        return np.maximum(alloc, 1.0) / b, np.ones_like(b)


BASELINE_NAMES: tuple[str, ...] = (
    "hold_current",
    "equal_split",
    "random",
    "roas_chaser",
    "pacing_pi",
    "fitted_curves",
)


def make_baseline(name: str, max_change_pct: float = 20.0) -> BidPolicy:
    """Return a fresh baseline by name (see `BASELINE_NAMES`).

    Raises:
        InputError: If the name is unknown.
    """
    factories: dict[str, Callable[[], BidPolicy]] = {
        "hold_current": HoldCurrent,
        "equal_split": EqualSplit,
        "random": lambda: RandomPolicy(max_change_pct),
        "roas_chaser": RoasChaser,
        "pacing_pi": lambda: PacingController(max_change_pct=max_change_pct),
        "fitted_curves": FittedCurves,
    }
    if name not in factories:
        raise InputError(f"unknown baseline {name!r}", hint=f"choose from {', '.join(BASELINE_NAMES)}")
    return factories[name]()
