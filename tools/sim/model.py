"""Model the simulated ad market at the level of budget holders, vectorised over holders.

A *budget holder* is the entity that carries a daily budget: a campaign on Google Ads and Amazon Ads,
an ad set on Meta. Time advances in dayparts (`dayparts_per_day` steps per day). Per holder `c` and
step `t`, with `m` the bid multiplier (current bid / reference bid):

* CPC: ``cpc = base_cpc · κ_t · m**γ``, with ``log κ`` an AR(1) drift plus short spikes.
* Volume: ``units_max = D · dp(t) · weekday(t) · reach · m**ε`` clicks available.
* Delivery: ``clicks = min(planned_spend / cpc, units_max)``, ``spend = clicks · cpc`` (under-delivery is real).
* Carry-over: ``a_t = clicks_t · quality + θ · a_{t-1}`` (quality = traffic-weighted conversion multiplier
  of the keywords, search terms and creatives that serve, 1 at the holder's initial set-up).
* Conversions: ``E[conv] = β_t · dp(t) · F_t · Hill(a_t; ec_t, slope)`` with ``F`` the creative fatigue factor.
* Pacing inside a day: ``planned_spend = remaining_budget · w_t / Σ_{s≥t} w_s``.
* Bidding strategy (`strategy`, one code per holder, `STRATEGY_*`): the multiplier ``m`` is what the
  platform bids relative to the reference. Under manual CPC it is the advertiser's bid / reference bid.
  Under Smart Bidding the platform sets each auction's bid itself and ignores the advertiser's bids; it
  bids to the holder's target: ``m = (ref_roas / target_roas)**η`` under a ROAS target (a higher target
  bids lower: fewer clicks at a higher return) and ``m = (target_cpa / ref_cpa)**η`` under a CPA target
  (a higher target spends more), with ``ref_cpa = aov / ref_roas``. Under lowest cost (Meta) or maximize
  without a target, nothing but the budget moves it: ``m = 1``. `lever_factor_to_mult` and
  `targets_from_mult` are the one mapping the market, the env and the oracle share.

The deterministic core (`expected_step`, `rollout_expected`) is a pure function of arrays that runs
unchanged on numpy arrays and torch tensors: pass the array namespace (`numpy` or `torch`) as `xp` and
convert the parameter tuples with `convert_arrays`. The clairvoyant oracle autodiffs through it.

Randomness is drawn separately from `numpy.random.Generator`s split by purpose, so common random numbers
work: the exogenous path (`exo`: κ, spikes, drift) never depends on the actions; `noise` draws clicks,
conversions and order values; `delay` draws when conversions are reported.

Units: money in currency units as floats here (the market converts to integer micros at its edge),
clicks and conversions as counts per daypart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from bidloop.core.errors import InputError

__all__ = [
    "BID_MULT_HIGH",
    "BID_MULT_LOW",
    "HILL_EPSILON",
    "STRATEGY_MANUAL",
    "STRATEGY_NAMES",
    "STRATEGY_NONE",
    "STRATEGY_TARGET_CPA",
    "STRATEGY_TARGET_ROAS",
    "CoreParams",
    "CoreState",
    "ExoPath",
    "ExoState",
    "ExoStep",
    "MarketParams",
    "RolloutOutcome",
    "StepOutcome",
    "convert_arrays",
    "draw_conversions",
    "draw_delay_fractions",
    "draw_exo_path",
    "draw_order_value",
    "exo_step",
    "expected_step",
    "hill",
    "initial_core_state",
    "initial_exo_state",
    "lever_bounds",
    "lever_factor_to_mult",
    "mult_from_targets",
    "rollout_expected",
    "targets_from_mult",
]

HILL_EPSILON = 1e-12
"""Added to the Hill input so that its gradient stays finite at zero delivery."""

STRATEGY_MANUAL = 0
"""The advertiser's bids set the price (Google manual CPC, Meta bid cap, Amazon keyword bids)."""
STRATEGY_TARGET_ROAS = 1
"""Smart Bidding to a ROAS target (Google target ROAS / maximize value with a target; Meta minimum ROAS)."""
STRATEGY_TARGET_CPA = 2
"""Smart Bidding to a CPA target (Google target CPA / maximize conversions with a target; Meta cost cap)."""
STRATEGY_NONE = 3
"""The platform spends the budget as it sees fit (Meta lowest cost, maximize without a target): no lever."""
STRATEGY_NAMES: tuple[str, ...] = ("manual_cpc", "target_roas", "target_cpa", "lowest_cost")
"""Names of the strategy codes, in code order."""

BID_MULT_LOW = 0.5
"""Smallest multiplier m the platform can be steered to (bid or target)."""
BID_MULT_HIGH = 2.0
"""Largest multiplier m."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_T = TypeVar("_T", bound=tuple[Any, ...])


def convert_arrays(arrays: _T, convert: Callable[[Any], Any]) -> _T:
    """Return a copy of a tuple of arrays (`CoreParams`, `CoreState`, `ExoPath`, ...) with `convert` applied to each.

    Example: ``convert_arrays(params.core(), lambda a: torch.as_tensor(a, dtype=torch.float64))``.
    """
    return type(arrays)(*(convert(a) for a in arrays))


@dataclasses.dataclass(frozen=True, eq=False)
class MarketParams:
    """The true (hidden) parameters of `n_holders` budget holders, as drawn by a scenario.

    Arrays are indexed by holder (``(H,)``), holder × daypart (``(H, P)``) or holder × weekday (``(H, 7)``).
    Money is in currency units (floats); the market converts to micros.

    Attributes:
        dayparts_per_day: Steps per day (P).
        base_cpc: Cost per click at the reference bid with κ = 1, currency units.
        cpc_bid_elasticity: γ: CPC grows as ``m**γ`` with the bid multiplier m.
        volume_bid_elasticity: ε: available clicks grow as ``m**ε``.
        demand_clicks: D: clicks available per daypart at m = 1, full reach, mean daypart and weekday.
        daypart_weights: dp: demand per daypart, mean 1 per holder; also the platform's pacing weights.
        weekday_factors: Demand per weekday (day index mod 7), mean 1 per holder.
        adstock_theta: θ: carry-over of quality clicks from one daypart to the next (0–0.5).
        beta: β: expected conversions per daypart at saturation (before drift).
        ec: Half-saturation point of the Hill curve, in adstocked quality clicks (before drift).
        slope: Hill slope (≤ 1 concave, > 1 S-shaped).
        fatigue_phi: φ: a creative's factor is ``exp(-φ · exposures / ec)``.
        exposure_retention_active: Share of a creative's exposures kept per daypart while it serves.
        exposure_retention_rest: Share kept per daypart while it rests (paused or not served).
        aov: Mean order value per conversion, currency units.
        aov_sigma: Log-sd of one order's value.
        dispersion: Shape r of the Poisson-Gamma (negative binomial) conversion noise; larger = less noise.
        kappa_rho: AR(1) coefficient of log κ per daypart.
        kappa_sigma: Stationary standard deviation of log κ.
        spike_prob: Chance per daypart that a CPC spike starts (while none is running).
        spike_mult_low: Smallest spike multiplier of CPC.
        spike_mult_high: Largest spike multiplier of CPC.
        spike_len_min: Shortest spike, in dayparts.
        spike_len_max: Longest spike, in dayparts.
        drift_sigma: Log-sd per day of the random walk of β and ec.
        delay_kernel: Share of conversions reported after 0, 1, 2, ... dayparts (sums to 1).
        daily_budget: The holder's initial daily budget, currency units (scenario design).
        ref_bid: The bid at which m = 1, currency units.
        strategy: Bidding strategy code per holder (`STRATEGY_*`, stored as floats); default manual CPC.
        target_elasticity: η: how strongly a Smart Bidding holder's bids follow its target (default 1).
        ref_roas: The ROAS target at which a Smart Bidding holder bids m = 1 (default 1; the scenario
            sets it to the ROAS of the initial set-up).
    """

    dayparts_per_day: int
    base_cpc: FloatArray
    cpc_bid_elasticity: FloatArray
    volume_bid_elasticity: FloatArray
    demand_clicks: FloatArray
    daypart_weights: FloatArray
    weekday_factors: FloatArray
    adstock_theta: FloatArray
    beta: FloatArray
    ec: FloatArray
    slope: FloatArray
    fatigue_phi: FloatArray
    exposure_retention_active: FloatArray
    exposure_retention_rest: FloatArray
    aov: FloatArray
    aov_sigma: float
    dispersion: FloatArray
    kappa_rho: float
    kappa_sigma: FloatArray
    spike_prob: float
    spike_mult_low: float
    spike_mult_high: float
    spike_len_min: int
    spike_len_max: int
    drift_sigma: FloatArray
    delay_kernel: FloatArray
    daily_budget: FloatArray
    ref_bid: FloatArray
    strategy: FloatArray | None = None
    target_elasticity: FloatArray | None = None
    ref_roas: FloatArray | None = None

    def __post_init__(self) -> None:
        h = self.base_cpc.shape[0]
        p = self.dayparts_per_day
        defaults = {"strategy": float(STRATEGY_MANUAL), "target_elasticity": 1.0, "ref_roas": 1.0}
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(h, value))
        codes = np.asarray(self.strategy)
        if ((codes != np.round(codes)) | (codes < 0) | (codes >= len(STRATEGY_NAMES))).any():
            raise InputError("MarketParams.strategy holds an unknown strategy code", hint="use the STRATEGY_* codes")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, np.ndarray):
                continue
            if field.name == "delay_kernel":
                if value.ndim != 1 or abs(float(value.sum()) - 1.0) > 1e-9 or (value < 0).any():
                    raise InputError(
                        "delay_kernel must be a 1-d array of non-negative shares summing to 1",
                        hint="normalise the kernel before building MarketParams",
                    )
                continue
            expected: tuple[int, ...] = (h,)
            if field.name == "daypart_weights":
                expected = (h, p)
            elif field.name == "weekday_factors":
                expected = (h, 7)
            if value.shape != expected:
                raise InputError(
                    f"MarketParams.{field.name} has shape {value.shape}, expected {expected}",
                    hint="every per-holder array needs one row per budget holder",
                )
            if not np.isfinite(value).all():
                raise InputError(f"MarketParams.{field.name} holds NaN or infinite values")
        if (
            (self.base_cpc <= 0).any()
            or (self.ec <= 0).any()
            or (self.ref_bid <= 0).any()
            or (np.asarray(self.target_elasticity) <= 0).any()
            or (np.asarray(self.ref_roas) <= 0).any()
        ):
            raise InputError(
                "base_cpc, ec, ref_bid, target_elasticity and ref_roas must be positive", hint="check the scenario draw"
            )
        if (self.daypart_weights <= 0).any():
            raise InputError("daypart_weights must be positive", hint="use a small floor instead of zero")

    @property
    def n_holders(self) -> int:
        """Return the number of budget holders (H)."""
        return int(self.base_cpc.shape[0])

    @property
    def strategy_codes(self) -> IntArray:
        """Return the strategy code of each holder as integers."""
        return np.asarray(self.strategy).astype(np.int64)

    @property
    def has_lever(self) -> NDArray[np.bool_]:
        """Return, per holder, whether a bid or a target moves m (False under lowest cost)."""
        return self.strategy_codes != STRATEGY_NONE

    @property
    def delay_steps(self) -> int:
        """Return the length of the delay kernel in dayparts (L)."""
        return int(self.delay_kernel.shape[0])

    @property
    def pacing_share(self) -> FloatArray:
        """Return ``w_t / Σ_{s≥t} w_s`` per holder and daypart: the share of the remaining budget planned at t."""
        w = self.daypart_weights
        tail = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]
        return w / tail

    def core(self) -> CoreParams:
        """Return the parameters the deterministic core needs, as numpy float64 arrays."""
        return CoreParams(
            base_cpc=self.base_cpc,
            cpc_bid_elasticity=self.cpc_bid_elasticity,
            volume_bid_elasticity=self.volume_bid_elasticity,
            demand_clicks=self.demand_clicks,
            adstock_theta=self.adstock_theta,
            slope=self.slope,
            fatigue_phi=self.fatigue_phi,
            exposure_retention_active=self.exposure_retention_active,
            exposure_retention_rest=self.exposure_retention_rest,
            aov=self.aov,
            pacing_share=self.pacing_share,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return every field as a numpy array (scalars as 0-d arrays), for `to_bytes`."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MarketParams:
        """Rebuild parameters written by `to_arrays`.

        Raises:
            InputError: If a field is missing or has the wrong shape.
        """
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in arrays and f.default is not None:
                raise InputError(f"saved market parameters lack {f.name!r}", hint="the file is from another version")
            value = np.asarray(arrays[f.name])
            if f.name not in arrays and f.default is None:
                continue
            if f.type in ("int", int):
                kwargs[f.name] = int(value)
            elif f.type in ("float", float):
                kwargs[f.name] = float(value)
            else:
                kwargs[f.name] = value.astype(np.float64, copy=True)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> MarketParams:
        """Return a copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)


class CoreParams(NamedTuple):
    """The parameters the deterministic core reads; each an array of the caller's namespace.

    Shapes: ``(H,)`` except `pacing_share` ``(H, P)``. See `MarketParams` for meanings.
    """

    base_cpc: Any
    cpc_bid_elasticity: Any
    volume_bid_elasticity: Any
    demand_clicks: Any
    adstock_theta: Any
    slope: Any
    fatigue_phi: Any
    exposure_retention_active: Any
    exposure_retention_rest: Any
    aov: Any
    pacing_share: Any


class CoreState(NamedTuple):
    """The state the deterministic core carries from one daypart to the next.

    Attributes:
        adstock: ``(H,)`` adstocked quality clicks.
        exposures: ``(H, K)`` clicks each creative slot has absorbed (decays while resting).
    """

    adstock: Any
    exposures: Any


class ExoStep(NamedTuple):
    """The exogenous values of one daypart, each ``(H,)``: independent of every action.

    Attributes:
        kappa: CPC multiplier κ (AR(1) drift times any running spike).
        daypart_factor: dp_c(t).
        weekday_factor: The holder's factor of the current weekday.
        beta: β after drift.
        ec: ec after drift.
    """

    kappa: Any
    daypart_factor: Any
    weekday_factor: Any
    beta: Any
    ec: Any


class ExoPath(NamedTuple):
    """A realised exogenous path of T dayparts: the fields of `ExoStep` stacked to ``(T, H)``.

    Attributes:
        kappa: ``(T, H)``.
        daypart_factor: ``(T, H)``.
        weekday_factor: ``(T, H)``.
        beta: ``(T, H)``.
        ec: ``(T, H)``.
        daypart: ``(T,)`` daypart index of each step (0 .. P-1), as integers.
    """

    kappa: Any
    daypart_factor: Any
    weekday_factor: Any
    beta: Any
    ec: Any
    daypart: Any

    def step(self, t: int) -> ExoStep:
        """Return the exogenous values of step `t`."""
        return ExoStep(self.kappa[t], self.daypart_factor[t], self.weekday_factor[t], self.beta[t], self.ec[t])

    @property
    def n_steps(self) -> int:
        """Return T."""
        return int(self.kappa.shape[0])


class ExoState(NamedTuple):
    """The state of the exogenous processes (numpy only; drawn from the `exo` generator).

    Attributes:
        log_kappa: ``(H,)`` AR(1) part of log κ.
        spike_left: ``(H,)`` dayparts left of the running spike (0 = none).
        spike_log_mult: ``(H,)`` log multiplier of the running spike.
        log_beta_drift: ``(H,)`` random-walk drift of log β.
        log_ec_drift: ``(H,)`` random-walk drift of log ec.
    """

    log_kappa: FloatArray
    spike_left: IntArray
    spike_log_mult: FloatArray
    log_beta_drift: FloatArray
    log_ec_drift: FloatArray


class StepOutcome(NamedTuple):
    """The expected (noise-free) outcome of one daypart, each ``(H,)``.

    Attributes:
        cpc: Cost per click, currency units.
        units_max: Clicks available.
        clicks: Clicks delivered (expected).
        spend: Spend, currency units (≤ the planned spend).
        adstock: Adstocked quality clicks after this daypart.
        fatigue: The holder's creative fatigue factor F (1 = fresh).
        conversions: Expected conversions.
        value: Expected conversion value, currency units.
    """

    cpc: Any
    units_max: Any
    clicks: Any
    spend: Any
    adstock: Any
    fatigue: Any
    conversions: Any
    value: Any


class RolloutOutcome(NamedTuple):
    """The expected outcome of a plan over T dayparts: each field ``(T, H)``, plus the final state.

    Attributes:
        spend: Spend per step, currency units.
        clicks: Clicks per step.
        conversions: Expected conversions per step.
        value: Expected conversion value per step, currency units.
        cpc: Cost per click per step.
        planned_spend: What the pacing (or the plan) put up for each step.
        final_state: The core state after the last step.
    """

    spend: Any
    clicks: Any
    conversions: Any
    value: Any
    cpc: Any
    planned_spend: Any
    final_state: CoreState


def hill(xp: Any, adstock: Any, ec: Any, slope: Any) -> Any:
    """Return the Hill saturation ``x**s / (1 + x**s)`` with ``x = adstock / ec``, in [0, 1)."""
    x_pow = (adstock / ec + HILL_EPSILON) ** slope
    return x_pow / (1.0 + x_pow)


def expected_step(
    xp: Any,
    params: CoreParams,
    state: CoreState,
    exo: ExoStep,
    *,
    planned_spend: Any,
    bid_mult: Any,
    reach: Any,
    quality: Any,
    creative_share: Any,
) -> tuple[CoreState, StepOutcome]:
    """Advance the deterministic core by one daypart; pure, and the same on numpy arrays and torch tensors.

    Args:
        xp: The array namespace (`numpy` or `torch`); only exp, minimum and where are used.
        params: Holder parameters (`MarketParams.core()`, converted to the namespace).
        state: Adstock and creative exposures before this daypart.
        exo: This daypart's exogenous values.
        planned_spend: ``(H,)`` spend the platform puts up this daypart, currency units (≥ 0).
        bid_mult: ``(H,)`` bid multiplier m (> 0).
        reach: ``(H,)`` share of the holder's traffic still targetable (negatives, paused keywords), in [0, 1].
        quality: ``(H,)`` traffic-weighted conversion multiplier of what serves (1 at the initial set-up).
        creative_share: ``(H, K)`` share of the holder's clicks each creative slot gets; rows sum to 1
            (or to 0 where nothing serves, which leaves F = 1).

    Returns:
        The next state and the expected outcome of the daypart.
    """
    cpc = params.base_cpc * exo.kappa * bid_mult**params.cpc_bid_elasticity
    units_max = (
        params.demand_clicks * exo.daypart_factor * exo.weekday_factor * reach * bid_mult**params.volume_bid_elasticity
    )
    clicks = xp.minimum(planned_spend / cpc, units_max)
    spend = clicks * cpc
    adstock = clicks * quality + params.adstock_theta * state.adstock
    creative_factor = xp.exp(-params.fatigue_phi[:, None] * state.exposures / exo.ec[:, None])
    fatigue = (creative_share * creative_factor).sum(-1) + (1.0 - creative_share.sum(-1))
    conversions = exo.beta * exo.daypart_factor * fatigue * hill(xp, adstock, exo.ec, params.slope)
    value = conversions * params.aov
    retention = xp.where(
        creative_share > 0,
        params.exposure_retention_active[:, None] + 0.0 * creative_share,
        params.exposure_retention_rest[:, None] + 0.0 * creative_share,
    )
    exposures = state.exposures * retention + clicks[:, None] * creative_share
    outcome = StepOutcome(cpc, units_max, clicks, spend, adstock, fatigue, conversions, value)
    return CoreState(adstock, exposures), outcome


def _at(x: Any, t: int, base_ndim: int) -> Any:
    """Return ``x[t]`` for a per-step input (one more dimension than `base_ndim`), else `x` itself."""
    return x[t] if x.ndim == base_ndim + 1 else x


def rollout_expected(
    xp: Any,
    params: CoreParams,
    state: CoreState,
    exo_path: ExoPath,
    *,
    bid_mult: Any,
    reach: Any,
    quality: Any,
    creative_share: Any,
    planned_spend: Any | None = None,
    daily_budget: Any | None = None,
    spent_today: Any | None = None,
) -> RolloutOutcome:
    """Roll the deterministic core over a realised exogenous path: the expected value of a plan.

    Give either `planned_spend` (``(T, H)``: spend put up per step, bypassing the platform's pacing) or
    `daily_budget` (``(T, H)`` or ``(H,)``: the budget in force at each step; the platform paces it
    within each day). `bid_mult`, `reach` and `quality` are ``(H,)`` or ``(T, H)``; `creative_share` is
    ``(H, K)`` or ``(T, H, K)``. `spent_today` (``(H,)``) is what was spent earlier on the first step's day.

    Returns:
        Per-step expected spend, clicks, conversions, value and CPC, and the final core state.

    Raises:
        InputError: If neither or both of `planned_spend` and `daily_budget` are given.
    """
    if (planned_spend is None) == (daily_budget is None):
        raise InputError(
            "rollout_expected needs exactly one of planned_spend and daily_budget",
            hint="pass planned_spend to bypass pacing, daily_budget to let the platform pace it",
        )
    steps: dict[str, list[Any]] = {k: [] for k in ("spend", "clicks", "conversions", "value", "cpc", "planned")}
    spent = spent_today if spent_today is not None else params.base_cpc * 0.0
    for t in range(exo_path.n_steps):
        daypart = int(exo_path.daypart[t])
        if planned_spend is not None:
            planned = planned_spend[t]
        else:
            if daypart == 0 and t > 0:
                spent = spent * 0.0
            budget = _at(daily_budget, t, 1)
            remaining = xp.maximum(budget - spent, budget * 0.0)
            planned = remaining * params.pacing_share[:, daypart]
        state, out = expected_step(
            xp,
            params,
            state,
            exo_path.step(t),
            planned_spend=planned,
            bid_mult=_at(bid_mult, t, 1),
            reach=_at(reach, t, 1),
            quality=_at(quality, t, 1),
            creative_share=_at(creative_share, t, 2),
        )
        spent = spent + out.spend
        steps["spend"].append(out.spend)
        steps["clicks"].append(out.clicks)
        steps["conversions"].append(out.conversions)
        steps["value"].append(out.value)
        steps["cpc"].append(out.cpc)
        steps["planned"].append(planned)
    return RolloutOutcome(
        spend=xp.stack(steps["spend"]),
        clicks=xp.stack(steps["clicks"]),
        conversions=xp.stack(steps["conversions"]),
        value=xp.stack(steps["value"]),
        cpc=xp.stack(steps["cpc"]),
        planned_spend=xp.stack(steps["planned"]),
        final_state=state,
    )


def initial_core_state(n_holders: int, n_creative_slots: int) -> CoreState:
    """Return a fresh core state: no adstock, no creative exposure."""
    return CoreState(np.zeros(n_holders), np.zeros((n_holders, n_creative_slots)))


def initial_exo_state(params: MarketParams, rng: np.random.Generator) -> ExoState:
    """Draw the exogenous state at the start of the simulation (log κ from its stationary law)."""
    h = params.n_holders
    return ExoState(
        log_kappa=rng.standard_normal(h) * params.kappa_sigma,
        spike_left=np.zeros(h, dtype=np.int64),
        spike_log_mult=np.zeros(h),
        log_beta_drift=np.zeros(h),
        log_ec_drift=np.zeros(h),
    )


def exo_step(params: MarketParams, state: ExoState, rng: np.random.Generator, step: int) -> tuple[ExoState, ExoStep]:
    """Advance the exogenous processes by one daypart and return this daypart's values.

    Draws the same amount of random numbers every step, whatever happened, so the path depends
    only on the `exo` generator's seed.

    Args:
        params: The holders' parameters.
        state: The exogenous state before this step.
        rng: The `exo` generator.
        step: The absolute step index (day = step // P, daypart = step % P).
    """
    h = params.n_holders
    p = params.dayparts_per_day
    z_kappa = rng.standard_normal(h)
    u_spike = rng.random(h)
    spike_len = rng.integers(params.spike_len_min, params.spike_len_max + 1, size=h)
    spike_mult = rng.uniform(params.spike_mult_low, params.spike_mult_high, size=h)
    z_drift = rng.standard_normal((2, h))

    rho = params.kappa_rho
    log_kappa = rho * state.log_kappa + params.kappa_sigma * np.sqrt(1.0 - rho * rho) * z_kappa
    running = state.spike_left > 0
    starts = ~running & (u_spike < params.spike_prob)
    spike_left = np.where(running, state.spike_left - 1, np.where(starts, spike_len, 0))
    spike_log_mult = np.where(starts, np.log(spike_mult), np.where(spike_left > 0, state.spike_log_mult, 0.0))
    step_sigma = params.drift_sigma / np.sqrt(p)
    log_beta_drift = state.log_beta_drift + step_sigma * z_drift[0]
    log_ec_drift = state.log_ec_drift + step_sigma * z_drift[1]

    daypart = step % p
    weekday = (step // p) % 7
    active_spike = np.where(spike_left > 0, spike_log_mult, 0.0)
    values = ExoStep(
        kappa=np.exp(log_kappa + active_spike),
        daypart_factor=params.daypart_weights[:, daypart].copy(),
        weekday_factor=params.weekday_factors[:, weekday].copy(),
        beta=params.beta * np.exp(log_beta_drift),
        ec=params.ec * np.exp(log_ec_drift),
    )
    new_state = ExoState(log_kappa, spike_left.astype(np.int64), spike_log_mult, log_beta_drift, log_ec_drift)
    return new_state, values


def draw_exo_path(
    params: MarketParams, state: ExoState, rng: np.random.Generator, start_step: int, n_steps: int
) -> tuple[ExoPath, ExoState]:
    """Draw `n_steps` exogenous dayparts from `start_step` on; return the path and the state after it."""
    rows: list[ExoStep] = []
    for i in range(n_steps):
        state, values = exo_step(params, state, rng, start_step + i)
        rows.append(values)
    h = params.n_holders
    if rows:
        stacked = [np.stack([getattr(r, f) for r in rows]) for f in ExoStep._fields]
    else:
        stacked = [np.zeros((0, h)) for _ in ExoStep._fields]
    dayparts = (start_step + np.arange(n_steps, dtype=np.int64)) % params.dayparts_per_day
    kappa, daypart_factor, weekday_factor, beta, ec = stacked
    return ExoPath(kappa, daypart_factor, weekday_factor, beta, ec, daypart=dayparts), state


def draw_conversions(mean: FloatArray, dispersion: FloatArray, rng: np.random.Generator) -> IntArray:
    """Draw conversion counts from a Poisson-Gamma (negative binomial) with the given means and shapes."""
    safe_mean = np.maximum(mean, 0.0)
    rate = rng.gamma(dispersion, 1.0, size=safe_mean.shape) * safe_mean / dispersion
    return rng.poisson(rate).astype(np.int64)


def draw_order_value(conversions: IntArray, aov: FloatArray, aov_sigma: float, rng: np.random.Generator) -> FloatArray:
    """Draw the total order value of `conversions` orders, currency units (lognormal orders, mean `aov`).

    The sum of n lognormal orders is approximated by n · aov · a lognormal with log-sd σ / √n.
    """
    n = np.maximum(conversions, 1).astype(np.float64)
    sigma = aov_sigma / np.sqrt(n)
    factor = np.exp(rng.standard_normal(conversions.shape) * sigma - 0.5 * sigma * sigma)
    return conversions * aov * factor


def draw_delay_fractions(kernel: FloatArray, conversions: IntArray, rng: np.random.Generator) -> FloatArray:
    """Draw, per holder, which share of this daypart's conversions is reported after each lag.

    Returns:
        ``(H, L)`` shares summing to 1 per row: the multinomial draw of the conversions over the kernel,
        or the kernel itself where there were none.
    """
    counts = rng.multinomial(np.maximum(conversions, 0), kernel)
    n = conversions[:, None].astype(np.float64)
    return np.where(n > 0, counts / np.maximum(n, 1.0), kernel[None, :])


def lever_bounds(params: MarketParams) -> tuple[FloatArray, FloatArray]:
    """Return the per-holder range of m a policy can reach: [0.5, 2], or [1, 1] where no lever exists."""
    lever = params.has_lever
    return np.where(lever, BID_MULT_LOW, 1.0), np.where(lever, BID_MULT_HIGH, 1.0)


def lever_factor_to_mult(params: MarketParams, bid_mult: FloatArray, factor: FloatArray) -> FloatArray:
    """Return the multipliers after moving each holder's lever by `factor` (> 1 = spend more).

    Manual CPC: the bids move by `factor`, so m does. Target ROAS: the target is divided by `factor`
    (a lower target bids higher); target CPA: the target is multiplied by it; either moves m by
    ``factor**η``. Lowest cost: nothing moves, m stays 1.
    """
    codes = params.strategy_codes
    f = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
    smart = (codes == STRATEGY_TARGET_ROAS) | (codes == STRATEGY_TARGET_CPA)
    moved = np.where(smart, bid_mult * f ** np.asarray(params.target_elasticity), bid_mult * f)
    low, high = lever_bounds(params)
    return np.clip(np.where(params.has_lever, moved, 1.0), low, high)


def targets_from_mult(params: MarketParams, bid_mult: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return (target ROAS, target CPA in currency units) at multipliers `bid_mult`; NaN where unused."""
    codes = params.strategy_codes
    eta = np.asarray(params.target_elasticity)
    ref_roas = np.asarray(params.ref_roas)
    m = np.maximum(np.asarray(bid_mult, dtype=np.float64), 1e-9)
    roas = np.where(codes == STRATEGY_TARGET_ROAS, ref_roas * m ** (-1.0 / eta), np.nan)
    cpa = np.where(codes == STRATEGY_TARGET_CPA, params.aov / ref_roas * m ** (1.0 / eta), np.nan)
    return roas, cpa


def mult_from_targets(
    params: MarketParams, target_roas: FloatArray | None = None, target_cpa: FloatArray | None = None
) -> FloatArray:
    """Return the multipliers the platform bids at for the given targets (inverse of `targets_from_mult`).

    Holders whose target is not given (NaN) or that do not bid to that kind of target get NaN.
    """
    codes = params.strategy_codes
    eta = np.asarray(params.target_elasticity)
    ref_roas = np.asarray(params.ref_roas)
    h = params.n_holders
    out = np.full(h, np.nan)
    if target_roas is not None:
        t = np.asarray(target_roas, dtype=np.float64)
        ok = (codes == STRATEGY_TARGET_ROAS) & np.isfinite(t) & (t > 0)
        out = np.where(ok, (ref_roas / np.where(ok, t, 1.0)) ** eta, out)
    if target_cpa is not None:
        t = np.asarray(target_cpa, dtype=np.float64)
        ok = (codes == STRATEGY_TARGET_CPA) & np.isfinite(t) & (t > 0)
        out = np.where(ok, (np.where(ok, t, 1.0) * ref_roas / params.aov) ** eta, out)
    return out
