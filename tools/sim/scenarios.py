"""Draw simulated markets from named scenario families.

A scenario is drawn in two stages. `draw_design` draws the quantities a marketer thinks in (budget,
CPC, order value, ROAS at the initial set-up, volume headroom, saturation, fatigue, day-parting peak,
...) from the family's ranges; `build_params` calibrates the model's parameters (demand, β, ec) so that
the holder really behaves that way at its initial set-up. `draw_scenario` does both. Fixtures edit a
design (e.g. "ad set 117 is a ROAS leader held back by a low bid") before building it.

Families (each changes the ranges of the `stationary` base):

* ``stationary``: mild CPC noise, no spikes, no drift, light fatigue, concave curves.
* ``cpc_spikes``: frequent CPC spikes (×1.5–3 for 1–4 dayparts) and a noisier CPC.
* ``fatigue_heavy``: creatives lose 10–40 % within one to three weeks of heavy delivery.
* ``dayparted``: strong, holder-specific day-parting peaks.
* ``delayed_conv``: a slow reporting kernel (15 % same daypart, a tail up to two weeks).
* ``drift``: β and ec random-walk noticeably from day to day.
* ``s_curves``: S-shaped response (Hill slope 1.5–2.5) with the initial set-up below the knee.
* ``tight_budget``: budgets well below the available volume (budget-limited everywhere).
* ``loose_budget``: budgets above the available volume (volume-limited, under-delivering).
* ``smart_bidding``: Google-like Smart Bidding: most holders bid to a ROAS target (target ROAS, maximize
  conversion value with a target) or a CPA target (target CPA, maximize conversions with a target), the
  rest manual CPC. The platform ignores bids there; the target is the lever.
* ``cbo_lowest_cost``: Meta-like campaign budgets (CBO / Advantage+): the campaign is the budget holder;
  most run lowest cost (no lever but the budget), some a cost cap (a CPA target), a few a bid cap (bids).

Every family but the last two runs manual CPC everywhere (the strategy of the original market).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from bidloop.core.errors import InputError
from bidloop.tools.sim.model import (
    STRATEGY_MANUAL,
    STRATEGY_NONE,
    STRATEGY_TARGET_CPA,
    STRATEGY_TARGET_ROAS,
    MarketParams,
    hill,
)

__all__ = [
    "SCENARIO_FAMILIES",
    "ScenarioDesign",
    "ScenarioFamily",
    "build_params",
    "delay_kernel",
    "draw_design",
    "draw_scenario",
]

ScenarioFamily = Literal[
    "stationary",
    "cpc_spikes",
    "fatigue_heavy",
    "dayparted",
    "delayed_conv",
    "drift",
    "s_curves",
    "tight_budget",
    "loose_budget",
    "smart_bidding",
    "cbo_lowest_cost",
]
SCENARIO_FAMILIES: tuple[str, ...] = get_args(ScenarioFamily)
"""Every scenario family's name."""

FloatArray = NDArray[np.float64]


def delay_kernel(
    dayparts_per_day: int, *, same_daypart: float, within_day: float, tail_days: float, max_days: int
) -> FloatArray:
    """Return a reporting-delay kernel over ``max_days · dayparts_per_day`` lags (shares summing to 1).

    Args:
        dayparts_per_day: Steps per day.
        same_daypart: Share reported in the daypart of the conversion (e.g. 0.35).
        within_day: Share reported within the first day, same daypart included (e.g. 0.5).
        tail_days: Mean delay of the remainder, in days (geometric tail).
        max_days: Length of the kernel in days; the tail is cut there and renormalised.

    Raises:
        InputError: If the shares are not ordered 0 ≤ same_daypart ≤ within_day ≤ 1.
    """
    if not 0.0 <= same_daypart <= within_day <= 1.0 or max_days < 1:
        raise InputError(
            f"delay shares must satisfy 0 <= same_daypart ({same_daypart}) <= within_day ({within_day}) <= 1",
            hint="within_day includes the same-daypart share",
        )
    p = dayparts_per_day
    n_lags = max_days * p
    kernel = np.zeros(n_lags)
    kernel[0] = same_daypart
    if p > 1:
        first_day = 0.5 ** np.arange(p - 1)
        kernel[1:p] = (within_day - same_daypart) * first_day / first_day.sum()
    else:
        kernel[0] = within_day
    if n_lags > p:
        decay = np.exp(-1.0 / max(tail_days * p, 1e-9))
        tail = decay ** np.arange(n_lags - p)
        kernel[p:] = (1.0 - within_day) * tail / tail.sum()
    else:
        kernel[-1] += 1.0 - within_day
    return kernel / kernel.sum()


@dataclasses.dataclass
class ScenarioDesign:
    """What each holder is like at its initial set-up, in a marketer's terms (arrays of length H).

    Attributes:
        family: The family drawn from.
        dayparts_per_day: Steps per day.
        daily_budget: Initial daily budget, currency units.
        base_cpc: CPC at the reference bid, currency units.
        aov: Mean order value, currency units.
        target_roas: ROAS the holder achieves at its initial set-up (fresh creatives).
        volume_headroom: Clicks available / clicks the budget buys at m = 1 (< 1: volume-limited).
        saturation: ec / steady adstock at the initial set-up (< 1: past the half-saturation point).
        slope: Hill slope.
        adstock_theta: Carry-over per daypart.
        fatigue_phi: Fatigue strength.
        peak_daypart: Daypart of the demand peak (float; the profile wraps around the day).
        peak_strength: Peak-to-mean contrast of the day-parting (0 = flat).
        cpc_bid_elasticity: γ.
        volume_bid_elasticity: ε.
        dispersion: Negative-binomial shape.
        kappa_sigma: Stationary log-sd of κ.
        drift_sigma: Daily log-sd of β and ec.
        weekday_amplitude: Size of the weekday effect.
        bid_to_cpc: Reference bid / base CPC (> 1: the bid is above the average CPC paid).
        spike_prob: Chance per daypart that a CPC spike starts.
        kappa_rho: AR(1) coefficient of log κ.
        aov_sigma: Log-sd of one order's value.
        delay_same_daypart: Share of conversions reported in their own daypart.
        delay_within_day: Share reported within a day.
        delay_tail_days: Mean delay of the rest, days.
        delay_max_days: Kernel length, days.
        seed: The seed drawn with (weekday factors are drawn from it in `build_params`).
        strategy: Bidding strategy code per holder (`bidloop.tools.sim.model.STRATEGY_*`; floats).
        target_elasticity: η of Smart Bidding holders (how strongly bids follow the target).
    """

    family: str
    dayparts_per_day: int
    daily_budget: FloatArray
    base_cpc: FloatArray
    aov: FloatArray
    target_roas: FloatArray
    volume_headroom: FloatArray
    saturation: FloatArray
    slope: FloatArray
    adstock_theta: FloatArray
    fatigue_phi: FloatArray
    peak_daypart: FloatArray
    peak_strength: FloatArray
    cpc_bid_elasticity: FloatArray
    volume_bid_elasticity: FloatArray
    dispersion: FloatArray
    kappa_sigma: FloatArray
    drift_sigma: FloatArray
    weekday_amplitude: FloatArray
    bid_to_cpc: FloatArray
    spike_prob: float
    kappa_rho: float
    aov_sigma: float
    delay_same_daypart: float
    delay_within_day: float
    delay_tail_days: float
    delay_max_days: int
    seed: int
    strategy: FloatArray | None = None
    target_elasticity: FloatArray | None = None

    def __post_init__(self) -> None:
        n = int(self.daily_budget.shape[0])
        if self.strategy is None:
            self.strategy = np.full(n, float(STRATEGY_MANUAL))
        if self.target_elasticity is None:
            self.target_elasticity = np.ones(n)

    @property
    def n_holders(self) -> int:
        """Return H."""
        return int(self.daily_budget.shape[0])

    def subset(self, index: slice | list[int] | NDArray[np.int64]) -> ScenarioDesign:
        """Return the design of some holders only (scenario-level fields unchanged)."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                changes[f.name] = value[index].copy()
        return dataclasses.replace(self, **changes)

    @staticmethod
    def concat(designs: list[ScenarioDesign]) -> ScenarioDesign:
        """Stack the holders of several designs; scenario-level fields come from the first.

        Raises:
            InputError: If the list is empty or the designs differ in dayparts per day.
        """
        if not designs or len({d.dayparts_per_day for d in designs}) != 1:
            raise InputError("concat needs one or more designs with the same dayparts_per_day")
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(designs[0]):
            value = getattr(designs[0], f.name)
            if isinstance(value, np.ndarray):
                changes[f.name] = np.concatenate([getattr(d, f.name) for d in designs])
        return dataclasses.replace(designs[0], **changes)


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> FloatArray:
    return rng.uniform(low, high, size=n)


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> FloatArray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size=n))


def draw_design(family: str, seed: int, n_holders: int, dayparts_per_day: int = 6) -> ScenarioDesign:
    """Draw a scenario design of `n_holders` budget holders from a family.

    Raises:
        InputError: If the family is unknown or the sizes are not positive.
    """
    if family not in SCENARIO_FAMILIES:
        raise InputError(f"unknown scenario family {family!r}", hint=f"choose one of: {', '.join(SCENARIO_FAMILIES)}")
    if n_holders < 1 or dayparts_per_day < 1:
        raise InputError("a scenario needs at least one holder and one daypart per day")
    # The family's name is mixed into the seed so that families with one seed are independent draws.
    rng = np.random.default_rng([seed, SCENARIO_FAMILIES.index(family)])
    n = n_holders
    design = ScenarioDesign(
        family=family,
        dayparts_per_day=dayparts_per_day,
        daily_budget=np.round(_log_uniform(rng, 40.0, 400.0, n), 0),
        base_cpc=_log_uniform(rng, 0.4, 2.5, n),
        aov=_log_uniform(rng, 35.0, 120.0, n),
        target_roas=_log_uniform(rng, 1.3, 5.0, n),
        volume_headroom=_log_uniform(rng, 1.2, 3.0, n),
        saturation=_log_uniform(rng, 0.8, 3.0, n),
        slope=_uniform(rng, 0.8, 1.2, n),
        adstock_theta=_uniform(rng, 0.0, 0.3, n),
        fatigue_phi=_uniform(rng, 0.002, 0.006, n),
        peak_daypart=_uniform(rng, 0.3, 0.7, n) * dayparts_per_day,
        peak_strength=_uniform(rng, 0.3, 0.7, n),
        cpc_bid_elasticity=_uniform(rng, 0.6, 1.0, n),
        volume_bid_elasticity=_uniform(rng, 0.6, 1.4, n),
        dispersion=_uniform(rng, 8.0, 30.0, n),
        kappa_sigma=_uniform(rng, 0.05, 0.1, n),
        drift_sigma=np.zeros(n),
        weekday_amplitude=_uniform(rng, 0.03, 0.12, n),
        bid_to_cpc=_uniform(rng, 1.3, 1.6, n),
        spike_prob=0.0,
        kappa_rho=0.9,
        aov_sigma=0.5,
        delay_same_daypart=0.35,
        delay_within_day=0.5,
        delay_tail_days=1.5,
        delay_max_days=7,
        seed=seed,
    )
    if family == "cpc_spikes":
        design.spike_prob = float(rng.uniform(0.02, 0.05))
        design.kappa_sigma = _uniform(rng, 0.1, 0.2, n)
    elif family == "fatigue_heavy":
        design.fatigue_phi = _uniform(rng, 0.01, 0.025, n)
    elif family == "dayparted":
        design.peak_strength = _uniform(rng, 1.0, 2.5, n)
        design.peak_daypart = _uniform(rng, 0.0, 1.0, n) * dayparts_per_day
    elif family == "delayed_conv":
        design.delay_same_daypart = 0.15
        design.delay_within_day = 0.3
        design.delay_tail_days = 4.0
        design.delay_max_days = 14
    elif family == "drift":
        design.drift_sigma = _uniform(rng, 0.04, 0.1, n)
    elif family == "s_curves":
        design.slope = _uniform(rng, 1.5, 2.5, n)
        design.saturation = _log_uniform(rng, 1.0, 2.5, n)
    elif family == "tight_budget":
        design.volume_headroom = _log_uniform(rng, 3.0, 8.0, n)
        design.daily_budget = np.round(design.daily_budget * 0.5, 0)
    elif family == "loose_budget":
        design.volume_headroom = _log_uniform(rng, 0.4, 0.9, n)
        design.daily_budget = np.round(design.daily_budget * 2.0, 0)
    elif family == "smart_bidding":
        # Smart Bidding holders: a ROAS or a CPA target; about one in five stays on manual CPC.
        design.strategy = rng.choice(
            [float(STRATEGY_TARGET_ROAS), float(STRATEGY_TARGET_CPA), float(STRATEGY_MANUAL)],
            size=n,
            p=[0.45, 0.35, 0.2],
        )
        design.target_elasticity = _uniform(rng, 0.7, 1.3, n)
    elif family == "cbo_lowest_cost":
        # Meta campaign budgets: lowest cost mostly (only the budget moves them), some cost cap, a few bid cap.
        design.strategy = rng.choice(
            [float(STRATEGY_NONE), float(STRATEGY_TARGET_CPA), float(STRATEGY_MANUAL)], size=n, p=[0.6, 0.3, 0.1]
        )
        design.target_elasticity = _uniform(rng, 0.6, 1.2, n)
        design.fatigue_phi = _uniform(rng, 0.004, 0.012, n)
        design.base_cpc = _log_uniform(rng, 0.3, 1.5, n)
    return design


def _daypart_weights(design: ScenarioDesign) -> FloatArray:
    """Return (H, P) demand weights with mean 1: a raised cosine around each holder's peak."""
    p = design.dayparts_per_day
    if p == 1:
        return np.ones((design.n_holders, 1))
    phase = 2.0 * np.pi * (np.arange(p)[None, :] + 0.5 - design.peak_daypart[:, None]) / p
    raw = np.exp(design.peak_strength[:, None] * np.cos(phase))
    return raw / raw.mean(axis=1, keepdims=True)


def build_params(design: ScenarioDesign) -> MarketParams:
    """Calibrate the model's parameters so that each holder behaves as designed at its initial set-up.

    At the initial set-up (m = 1, full reach, quality 1, fresh creatives) a holder spends
    ``min(1, headroom)`` of its budget and earns `target_roas` on it on an average day.
    """
    p = design.dayparts_per_day
    dp = _daypart_weights(design)
    rng = np.random.default_rng([design.seed, 1_000_003])
    weekday_raw = 1.0 + design.weekday_amplitude[:, None] * rng.standard_normal((design.n_holders, 7))
    weekday = np.maximum(weekday_raw, 0.5)
    weekday = weekday / weekday.mean(axis=1, keepdims=True)

    clicks_budget = design.daily_budget / (p * design.base_cpc)  # clicks per daypart the budget buys at m = 1
    demand = clicks_budget * design.volume_headroom
    # Clicks per daypart at the initial set-up: paced by dp where budget-limited, capped by volume otherwise.
    clicks_op = np.minimum(clicks_budget[:, None] * dp, demand[:, None] * dp)
    adstock_op = clicks_op / (1.0 - design.adstock_theta[:, None])
    ec = adstock_op.mean(axis=1) * design.saturation
    spend_op_day = (clicks_op * design.base_cpc[:, None]).sum(axis=1)
    conv_target_day = design.target_roas * spend_op_day / design.aov
    shape_day = (dp * hill(np, adstock_op, ec[:, None], design.slope[:, None])).sum(axis=1)
    beta = conv_target_day / shape_day

    return MarketParams(
        dayparts_per_day=p,
        base_cpc=design.base_cpc.astype(np.float64),
        cpc_bid_elasticity=design.cpc_bid_elasticity.astype(np.float64),
        volume_bid_elasticity=design.volume_bid_elasticity.astype(np.float64),
        demand_clicks=demand.astype(np.float64),
        daypart_weights=dp,
        weekday_factors=weekday,
        adstock_theta=design.adstock_theta.astype(np.float64),
        beta=beta,
        ec=ec,
        slope=design.slope.astype(np.float64),
        fatigue_phi=design.fatigue_phi.astype(np.float64),
        exposure_retention_active=np.full(design.n_holders, 1.0 - 0.05 / p),
        exposure_retention_rest=np.full(design.n_holders, 0.25 ** (1.0 / p)),
        aov=design.aov.astype(np.float64),
        aov_sigma=design.aov_sigma,
        dispersion=design.dispersion.astype(np.float64),
        kappa_rho=design.kappa_rho,
        kappa_sigma=design.kappa_sigma.astype(np.float64),
        spike_prob=design.spike_prob,
        spike_mult_low=1.5,
        spike_mult_high=3.0,
        spike_len_min=1,
        spike_len_max=4,
        drift_sigma=design.drift_sigma.astype(np.float64),
        delay_kernel=delay_kernel(
            p,
            same_daypart=design.delay_same_daypart,
            within_day=design.delay_within_day,
            tail_days=design.delay_tail_days,
            max_days=design.delay_max_days,
        ),
        daily_budget=design.daily_budget.astype(np.float64),
        ref_bid=design.base_cpc * design.bid_to_cpc,
        strategy=np.asarray(design.strategy, dtype=np.float64),
        target_elasticity=np.asarray(design.target_elasticity, dtype=np.float64),
        ref_roas=design.target_roas.astype(np.float64),
    )


def draw_scenario(family: str, seed: int, n_holders: int, dayparts_per_day: int = 6) -> MarketParams:
    """Draw the true parameters of `n_holders` budget holders from a scenario family.

    Same family and seed ⇒ the same parameters. See the module docstring for the families.

    Raises:
        InputError: If the family is unknown.
    """
    return build_params(draw_design(family, seed, n_holders, dayparts_per_day))
