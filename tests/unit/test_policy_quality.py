"""The shipped policy earns more than every baseline on held-out markets with Smart Bidding and CBO holders."""

from __future__ import annotations

import pytest

from bidloop.policies.baselines import BASELINE_NAMES, make_baseline
from bidloop.policies.env import TEST_SEED_BASE, EpisodeSpec
from bidloop.policies.evaluation import play
from bidloop.policies.learned import HolderPolicyModel, SessionPolicy
from bidloop.policies.registry import DEFAULT_POLICY_ID, shipped_files


@pytest.fixture(scope="module")
def model() -> HolderPolicyModel:
    return HolderPolicyModel(shipped_files(DEFAULT_POLICY_ID))


def test_the_shipped_policy_was_trained_on_the_smart_bidding_and_cbo_families(model: HolderPolicyModel) -> None:
    assert {"smart_bidding", "cbo_lowest_cost"} <= set(model.metadata.families)


@pytest.mark.parametrize("family", ["smart_bidding", "cbo_lowest_cost"])
def test_the_shipped_policy_beats_every_baseline_on_held_out_scenarios(model: HolderPolicyModel, family: str) -> None:
    for seed in (TEST_SEED_BASE + 7, TEST_SEED_BASE + 8):
        spec = EpisodeSpec(family, seed, n_holders=5, days=14)
        learned = play(SessionPolicy(model), spec)
        assert learned.overspent_days == 0
        for name in BASELINE_NAMES:
            assert learned.value > play(make_baseline(name), spec).value, (family, seed, name)


def test_the_shipped_policy_moves_targets_on_smart_bidding_holders(model: HolderPolicyModel) -> None:
    result = play(SessionPolicy(model), EpisodeSpec("smart_bidding", TEST_SEED_BASE + 7, n_holders=5, days=14))
    assert result.target_moves > 0
