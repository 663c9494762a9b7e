"""Specification of the holder-level market model and the scenario families (bidloop.tools.sim.model/scenarios)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bidloop.core.errors import InputError
from bidloop.tools.sim.model import (
    CoreState,
    ExoStep,
    MarketParams,
    convert_arrays,
    draw_delay_fractions,
    draw_exo_path,
    expected_step,
    hill,
    initial_exo_state,
    rollout_expected,
)
from bidloop.tools.sim.scenarios import SCENARIO_FAMILIES, delay_kernel, draw_design, draw_scenario

H, K, P = 5, 3, 6


@pytest.fixture(scope="module")
def params() -> MarketParams:
    return draw_scenario("stationary", seed=3, n_holders=H, dayparts_per_day=P)


def _inputs(params: MarketParams, planned: float = 20.0, bid: float = 1.0) -> dict[str, np.ndarray]:
    share = np.tile(np.array([0.5, 0.3, 0.2]), (H, 1))
    return {
        "planned_spend": np.full(H, planned),
        "bid_mult": np.full(H, bid),
        "reach": np.ones(H),
        "quality": np.ones(H),
        "creative_share": share,
    }


def _exo(params: MarketParams, kappa: float = 1.0) -> ExoStep:
    return ExoStep(
        kappa=np.full(H, kappa),
        daypart_factor=params.daypart_weights[:, 2].copy(),
        weekday_factor=np.ones(H),
        beta=params.beta.copy(),
        ec=params.ec.copy(),
    )


def _state(exposure: float = 0.0) -> CoreState:
    return CoreState(np.full(H, 5.0), np.full((H, K), exposure))


def _step(params: MarketParams, **overrides: float):
    inputs = _inputs(params)
    exo = _exo(params)
    for name, value in overrides.items():
        inputs[name] = np.full(H, value)
    return expected_step(np, params.core(), _state(), exo, **inputs)


def test_numpy_and_torch_give_the_same_deterministic_core_outputs(params: MarketParams) -> None:
    inputs = _inputs(params)
    state_np, out_np = expected_step(np, params.core(), _state(30.0), _exo(params, 1.3), **inputs)

    def to_torch(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    state_t, out_t = expected_step(
        torch,
        convert_arrays(params.core(), to_torch),
        convert_arrays(_state(30.0), to_torch),
        convert_arrays(_exo(params, 1.3), to_torch),
        **{k: to_torch(v) for k, v in inputs.items()},
    )
    for a, b in zip(out_np, out_t, strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12)
    np.testing.assert_allclose(state_np.exposures, state_t.exposures.numpy(), rtol=1e-12)


def test_rollout_runs_on_torch_and_gives_finite_gradients_for_the_oracle(params: MarketParams) -> None:
    rng = np.random.default_rng(0)
    path, _ = draw_exo_path(params, initial_exo_state(params, rng), rng, start_step=0, n_steps=2 * P)
    inputs = _inputs(params)
    budget_np = params.daily_budget.copy()
    out_np = rollout_expected(
        np,
        params.core(),
        _state(),
        path,
        daily_budget=budget_np,
        bid_mult=inputs["bid_mult"],
        reach=inputs["reach"],
        quality=inputs["quality"],
        creative_share=inputs["creative_share"],
    )

    def to_torch(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    budget = to_torch(budget_np).requires_grad_(True)
    out_t = rollout_expected(
        torch,
        convert_arrays(params.core(), to_torch),
        convert_arrays(_state(), to_torch),
        path._replace(
            **{f: to_torch(getattr(path, f)) for f in ("kappa", "daypart_factor", "weekday_factor", "beta", "ec")}
        ),
        daily_budget=budget,
        **{k: to_torch(v) for k, v in inputs.items() if k != "planned_spend"},
    )
    np.testing.assert_allclose(out_np.value, out_t.value.detach().numpy(), rtol=1e-12)
    out_t.value.sum().backward()
    assert budget.grad is not None
    assert torch.isfinite(budget.grad).all()
    assert (budget.grad >= 0).all(), "more budget never lowers expected value in a budget-limited market"


def test_more_planned_spend_buys_more_clicks_until_volume_runs_out(params: MarketParams) -> None:
    small = _step(params, planned_spend=5.0)[1]
    large = _step(params, planned_spend=50.0)[1]
    huge = _step(params, planned_spend=1e6)[1]
    assert (large.clicks > small.clicks).all()
    np.testing.assert_allclose(huge.clicks, huge.units_max)
    assert (huge.spend < 1e6).all(), "under-delivery: a volume-limited holder spends less than planned"


def test_spend_never_exceeds_planned_spend(params: MarketParams) -> None:
    for planned in (0.0, 1.0, 30.0, 1e5):
        out = _step(params, planned_spend=planned)[1]
        assert (out.spend <= planned + 1e-9).all()


def test_a_higher_bid_raises_cpc_and_available_volume(params: MarketParams) -> None:
    low = _step(params, bid_mult=0.8)[1]
    high = _step(params, bid_mult=1.5)[1]
    assert (high.cpc > low.cpc).all()
    assert (high.units_max > low.units_max).all()


def test_creative_fatigue_lowers_expected_conversions(params: MarketParams) -> None:
    inputs = _inputs(params)
    _, fresh = expected_step(np, params.core(), _state(0.0), _exo(params), **inputs)
    _, tired = expected_step(np, params.core(), _state(500.0), _exo(params), **inputs)
    assert (tired.fatigue < 1.0).all()
    assert (tired.conversions < fresh.conversions).all()


def test_resting_creative_slots_shed_exposures_faster_than_serving_ones(params: MarketParams) -> None:
    inputs = _inputs(params, planned=0.0)
    inputs["creative_share"] = np.tile(np.array([1.0, 0.0, 0.0]), (H, 1))
    state, _ = expected_step(np, params.core(), _state(100.0), _exo(params), **inputs)
    assert (state.exposures[:, 1] < state.exposures[:, 0]).all()


def test_hill_with_slope_above_one_is_s_shaped() -> None:
    x = np.linspace(0.05, 0.5, 10)
    concave = hill(np, x, 1.0, 0.9)
    s_shaped = hill(np, x, 1.0, 2.0)
    assert (np.diff(np.diff(concave)) < 0).all()
    assert (np.diff(np.diff(s_shaped)) > 0).all(), "convex below the half-saturation point"
    assert hill(np, np.array([0.0]), 1.0, 2.0)[0] == pytest.approx(0.0, abs=1e-12)


def test_the_exogenous_path_depends_only_on_its_seed(params: MarketParams) -> None:
    def path(seed: int):
        rng = np.random.default_rng(seed)
        return draw_exo_path(params, initial_exo_state(params, rng), rng, 0, 30)[0]

    a, b, c = path(1), path(1), path(2)
    np.testing.assert_array_equal(a.kappa, b.kappa)
    np.testing.assert_array_equal(a.beta, b.beta)
    assert not np.allclose(a.kappa, c.kappa)


def test_cpc_spike_family_produces_spikes_and_stationary_does_not() -> None:
    spiky = draw_scenario("cpc_spikes", seed=1, n_holders=20)
    calm = draw_scenario("stationary", seed=1, n_holders=20)
    for p, expect_spikes in ((spiky, True), (calm, False)):
        rng = np.random.default_rng(5)
        state = initial_exo_state(p, rng)
        path, _ = draw_exo_path(p, state, rng, 0, 200)
        ratio = path.kappa[1:] / path.kappa[:-1]
        assert bool((ratio > 1.4).any()) is expect_spikes


def test_delay_kernel_reports_about_a_third_at_once_and_half_within_a_day() -> None:
    kernel = delay_kernel(6, same_daypart=0.35, within_day=0.5, tail_days=1.5, max_days=7)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel[0] == pytest.approx(0.35)
    assert kernel[:6].sum() == pytest.approx(0.5)
    assert kernel[6:].sum() == pytest.approx(0.5)
    assert kernel.shape == (42,)


def test_delay_fractions_are_a_multinomial_split_of_whole_conversions() -> None:
    kernel = delay_kernel(4, same_daypart=0.35, within_day=0.5, tail_days=1.0, max_days=3)
    conversions = np.array([0, 1, 7, 100])
    frac = draw_delay_fractions(kernel, conversions, np.random.default_rng(0))
    np.testing.assert_allclose(frac.sum(axis=1), 1.0)
    np.testing.assert_allclose(frac[0], kernel)
    counts = frac * conversions[:, None]
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


@pytest.mark.parametrize("family", SCENARIO_FAMILIES)
def test_every_family_draws_valid_reproducible_parameters(family: str) -> None:
    a = draw_scenario(family, seed=11, n_holders=7)
    b = draw_scenario(family, seed=11, n_holders=7)
    c = draw_scenario(family, seed=12, n_holders=7)
    assert a.n_holders == 7
    for name, value in a.to_arrays().items():
        np.testing.assert_array_equal(value, b.to_arrays()[name])
    assert not np.array_equal(a.beta, c.beta)
    assert (a.beta > 0).all() and (a.ec > 0).all() and (a.demand_clicks > 0).all()


def test_families_change_what_their_names_say() -> None:
    base = draw_design("stationary", 1, 50)
    assert (draw_design("s_curves", 1, 50).slope >= 1.5).all()
    assert (draw_design("loose_budget", 1, 50).volume_headroom < 1.0).all()
    assert (draw_design("tight_budget", 1, 50).volume_headroom > 2.9).all()
    assert draw_design("fatigue_heavy", 1, 50).fatigue_phi.min() > base.fatigue_phi.max()
    assert (draw_design("drift", 1, 50).drift_sigma > 0).all() and (base.drift_sigma == 0).all()
    assert draw_design("delayed_conv", 1, 50).delay_same_daypart < base.delay_same_daypart
    assert draw_design("dayparted", 1, 50).peak_strength.mean() > 2 * base.peak_strength.mean()
    assert draw_design("cpc_spikes", 1, 50).spike_prob > 0 == base.spike_prob


def test_calibration_hits_the_designed_roas_at_the_initial_set_up() -> None:
    design = draw_design("stationary", 4, 6)
    params = draw_scenario("stationary", 4, 6)
    state = CoreState(np.zeros(6), np.zeros((6, 1)))
    rng = np.random.default_rng(0)
    exo_state = initial_exo_state(params, rng)
    path, _ = draw_exo_path(params, exo_state, rng, 0, 20 * P)
    flat = path._replace(kappa=np.ones_like(path.kappa), weekday_factor=np.ones_like(path.weekday_factor))
    out = rollout_expected(
        np,
        params.core(),
        state,
        flat,
        daily_budget=params.daily_budget,
        bid_mult=np.ones(6),
        reach=np.ones(6),
        quality=np.ones(6),
        creative_share=np.zeros((6, 1)),
    )
    last_days = slice(10 * P, 20 * P)
    roas = out.value[last_days].sum(axis=0) / out.spend[last_days].sum(axis=0)
    np.testing.assert_allclose(roas, design.target_roas, rtol=0.1)


def test_rollout_needs_exactly_one_spend_plan(params: MarketParams) -> None:
    rng = np.random.default_rng(0)
    path, _ = draw_exo_path(params, initial_exo_state(params, rng), rng, 0, 2)
    inputs = _inputs(params)
    inputs.pop("planned_spend")
    with pytest.raises(InputError):
        rollout_expected(np, params.core(), _state(), path, **inputs)


def test_unknown_family_and_malformed_parameters_are_refused(params: MarketParams) -> None:
    with pytest.raises(InputError, match="unknown scenario family"):
        draw_scenario("sunny", 1, 3)
    with pytest.raises(InputError, match="shape"):
        params.replace(beta=np.ones(H + 1))
