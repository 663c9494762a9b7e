"""The oracles: the horizon oracle beats every baseline and the myopic oracle; the guard flags solver failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bidloop.policies.baselines import BASELINE_NAMES, make_baseline
from bidloop.policies.env import EpisodeSpec, MarketSession
from bidloop.policies.evaluation import play
from bidloop.policies.oracle import Plan, guard_oracle, horizon_oracle, myopic_oracle, plan_value


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("family", ["stationary", "tight_budget", "s_curves"])
def test_horizon_oracle_beats_every_baseline_on_sample_scenarios(family: str) -> None:
    spec = EpisodeSpec(family, 1_000_001, n_holders=3, days=2)
    played = {name: play(make_baseline(name), spec) for name in BASELINE_NAMES}
    session = MarketSession(spec)
    oracle = horizon_oracle(session, iterations=60)  # no baseline plan as a start: the solver must find it
    for name, result in played.items():
        assert oracle.value >= result.value * 0.999, f"{name} beat the oracle on {family}"


def test_horizon_oracle_is_at_least_the_myopic_oracle_it_starts_from() -> None:
    session = MarketSession(EpisodeSpec("fatigue_heavy", 1_000_002, n_holders=3, days=2))
    myopic = myopic_oracle(session, iterations=20)
    horizon = horizon_oracle(session, {"myopic": myopic.plan}, iterations=40)
    assert horizon.value >= myopic.value * (1 - 1e-9)
    assert plan_value(session, horizon.plan) == pytest.approx(horizon.value)


def test_oracle_plan_never_spends_more_than_the_daily_budget() -> None:
    session = MarketSession(EpisodeSpec("loose_budget", 1_000_003, n_holders=4, days=2))
    plan = horizon_oracle(session, iterations=40).plan
    per_day = plan.spend.reshape(2, -1).sum(axis=1)
    assert (per_day <= session.total_budget * (1 + 1e-9)).all()


def test_plan_value_of_the_hold_plan_matches_playing_hold_current() -> None:
    spec = EpisodeSpec("stationary", 1_000_004, n_holders=3, days=1)
    held = play(make_baseline("hold_current"), spec)
    assert plan_value(MarketSession(spec), Plan(held.plan.spend, held.plan.bid_mult)) == pytest.approx(held.value)


def test_guard_flags_a_policy_that_beats_the_solver() -> None:
    value, beaten = guard_oracle(100.0, {"a": 90.0, "b": 101.0})
    assert value == 101.0 and beaten == ["b"]
    value, beaten = guard_oracle(100.0, {"a": 90.0})
    assert value == 100.0 and beaten == []


def test_myopic_oracle_is_deterministic() -> None:
    spec = EpisodeSpec("cpc_spikes", 1_000_005, n_holders=2, days=1)
    a = myopic_oracle(MarketSession(spec), iterations=10)
    b = myopic_oracle(MarketSession(spec), iterations=10)
    assert a.value == b.value and np.array_equal(a.plan.spend, b.plan.spend)


def test_same_seed_gives_identical_evaluation_numbers() -> None:
    from bidloop.policies.evaluation import evaluate_scenarios, held_out_specs, summarise

    def run() -> dict[str, object]:
        specs = held_out_specs(["stationary", "drift"], 1, n_holders=2, days=1)
        scores = evaluate_scenarios(specs, {}, oracle_iterations=10, with_myopic=False)
        return summarise(scores, policy_names=[])

    first, second = run(), run()
    assert first == second
    assert first["solver_failures"] == 0
