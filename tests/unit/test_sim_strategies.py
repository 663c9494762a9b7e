"""The simulated market runs accounts as the platforms do: bidding strategies, CBO, lifetime budgets, delivery."""

from __future__ import annotations

import numpy as np
import pytest

from bidloop.core.actions import AgentName, SetBid, SetBudget, SetTargetCpa, SetTargetRoas
from bidloop.core.clearance import _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import BiddingStrategy, BudgetPeriod, EntityKind, EntityRef, Platform
from bidloop.core.snapshot import Snapshot
from bidloop.tools.sim import SimClient, SimMarket, default_market, generated_market
from bidloop.tools.sim.fixtures import CBO_CAMPAIGN_ID, CBO_FLIGHT_DAYS, PAUSED_CAMPAIGN_ID
from bidloop.tools.sim.model import (
    STRATEGY_MANUAL,
    STRATEGY_NONE,
    STRATEGY_TARGET_CPA,
    STRATEGY_TARGET_ROAS,
    lever_factor_to_mult,
    mult_from_targets,
    targets_from_mult,
)
from bidloop.tools.sim.scenarios import draw_scenario

P = 6


@pytest.fixture(scope="module")
def base() -> SimMarket:
    return default_market()


@pytest.fixture
def market(base: SimMarket) -> SimMarket:
    return base.clone()


def _ref(platform: Platform, account: str, kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=platform, account_id=account, kind=kind, entity_id=entity_id)


def _apply(market: SimMarket, account: str, action) -> WriteStatus:
    result = SimClient(market).apply(account, [_issue_clearance(action, verdict="allowed", rule_id="test")])[0]
    return result.status


def _snapshot(market: SimMarket, account: str) -> Snapshot:
    return SimClient(market).read_snapshot(account)


def _expected_day(market: SimMarket, holder: int) -> tuple[float, float, float]:
    """Return the expected (clicks, spend, value) of one holder over the next day at the current settings."""
    out = market.expected_rollout(P)
    return (
        float(np.asarray(out.clicks)[:, holder].sum()),
        float(np.asarray(out.spend)[:, holder].sum()),
        float(np.asarray(out.value)[:, holder].sum()),
    )


def _holder_index(market: SimMarket, account: str, entity_id: str) -> int:
    return market.holder_entity_ids().index((account, entity_id))


# ---------------------------------------------------------------- what the snapshot says


def test_every_campaign_ad_group_and_keyword_under_a_holder_carries_its_strategy(base: SimMarket) -> None:
    snap = _snapshot(base, "sim-google")
    strategies = {c.ref.entity_id: c.bidding_strategy for c in snap.of_kind(EntityKind.CAMPAIGN)}
    assert strategies == {
        "21000101": BiddingStrategy.MANUAL_CPC,
        "21000102": BiddingStrategy.MANUAL_CPC,
        "21000103": BiddingStrategy.TARGET_ROAS,
        "21000104": BiddingStrategy.TARGET_CPA,
    }
    for e in snap.entities:
        if e.ref.kind in (EntityKind.AD_GROUP, EntityKind.KEYWORD):
            assert e.bidding_strategy is strategies[e.campaign_id]


def test_bids_are_reported_only_where_the_strategy_uses_them(base: SimMarket) -> None:
    snap = _snapshot(base, "sim-google")
    for e in snap.entities:
        if e.ref.kind in (EntityKind.AD_GROUP, EntityKind.KEYWORD):
            assert (e.cpc_bid_micros is not None) == e.bidding_strategy.uses_bids


def test_smart_bidding_holders_report_their_target(base: SimMarket) -> None:
    campaigns = _snapshot(base, "sim-google").by_id(EntityKind.CAMPAIGN)
    assert campaigns["21000103"].target_roas_bps and campaigns["21000103"].target_roas_bps > 10_000
    assert campaigns["21000103"].target_cpa_micros is None
    assert campaigns["21000104"].target_cpa_micros and campaigns["21000104"].target_cpa_micros > 0
    cost_cap = _snapshot(base, "sim-meta").by_id(EntityKind.AD_GROUP)["123"]
    # Meta COST_CAP: "Get the most results possible while Meta strives to meet the cost per action you set."
    # https://developers.facebook.com/docs/marketing-api/bidding/overview/bid-strategy/
    assert cost_cap.bidding_strategy is BiddingStrategy.COST_CAP
    assert cost_cap.target_cpa_micros and cost_cap.cpc_bid_micros is None


def test_a_campaign_budget_holds_the_budget_and_its_ad_sets_have_none(base: SimMarket) -> None:
    # "An Advantage campaign budget is a way of optimizing the distribution of a campaign budget across your
    # campaign's ad sets." https://developers.facebook.com/documentation/ads-commerce/marketing-api/bidding/guides/advantage-campaign-budget
    snap = _snapshot(base, "sim-meta")
    cbo = snap.by_id(EntityKind.CAMPAIGN)[CBO_CAMPAIGN_ID]
    assert cbo in snap.budget_holders()
    assert cbo.bidding_strategy is BiddingStrategy.LOWEST_COST
    ad_sets = [a for a in snap.of_kind(EntityKind.AD_GROUP) if a.campaign_id == CBO_CAMPAIGN_ID]
    assert len(ad_sets) == 2
    assert all(a.daily_budget_micros is None for a in ad_sets)
    assert cbo.trailing_7d.cost_micros > 0
    assert sum(a.trailing_7d.cost_micros for a in ad_sets) == cbo.trailing_7d.cost_micros


def test_a_lifetime_budget_reads_as_the_daily_equivalent_of_what_remains(base: SimMarket) -> None:
    cbo = _snapshot(base, "sim-meta").by_id(EntityKind.CAMPAIGN)[CBO_CAMPAIGN_ID]
    assert cbo.budget_period is BudgetPeriod.LIFETIME
    assert cbo.flight_start is not None and cbo.flight_end is not None
    assert (cbo.flight_end - cbo.flight_start).days == CBO_FLIGHT_DAYS
    assert cbo.lifetime_budget_micros is not None and cbo.budget_remaining_micros is not None
    spent = cbo.lifetime_budget_micros - cbo.budget_remaining_micros
    assert spent > 0
    days_left = CBO_FLIGHT_DAYS - base.day  # today included
    # What remained when the day began (remaining + today's spend) over the days left: a rate that holds
    # still while today spends, as the Meta client reads it.
    assert cbo.daily_budget_micros == (cbo.budget_remaining_micros + cbo.today.cost_micros) // days_left


def test_a_lifetime_budget_is_never_overspent_over_its_flight() -> None:
    # "You won't be charged more than your lifetime budget for your ad set's results"
    # https://developers.facebook.com/documentation/ads-commerce/marketing-api/bidding/overview/budgets
    market = default_market()
    market.advance((CBO_FLIGHT_DAYS - 14) * P)
    cbo = _snapshot(market, "sim-meta").by_id(EntityKind.CAMPAIGN)[CBO_CAMPAIGN_ID]
    assert cbo.delivery_blocked_by == "FLIGHT_ENDED"
    assert cbo.budget_remaining_micros is not None and cbo.budget_remaining_micros >= 0
    ledger = market.true_ledger()
    h = _holder_index(market, "sim-meta", CBO_CAMPAIGN_ID)
    assert ledger.spend[:, h].sum() * 1e6 <= cbo.lifetime_budget_micros + 1


def test_setting_a_lifetime_holders_daily_budget_sets_what_remains_over_the_days_left(market: SimMarket) -> None:
    ref = _ref(Platform.META, "sim-meta", EntityKind.CAMPAIGN, CBO_CAMPAIGN_ID)
    before = _snapshot(market, "sim-meta").by_id(EntityKind.CAMPAIGN)[CBO_CAMPAIGN_ID]
    new = int(before.daily_budget_micros * 1.2)
    action = SetBudget(
        action_id="a1",
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_daily_budget_micros=before.daily_budget_micros,
        new_daily_budget_micros=new,
    )
    assert _apply(market, "sim-meta", action) is WriteStatus.APPLIED
    after = _snapshot(market, "sim-meta").by_id(EntityKind.CAMPAIGN)[CBO_CAMPAIGN_ID]
    assert after.daily_budget_micros == new
    days_left = CBO_FLIGHT_DAYS - market.day
    # What was spent before today stays spent; today and each day left get the new rate.
    assert after.budget_remaining_micros == new * days_left - before.today.cost_micros
    spent_before_today = before.lifetime_budget_micros - before.budget_remaining_micros - before.today.cost_micros
    assert after.lifetime_budget_micros == spent_before_today + new * days_left


def test_an_ad_set_under_a_paused_campaign_does_not_deliver(market: SimMarket) -> None:
    market.advance(P)
    snap = _snapshot(market, "sim-meta")
    ad_set = snap.by_id(EntityKind.AD_GROUP)["129"]
    assert snap.by_id(EntityKind.CAMPAIGN)[PAUSED_CAMPAIGN_ID].is_delivering is False
    assert ad_set.delivery_blocked_by == "CAMPAIGN_PAUSED"
    assert not ad_set.is_delivering
    assert ad_set.trailing_7d.cost_micros == 0 and ad_set.today.impressions == 0
    assert snap.account_daily_budget_micros == sum(
        h.daily_budget_micros or 0 for h in snap.budget_holders() if h.is_delivering
    )


def test_a_disapproved_creative_never_serves(market: SimMarket) -> None:
    market.advance(P)
    creatives = _snapshot(market, "sim-meta").by_id(EntityKind.CREATIVE)
    assert creatives["128002"].delivery_blocked_by == "DISAPPROVED"
    assert creatives["128002"].trailing_7d.impressions == 0
    assert creatives["128001"].trailing_7d.impressions > 0


# ---------------------------------------------------------------- levers


def test_keyword_bids_under_target_roas_change_nothing_in_delivery(market: SimMarket) -> None:
    # "if your campaign uses TARGET_ROAS as a standard bidding strategy, and you set max CPC values for
    # individual keywords in that campaign, the keyword-level bids will be ignored without errors."
    # https://developers.google.com/google-ads/api/docs/campaigns/bidding/override-strategies
    h = _holder_index(market, "sim-google", "21000103")
    before = _expected_day(market, h)
    kw = next(
        e
        for e in _snapshot(market, "sim-google").of_kind(EntityKind.KEYWORD)
        if e.campaign_id == "21000103" and e.status.value == "enabled"
    )
    ref = kw.ref
    old = int(market._e["bid_micros"][market.find("sim-google", EntityKind.KEYWORD, ref.entity_id)])
    action = SetBid(
        action_id="b1",
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_cpc_bid_micros=max(old, 1),
        new_cpc_bid_micros=max(old, 1) * 3,
    )
    result = SimClient(market).apply("sim-google", [_issue_clearance(action, verdict="allowed", rule_id="t")])[0]
    assert result.status is WriteStatus.APPLIED  # accepted without errors ...
    assert "ignored" in result.message
    assert _expected_day(market, h) == pytest.approx(before, rel=1e-12)  # ... and ignored


def test_a_higher_roas_target_buys_fewer_clicks_at_a_higher_return(market: SimMarket) -> None:
    # "If the target ROAS is high, the bid strategy may not be able to spend the full budget."
    # https://developers.google.com/google-ads/api/reference/rpc/v25/MaximizeConversionValue
    h = _holder_index(market, "sim-google", "21000103")
    clicks0, spend0, value0 = _expected_day(market, h)
    campaign = _snapshot(market, "sim-google").by_id(EntityKind.CAMPAIGN)["21000103"]
    old = campaign.target_roas_bps
    action = SetTargetRoas(
        action_id="r1",
        entity=campaign.ref,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_target_roas_bps=old,
        new_target_roas_bps=int(old * 1.5),
    )
    assert _apply(market, "sim-google", action) is WriteStatus.APPLIED
    assert _snapshot(market, "sim-google").by_id(EntityKind.CAMPAIGN)["21000103"].target_roas_bps == int(old * 1.5)
    clicks1, spend1, value1 = _expected_day(market, h)
    assert clicks1 < clicks0
    assert value1 / spend1 > value0 / spend0


def test_a_higher_cpa_target_spends_more(market: SimMarket) -> None:
    # "If set, the bid strategy will get as many conversions as possible at or below the target cost-per-action."
    # https://developers.google.com/google-ads/api/rest/reference/rest/v15/MaximizeConversions
    h = _holder_index(market, "sim-google", "21000104")
    campaign = _snapshot(market, "sim-google").by_id(EntityKind.CAMPAIGN)["21000104"]
    spends = []
    for k, factor in enumerate((0.5, 0.8)):  # this campaign spends its budget at its set-up target
        old = _snapshot(market, "sim-google").by_id(EntityKind.CAMPAIGN)["21000104"].target_cpa_micros
        action = SetTargetCpa(
            action_id=f"c{k}",
            entity=campaign.ref,
            agent=AgentName.BID_SHIFTER,
            reason="t",
            old_target_cpa_micros=old,
            new_target_cpa_micros=int(campaign.target_cpa_micros * factor),
        )
        assert _apply(market, "sim-google", action) is WriteStatus.APPLIED
        spends.append(_expected_day(market, h)[1])
    assert spends[1] > spends[0]


def test_a_target_on_a_holder_whose_strategy_does_not_use_it_fails(market: SimMarket) -> None:
    manual = _ref(Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "21000101")
    roas = SetTargetRoas(
        action_id="x1",
        entity=manual,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_target_roas_bps=20_000,
        new_target_roas_bps=25_000,
    )
    assert _apply(market, "sim-google", roas) is WriteStatus.FAILED
    troas = _ref(Platform.GOOGLE_ADS, "sim-google", EntityKind.CAMPAIGN, "21000103")
    cpa = SetTargetCpa(
        action_id="x2",
        entity=troas,
        agent=AgentName.BID_SHIFTER,
        reason="t",
        old_target_cpa_micros=1_000_000,
        new_target_cpa_micros=2_000_000,
    )
    assert _apply(market, "sim-google", cpa) is WriteStatus.FAILED


def test_lowest_cost_ignores_the_bid_and_only_the_budget_moves_it() -> None:
    # "LOWEST_COST_WITHOUT_CAP: Meta automatically bids on your behalf and gets you the lowest cost results."
    # https://developers.facebook.com/docs/marketing-api/bidding/overview/bid-strategy/
    params = draw_scenario("cbo_lowest_cost", 3, 20)
    codes = params.strategy_codes
    assert (codes == STRATEGY_NONE).any()
    moved = lever_factor_to_mult(params, np.ones(20), np.full(20, 1.2))
    assert np.all(moved[codes == STRATEGY_NONE] == 1.0)
    assert np.all(moved[codes != STRATEGY_NONE] > 1.0)


def test_the_target_and_the_multiplier_are_one_mapping_for_market_env_and_oracle() -> None:
    params = draw_scenario("smart_bidding", 11, 30)
    codes = params.strategy_codes
    m = np.exp(np.random.default_rng(0).uniform(np.log(0.5), np.log(2.0), 30))
    roas, cpa = targets_from_mult(params, m)
    back = mult_from_targets(params, roas, cpa)
    smart = (codes == STRATEGY_TARGET_ROAS) | (codes == STRATEGY_TARGET_CPA)
    assert np.allclose(back[smart], m[smart])
    assert np.isnan(back[codes == STRATEGY_MANUAL]).all()
    # Spending more (factor > 1) lowers a ROAS target and raises a CPA target.
    up = lever_factor_to_mult(params, m, np.full(30, 1.1))
    roas_up, cpa_up = targets_from_mult(params, up)
    inside = (up < 2.0) & (m < 2.0)
    assert np.all(roas_up[inside & (codes == STRATEGY_TARGET_ROAS)] < roas[inside & (codes == STRATEGY_TARGET_ROAS)])
    assert np.all(cpa_up[inside & (codes == STRATEGY_TARGET_CPA)] > cpa[inside & (codes == STRATEGY_TARGET_CPA)])


def test_the_existing_families_stay_on_manual_cpc() -> None:
    for family in ("stationary", "cpc_spikes", "tight_budget"):
        assert (draw_scenario(family, 1, 8).strategy_codes == STRATEGY_MANUAL).all()


def test_a_generated_cbo_market_puts_the_budgets_on_the_campaigns() -> None:
    market = generated_market(200, 1, Platform.META, family="cbo_lowest_cost", warmup_days=2)
    snap = _snapshot(market, "sim-gen")
    holders = snap.budget_holders()
    assert holders and all(h.ref.kind is EntityKind.CAMPAIGN for h in holders)
    assert all(a.daily_budget_micros is None for a in snap.of_kind(EntityKind.AD_GROUP))
    assert sum(h.trailing_7d.cost_micros for h in holders) > 0


def test_a_market_with_strategies_round_trips_through_bytes(market: SimMarket) -> None:
    market.advance(2)
    again = SimMarket.from_bytes(market.to_bytes())
    assert again.to_bytes() == market.to_bytes()
    again.advance(P)
    market.advance(P)
    assert again.to_bytes() == market.to_bytes()
