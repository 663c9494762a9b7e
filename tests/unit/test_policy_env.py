"""The market env: Gymnasium/SB3 compliance, reproducibility, budget keeping, and observation from a Snapshot."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

from bidloop.core.entities import EntityKind
from bidloop.core.errors import InputError
from bidloop.core.snapshot import Snapshot
from bidloop.policies.env import BudgetMarketEnv, EpisodeSpec, HolderVecEnv, MarketSession
from bidloop.policies.observation import N_FEATURES, holder_features, reported_from_snapshot
from bidloop.policies.projection import action_to_multipliers, project_budgets

MICROS = 1_000_000


def test_env_passes_sb3_check_env() -> None:
    check_env(BudgetMarketEnv(n_holders=3, days=1), warn=True)


def test_same_seed_gives_identical_trajectory() -> None:
    def rollout(seed: int) -> tuple[np.ndarray, list[float]]:
        env = BudgetMarketEnv(families=("cpc_spikes", "delayed_conv"), n_holders=3, days=1)
        obs, _ = env.reset(seed=seed)
        observations, rewards = [obs], []
        rng = np.random.default_rng(0)
        for _ in range(6):
            obs, reward, _, _, _ = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
            observations.append(obs)
            rewards.append(reward)
        return np.stack(observations), rewards

    a, ra = rollout(11)
    b, rb = rollout(11)
    c, _ = rollout(12)
    assert np.array_equal(a, b) and ra == rb
    assert not np.array_equal(a, c)


def test_holding_the_initial_set_up_earns_exactly_the_hold_rollout_value() -> None:
    session = MarketSession(EpisodeSpec("fatigue_heavy", 5, n_holders=4, days=2))
    hold = session.hold_values()
    while not session.done:
        session.apply(np.ones(4), np.ones(4))
        session.step()
    assert session.total_value == pytest.approx(hold.sum(), rel=1e-9)


@pytest.mark.parametrize("family", ["tight_budget", "loose_budget", "dayparted"])
def test_no_day_overspends_the_account_budget_even_under_wild_actions(family: str) -> None:
    session = MarketSession(EpisodeSpec(family, 3, n_holders=5, days=3))
    rng = np.random.default_rng(1)
    while not session.done:
        session.apply(np.exp(rng.uniform(-3, 3, 5)), np.exp(rng.uniform(-1, 1, 5)))
        session.step()
        assert session.budget.sum() == pytest.approx(session.total_budget, abs=1e-6)
    assert len(session.day_spend) == 3
    assert session.overspent_days() == 0


def test_holder_vec_env_gives_every_holder_its_accounts_reward() -> None:
    venv = HolderVecEnv([BudgetMarketEnv(n_holders=2, days=1), BudgetMarketEnv(n_holders=3, days=1)], seed=0)
    obs = venv.reset()
    assert obs.shape == (5, N_FEATURES)
    obs, rewards, dones, infos = venv.step(np.zeros((5, 2), dtype=np.float32))
    assert rewards[0] == rewards[1] and rewards[2] == rewards[3] == rewards[4]
    assert not dones.any()
    for _ in range(5):
        obs, rewards, dones, infos = venv.step(np.zeros((5, 2), dtype=np.float32))
    assert dones.all(), "a one-day episode ends after six dayparts"
    assert "terminal_observation" in infos[0] and "episode" in infos[0]


def test_projection_keeps_the_total_and_the_max_change_limit() -> None:
    current = np.array([100, 50, 30, 20], dtype=np.int64) * MICROS
    new = project_budgets(current, np.array([3.0, 1.0, 0.2, 1.0]), total_micros=int(current.sum()), max_change_pct=20)
    assert new.sum() == current.sum()
    assert (np.abs(new - current) <= current * 0.2 + 1).all()
    assert new[0] > current[0] and new[2] < current[2]


def test_projection_never_cuts_a_budget_below_todays_spend() -> None:
    current = np.array([100, 100], dtype=np.int64) * MICROS
    new = project_budgets(
        current, np.array([0.1, 10.0]), total_micros=200 * MICROS, max_change_pct=50, floor_micros=[95 * MICROS, 0]
    )
    assert new[0] >= 95 * MICROS and new.sum() == 200 * MICROS


def test_projection_scales_to_ten_thousand_holders() -> None:
    rng = np.random.default_rng(0)
    current = rng.integers(MICROS, 500 * MICROS, 10_000)
    new = project_budgets(current, np.exp(rng.normal(size=10_000)), total_micros=int(current.sum()), max_change_pct=20)
    assert new.sum() == current.sum()
    assert (new <= np.floor(current * 1.2)).all() and (new >= np.floor(current * 0.8)).all()


def test_projection_refuses_a_non_positive_limit() -> None:
    with pytest.raises(InputError):
        project_budgets(np.array([1]), np.array([1.0]), total_micros=1, max_change_pct=0)


def test_raw_actions_map_to_factors_within_the_limit() -> None:
    wish, bid = action_to_multipliers(np.array([[1.0, -1.0], [5.0, np.nan]]), 20.0)
    assert wish == pytest.approx([1.2, 1.2]) and bid == pytest.approx([1 / 1.2, 1.0])


def test_observation_from_a_snapshot_uses_the_same_features(
    make_entity: Callable, make_metrics: Callable, make_snapshot: Callable
) -> None:
    holders = [
        make_entity(
            EntityKind.CAMPAIGN,
            str(i),
            daily_budget_micros=(50 + 10 * i) * MICROS,
            today=make_metrics(cost=10 + i, value=30, clicks=10),
            trailing_7d=make_metrics(cost=300, value=900 + 100 * i, clicks=200),
            daily_history=[make_metrics(cost=40, value=120, clicks=30)] * 7,
        )
        for i in range(3)
    ]
    snap: Snapshot = make_snapshot(holders)
    reported = reported_from_snapshot(snap)
    features = holder_features(reported)
    assert features.shape == (3, N_FEATURES) and np.isfinite(features).all()
    assert features[2, 3] > features[0, 3], "the holder with the higher ROAS has the higher relative-ROAS feature"
    session_features = holder_features(MarketSession(EpisodeSpec("stationary", 1, n_holders=3, days=1)).reported())
    assert session_features.shape == features.shape


def test_observation_of_an_account_without_holders_is_refused(make_snapshot: Callable) -> None:
    with pytest.raises(InputError):
        reported_from_snapshot(make_snapshot([]))
