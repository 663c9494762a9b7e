"""The learned policy, its env, oracle and baselines pull the lever each holder's bidding strategy listens to."""

from __future__ import annotations

import numpy as np
import pytest

from bidloop.core.actions import SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.agent_context import AgentContext, AgentTuning
from bidloop.core.entities import EntityKind
from bidloop.policies.env import EpisodeSpec, MarketSession
from bidloop.policies.learned import LearnedBidPolicy
from bidloop.policies.observation import FEATURE_NAMES, OBSERVATION_SPEC_VERSION, holder_features
from bidloop.policies.oracle import horizon_oracle
from bidloop.tools.sim import SimClient, default_market
from bidloop.tools.sim.model import STRATEGY_MANUAL, STRATEGY_NONE, STRATEGY_TARGET_CPA, STRATEGY_TARGET_ROAS


def _session(family: str, seed: int = 1_000_003, n: int = 6) -> MarketSession:
    return MarketSession(EpisodeSpec(family, seed, n_holders=n, days=2))


def _family_with(code: int, family: str) -> MarketSession:
    for seed in range(1_000_000, 1_000_050):
        session = _session(family, seed)
        if (session.params.strategy_codes == code).any():
            return session
    raise AssertionError(f"no {family} scenario with strategy {code}")


def test_the_observation_spec_names_the_target_features() -> None:
    assert OBSERVATION_SPEC_VERSION == "holder-obs@2"
    assert FEATURE_NAMES[-2:] == ("uses_target", "log_target_slack_week")


def test_spending_more_lowers_a_roas_target_and_raises_a_cpa_target_in_the_env() -> None:
    session = _session("smart_bidding")
    codes = session.params.strategy_codes
    before = session.reported()
    session.apply(np.ones(len(codes)), np.full(len(codes), 1.15))
    after = session.reported()
    roas = codes == STRATEGY_TARGET_ROAS
    cpa = codes == STRATEGY_TARGET_CPA
    assert roas.any() and cpa.any()
    assert np.all(after.target_roas[roas] < before.target_roas[roas])
    assert np.all(after.target_cpa_micros[cpa] > before.target_cpa_micros[cpa])
    # Bids are reported only where the strategy uses them; targets only where it bids to one.
    assert np.isnan(after.bid_micros[roas | cpa]).all()
    assert np.isfinite(after.bid_micros[codes == STRATEGY_MANUAL]).all()
    features = holder_features(after)
    assert np.all(features[roas | cpa, FEATURE_NAMES.index("uses_target")] == 1.0)
    assert np.all(features[codes == STRATEGY_MANUAL, FEATURE_NAMES.index("uses_target")] == 0.0)
    assert session.target_moves == int((roas | cpa).sum())
    assert session.bid_moves == int((codes == STRATEGY_MANUAL).sum())


def test_under_lowest_cost_no_lever_moves_delivery() -> None:
    session = _family_with(STRATEGY_NONE, "cbo_lowest_cost")
    none = session.params.strategy_codes == STRATEGY_NONE
    session.apply(np.ones(none.size), np.full(none.size, 1.2))
    assert np.all(session.bid_mult[none] == 1.0)
    assert np.all(session.bid_mult[~none] > 1.0)


def test_the_oracle_cannot_pull_a_lever_the_platform_does_not_have() -> None:
    session = _family_with(STRATEGY_NONE, "cbo_lowest_cost")
    result = horizon_oracle(session, iterations=5)
    none = session.params.strategy_codes == STRATEGY_NONE
    assert np.allclose(result.plan.bid_mult[:, none], 1.0)


class _ConstantModel:
    """A stand-in for a trained network: the same raw action for every holder."""

    version = "test-constant@1"
    max_change_pct = 20.0

    def __init__(self, budget: float, lever: float) -> None:
        self.raw = (budget, lever)

    def act_features(self, features: np.ndarray) -> np.ndarray:
        return np.tile(np.asarray(self.raw, dtype=np.float64), (features.shape[0], 1))


@pytest.fixture(scope="module")
def market():
    return default_market()


def test_the_learned_policy_moves_targets_under_smart_bidding_and_bids_only_where_they_count(market) -> None:
    snap = SimClient(market).read_snapshot("sim-google")
    policy = LearnedBidPolicy(_ConstantModel(0.0, 1.0))  # type: ignore[arg-type]
    actions = policy.propose(snap, AgentContext(run_id="t", tuning=AgentTuning(min_clicks_for_bid_change=0)))
    by_entity = {a.entity.entity_id: a for a in actions if not isinstance(a, SetBudget)}
    roas = by_entity["21000103"]
    cpa = by_entity["21000104"]
    # Spend more: a lower ROAS target, a higher CPA target.
    assert isinstance(roas, SetTargetRoas) and roas.new_target_roas_bps < roas.old_target_roas_bps
    assert isinstance(cpa, SetTargetCpa) and cpa.new_target_cpa_micros > cpa.old_target_cpa_micros
    entities = {e.ref.entity_id: e for e in snap.entities}
    for action in actions:
        if isinstance(action, SetBid):
            assert entities[action.entity.entity_id].bidding_strategy.uses_bids
    assert any(isinstance(a, SetBid) for a in actions)


def test_the_learned_policy_spending_less_raises_a_roas_target(market) -> None:
    snap = SimClient(market).read_snapshot("sim-google")
    policy = LearnedBidPolicy(_ConstantModel(0.0, -1.0))  # type: ignore[arg-type]
    actions = policy.propose(snap, AgentContext(run_id="t", tuning=AgentTuning(min_clicks_for_bid_change=0)))
    roas = next(a for a in actions if isinstance(a, SetTargetRoas))
    assert roas.new_target_roas_bps > roas.old_target_roas_bps


def test_the_learned_policy_moves_no_budget_to_a_holder_that_does_not_deliver(market) -> None:
    snap = SimClient(market).read_snapshot("sim-meta")
    policy = LearnedBidPolicy(_ConstantModel(1.0, 0.0))  # type: ignore[arg-type]
    actions = policy.propose(snap, AgentContext(run_id="t", tuning=AgentTuning(min_clicks_for_bid_change=0)))
    blocked = {e.ref.entity_id for e in snap.entities if not e.is_delivering}
    assert "129" in blocked
    assert not [a for a in actions if a.entity.entity_id in blocked]


def test_the_learned_policy_does_not_act_without_enough_clicks(market) -> None:
    snap = SimClient(market).read_snapshot("sim-google")
    clicks = {h.ref.entity_id: h.trailing_7d.clicks for h in snap.budget_holders()}
    threshold = sorted(clicks.values())[1] + 1  # two campaigns fall short
    policy = LearnedBidPolicy(_ConstantModel(0.5, 1.0))  # type: ignore[arg-type]
    actions = policy.propose(snap, AgentContext(run_id="t", tuning=AgentTuning(min_clicks_for_bid_change=threshold)))
    short = {cid for cid, c in clicks.items() if c < threshold}
    entities = {e.ref.entity_id: e for e in snap.entities}
    for action in actions:
        target = entities[action.entity.entity_id]
        holder_id = target.ref.entity_id if target.ref.kind is EntityKind.CAMPAIGN else target.campaign_id
        assert holder_id not in short
        assert target.trailing_7d.clicks >= threshold
