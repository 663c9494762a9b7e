"""Guardrails for the levers real accounts have: bidding strategies, targets, delivery and evidence.

Each platform fact a rule relies on is quoted from the platform's documentation or SDK, with its address.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bidloop.agents.operator_intent import IntentKind, OperatorIntent
from bidloop.agents.reporting import build_report
from bidloop.core.actions import (
    ACTION_ADAPTER,
    AddKeyword,
    AgentName,
    EnableCreative,
    SetBid,
    SetBudget,
    SetTargetCpa,
    SetTargetRoas,
)
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import BiddingStrategy, EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.limits import GuardrailLimits
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.core.store import Store
from bidloop.graph.chat import PlanLine, _plan_summary
from bidloop.guardrails import FilterContext, evaluate, plan_rollback
from bidloop.guardrails.filter import history_from_ledger
from bidloop.guardrails.rules import evidence_of

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
USD = 1_000_000
ACCOUNT = "acct"
HISTORY = [Metrics(impressions=1_000, clicks=20, cost_micros=10 * USD) for _ in range(14)]
"""Fourteen days of 20 clicks and 10 USD a day: enough for the default evidence thresholds."""


def ref(kind: EntityKind, entity_id: str, platform: Platform = Platform.GOOGLE_ADS) -> EntityRef:
    return EntityRef(platform=platform, account_id=ACCOUNT, kind=kind, entity_id=entity_id)


def entity(kind: EntityKind, entity_id: str, platform: Platform = Platform.GOOGLE_ADS, **fields: Any) -> EntityState:
    fields.setdefault("daily_history", list(HISTORY))
    fields.setdefault("name", entity_id)
    if kind is EntityKind.CAMPAIGN:
        fields.setdefault("campaign_id", entity_id)
    return EntityState(ref=ref(kind, entity_id, platform), **fields)


def snapshot(*entities: EntityState, platform: Platform = Platform.GOOGLE_ADS) -> Snapshot:
    total = sum(e.daily_budget_micros or 0 for e in entities if e.ref.kind is EntityKind.CAMPAIGN)
    return Snapshot(
        account_id=ACCOUNT, platform=platform, as_of=NOW, account_daily_budget_micros=total, entities=list(entities)
    )


def google_account(strategy: BiddingStrategy | None = BiddingStrategy.TARGET_ROAS, **campaign: Any) -> Snapshot:
    """Campaign c1 (100 USD/day) under `strategy`, ad group g1, keyword k1 (1 USD bid, strategy inherited)."""
    target = {}
    if strategy is not None and strategy.uses_target_roas:
        target = {"target_roas_bps": 30_000}
    elif strategy is not None and strategy.uses_target_cpa:
        target = {"target_cpa_micros": 20 * USD}
    return snapshot(
        entity(
            EntityKind.CAMPAIGN,
            "c1",
            daily_budget_micros=100 * USD,
            bidding_strategy=strategy,
            **{**target, **campaign},
        ),
        entity(EntityKind.AD_GROUP, "g1", parent_id="c1", campaign_id="c1", bidding_strategy=strategy),
        entity(EntityKind.KEYWORD, "k1", parent_id="g1", campaign_id="c1", cpc_bid_micros=USD, bidding_strategy=None),
    )


def bid(entity_id: str, old: int, new: int, kind: EntityKind = EntityKind.KEYWORD, **kw: Any) -> SetBid:
    platform = kw.pop("platform", Platform.GOOGLE_ADS)
    return SetBid(
        action_id=f"bid-{entity_id}-{new}",
        entity=ref(kind, entity_id, platform),
        agent=kw.pop("agent", AgentName.BID_SHIFTER),
        reason="lift the bid",
        old_cpc_bid_micros=old,
        new_cpc_bid_micros=new,
    )


def roas(entity_id: str, old: int, new: int, kind: EntityKind = EntityKind.CAMPAIGN, **kw: Any) -> SetTargetRoas:
    return SetTargetRoas(
        action_id=f"roas-{entity_id}-{new}",
        entity=ref(kind, entity_id),
        agent=kw.pop("agent", AgentName.BID_SHIFTER),
        reason="loosen the target where the return allows",
        old_target_roas_bps=old,
        new_target_roas_bps=new,
    )


def cpa(entity_id: str, old: int, new: int, kind: EntityKind = EntityKind.CAMPAIGN) -> SetTargetCpa:
    return SetTargetCpa(
        action_id=f"cpa-{entity_id}-{new}",
        entity=ref(kind, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="raise the CPA target",
        old_target_cpa_micros=old,
        new_target_cpa_micros=new,
    )


def budget(entity_id: str, old: int, new: int, kind: EntityKind = EntityKind.CAMPAIGN, **kw: Any) -> SetBudget:
    platform = kw.pop("platform", Platform.GOOGLE_ADS)
    return SetBudget(
        action_id=f"budget-{entity_id}-{new}",
        entity=ref(kind, entity_id, platform),
        agent=AgentName.BID_SHIFTER,
        reason="cut the budget",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def judge(snap: Snapshot, *actions: object, limits: GuardrailLimits | None = None, **ctx: Any) -> list[Decision]:
    context = FilterContext(run_id="run-1", actor=ctx.pop("actor", "cli"), now=NOW, **ctx)
    return evaluate(list(actions), {ACCOUNT: snap}, limits or GuardrailLimits(), context=context)


# -- bids only where the strategy uses them ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", [s for s in BiddingStrategy if not s.uses_bids])
def test_a_bid_on_a_keyword_whose_campaign_does_not_bid_manually_is_blocked_never_sent(
    strategy: BiddingStrategy,
) -> None:
    # Google Ads API v26 ad_group.proto, cpc_bid_micros: "This field is used when the ad group's effective
    # bidding strategy is Manual CPC. This field is not applicable and will be ignored if the ad group's
    # campaign is using a portfolio bidding strategy."
    # (google/ads/googleads/v26/resources/types/ad_group.py in google-ads 34.0.0;
    #  https://developers.google.com/google-ads/api/reference/rpc/v26/AdGroup)
    [d] = judge(google_account(strategy), bid("k1", USD, 1_100_000))
    assert (d.verdict, d.rule_id, d.final_action) == (Verdict.BLOCKED, "bid_ignored_by_strategy", None)
    assert strategy.value in d.message


@pytest.mark.parametrize("strategy", [BiddingStrategy.MANUAL_CPC, None])
def test_a_bid_under_manual_cpc_or_an_unknown_strategy_passes(strategy: BiddingStrategy | None) -> None:
    [d] = judge(google_account(strategy), bid("k1", USD, 1_100_000))
    assert d.verdict is Verdict.ALLOWED
    assert "bid_ignored_by_strategy" in d.checks_passed


def test_a_meta_bid_cap_is_held_to_the_bid_cap_limits_not_the_cpc_ceiling() -> None:
    # Meta, bid strategies: under BID_CAP, bid_amount caps the bid per optimization event (e.g. a purchase),
    # not a click (https://developers.facebook.com/docs/marketing-api/bidding/overview/bid-strategy/).
    ad_set = entity(
        EntityKind.AD_GROUP,
        "115",
        Platform.META,
        parent_id="7",
        campaign_id="7",
        daily_budget_micros=100 * USD,
        cpc_bid_micros=40 * USD,
        bidding_strategy=BiddingStrategy.BID_CAP,
    )
    snap = snapshot(entity(EntityKind.CAMPAIGN, "7", Platform.META), ad_set, platform=Platform.META)
    raise_cap = bid("115", 40 * USD, 44 * USD, EntityKind.AD_GROUP, platform=Platform.META)
    [d] = judge(snap, raise_cap)  # 44 USD is above the 20 USD CPC ceiling, but a bid cap is not a CPC
    assert d.verdict is Verdict.ALLOWED
    assert "bid_cap_limits" in d.checks_passed
    [d] = judge(snap, raise_cap, limits=GuardrailLimits(bid_cap_ceiling_micros=42 * USD))
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "bid_cap_limits", 42 * USD)


def test_an_amazon_bid_ceiling_holds_the_bid_times_the_largest_multiplier() -> None:
    # python-amazon-ad-api 1.2.9, ad_api/api/sp/bid_recommendations_v3.py: placement adjustment
    # "percentage (integer) maximum: 900 minimum: 0" -> a top-of-search bid can be 10x the keyword's bid.
    campaign = entity(EntityKind.CAMPAIGN, "c1", Platform.AMAZON_ADS, daily_budget_micros=100 * USD)
    campaign = campaign.model_copy(update={"bid_multiplier_max": 10.0})
    keyword = entity(
        EntityKind.KEYWORD, "k1", Platform.AMAZON_ADS, parent_id="g1", campaign_id="c1", cpc_bid_micros=1_900_000
    )
    snap = snapshot(campaign, keyword, platform=Platform.AMAZON_ADS)
    [d] = judge(snap, bid("k1", 1_900_000, 2_100_000, platform=Platform.AMAZON_ADS))
    # 20 USD ceiling / 10x = 2 USD: the most the platform may then pay for a click is the ceiling.
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "bid_limits", 2 * USD)
    assert "10x" in d.message


# -- targets only where the strategy uses them -------------------------------------------------------------


def test_a_roas_target_on_a_target_roas_campaign_within_the_limits_is_allowed() -> None:
    [d] = judge(google_account(), roas("c1", 30_000, 28_000))
    assert d.verdict is Verdict.ALLOWED, d.message
    assert {"target_not_used_by_strategy", "insufficient_data", "target_learning_period"} <= set(d.checks_passed)
    assert "ROAS 3.00 (300 %) to ROAS 2.80 (280 %)" in d.message


def test_a_roas_target_on_a_strategy_without_one_is_blocked() -> None:
    [d] = judge(google_account(BiddingStrategy.TARGET_CPA, target_roas_bps=30_000), roas("c1", 30_000, 28_000))
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "target_not_used_by_strategy")


def test_a_cpa_target_on_a_roas_strategy_is_blocked() -> None:
    [d] = judge(google_account(target_cpa_micros=20 * USD), cpa("c1", 20 * USD, 22 * USD))
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "target_not_used_by_strategy")


def test_a_target_on_a_campaign_that_follows_a_portfolio_strategy_is_blocked_in_favour_of_the_portfolio() -> None:
    # Google Ads API v26 ad_group.proto, target_roas: "If the campaign is using a portfolio bidding strategy,
    # this field cannot be set and attempting to do so will result in an error."
    # (https://developers.google.com/google-ads/api/reference/rpc/v26/AdGroup)
    snap = google_account(bidding_strategy_id="555")
    portfolio = entity(
        EntityKind.BIDDING_STRATEGY, "555", bidding_strategy=BiddingStrategy.TARGET_ROAS, target_roas_bps=30_000
    )
    snap = snap.model_copy(update={"entities": [*snap.entities, portfolio]})
    g1 = next(e for e in snap.entities if e.ref.entity_id == "g1")
    snap.entities[snap.entities.index(g1)] = g1.model_copy(update={"target_roas_bps": 30_000})
    on_campaign, on_ad_group, on_portfolio = judge(
        snap,
        roas("c1", 30_000, 28_000),
        roas("g1", 30_000, 28_000, EntityKind.AD_GROUP),
        roas("555", 30_000, 28_000, EntityKind.BIDDING_STRATEGY),
    )
    assert (on_campaign.rule_id, on_ad_group.rule_id) == ("target_not_used_by_strategy",) * 2
    assert "bidding_strategy" in on_campaign.message and "555" in on_campaign.message
    assert on_portfolio.verdict is Verdict.ALLOWED, on_portfolio.message


def test_a_portfolio_without_numbers_of_its_own_is_judged_on_the_campaigns_that_follow_it() -> None:
    portfolio = entity(EntityKind.BIDDING_STRATEGY, "555", daily_history=[])
    member = entity(EntityKind.CAMPAIGN, "c1", bidding_strategy_id="555")
    stranger = entity(EntityKind.CAMPAIGN, "c2")
    index = {(e.ref.kind.value, e.ref.entity_id): e for e in (portfolio, member, stranger)}
    ev = evidence_of(portfolio, index)
    assert (ev.clicks, ev.cost_micros, ev.days) == (14 * 20, 14 * 10 * USD, 14)


# -- target limits -----------------------------------------------------------------------------------------


def test_a_target_change_above_15_percent_is_clipped_to_15_percent() -> None:
    # Search Ads 360 help: a bid strategy enters learning when "The specified CPA, ERS, or ROAS target changed
    # by more than 30%" (https://support.google.com/searchads/answer/7315940); the default stays at half that.
    [d] = judge(google_account(), roas("c1", 30_000, 20_000))
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "max_change", 25_500)
    assert "ROAS 2.55 (255 %)" in d.message
    [d] = judge(google_account(BiddingStrategy.TARGET_CPA), cpa("c1", 20 * USD, 30 * USD))
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "max_change", 23 * USD)


def test_a_target_change_is_held_to_what_is_left_of_its_daily_allowance() -> None:
    key = ref(EntityKind.CAMPAIGN, "c1").key
    [d] = judge(google_account(), roas("c1", 30_000, 27_000), target_changes_today_pct={key: 10.0})
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "max_daily_change", 28_500)
    # Budget and bid changes today do not use up the target's allowance.
    [d] = judge(google_account(), roas("c1", 30_000, 27_000), changes_today_pct={key: 50.0})
    assert d.verdict is Verdict.ALLOWED


def test_targets_stay_within_their_floors_and_ceilings() -> None:
    limits = GuardrailLimits(target_roas_floor_bps=29_000, target_cpa_ceiling_micros=21 * USD)
    [d] = judge(google_account(), roas("c1", 30_000, 28_000), limits=limits)
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "target_limits", 29_000)
    [d] = judge(google_account(BiddingStrategy.TARGET_CPA), cpa("c1", 20 * USD, 22 * USD), limits=limits)
    assert (d.verdict, d.rule_id, d.final_action.new_value) == (Verdict.CLIPPED, "target_limits", 21 * USD)


def test_target_limits_can_be_set_per_campaign_and_unknown_keys_are_still_an_error() -> None:
    limits = GuardrailLimits.model_validate(
        {"accounts": {ACCOUNT: {"campaigns": {"c1": {"target_max_change_pct": 5}}}}}
    )
    [d] = judge(google_account(), roas("c1", 30_000, 28_000), limits=limits)
    assert (d.rule_id, d.final_action.new_value) == ("max_change", 28_500)
    with pytest.raises(ValidationError):
        GuardrailLimits.model_validate({"target_max_chnge_pct": 5})
    with pytest.raises(ValidationError):
        GuardrailLimits(target_roas_floor_bps=50_000, target_roas_ceiling_bps=40_000)


def test_a_target_change_within_the_learning_period_of_the_last_one_is_blocked() -> None:
    # Google Ads help, "Duration of the learning period": "It can take (up to 2–3 conversion cycles) for the bid
    # strategy to calibrate to the new objective" (https://support.google.com/google-ads/answer/13020501);
    # Search Ads 360 help: "it may take about a week for the bid strategy to recalibrate"
    # (https://support.google.com/searchads/answer/7315940).
    key = ref(EntityKind.CAMPAIGN, "c1").key
    three_days_ago = {key: [NOW - timedelta(days=3)]}
    [d] = judge(google_account(), roas("c1", 30_000, 28_000), target_changes=three_days_ago)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "target_learning_period")
    [d] = judge(google_account(), roas("c1", 30_000, 28_000), target_changes={key: [NOW - timedelta(days=8)]})
    assert d.verdict is Verdict.ALLOWED
    [d] = judge(
        google_account(),
        roas("c1", 30_000, 28_000),
        target_changes=three_days_ago,
        limits=GuardrailLimits(target_cooldown_days=2),
    )
    assert d.verdict is Verdict.ALLOWED
    # A budget change of the same campaign does not wait for the target's learning period.
    [d] = judge(google_account(), budget("c1", 100 * USD, 90 * USD), target_changes=three_days_ago)
    assert d.verdict is Verdict.ALLOWED


def test_a_target_change_that_loosens_delivery_beyond_the_threshold_needs_approval() -> None:
    limits = GuardrailLimits(target_approval_above_pct=5)
    loosen, tighten = judge(google_account(), roas("c1", 30_000, 28_000), limits=limits) + judge(
        google_account(), roas("c1", 30_000, 32_000), limits=limits
    )
    assert (loosen.verdict, loosen.rule_id) == (Verdict.NEEDS_APPROVAL, "approval_threshold")
    assert tighten.verdict is Verdict.ALLOWED
    # A CPA target raised by more money than may go without a person needs approval, as a bid does.
    [d] = judge(
        google_account(BiddingStrategy.TARGET_CPA),
        cpa("c1", 20 * USD, 22 * USD),
        limits=GuardrailLimits(approval_above_micros=USD),
    )
    assert (d.verdict, d.rule_id) == (Verdict.NEEDS_APPROVAL, "approval_threshold")


def test_target_changes_are_read_from_the_ledger_apart_from_budget_and_bid_changes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        store.start_run("r0", mode="live", trigger="cli", accounts=[ACCOUNT])
        key = ref(EntityKind.CAMPAIGN, "c1").key
        older = roas("c1", 32_000, 30_000)
        today = roas("c1", 30_000, 28_000).model_copy(update={"action_id": "roas-today"})
        spend = budget("c1", 100 * USD, 110 * USD)
        store.add_actions(
            "r0",
            [
                {
                    "action_id": a.action_id,
                    "account_id": ACCOUNT,
                    "agent": a.agent.value,
                    "kind": a.kind,
                    "entity_key": key,
                    "payload": ACTION_ADAPTER.dump_python(a, mode="json"),
                }
                for a in (older, today, spend)
            ],
        )
        rows = [
            (older, NOW - timedelta(days=5)),
            (today, NOW - timedelta(hours=1)),
            (spend, NOW - timedelta(hours=2)),
        ]
        ids = store.record_write_intents(
            "r0",
            [
                {
                    "action_id": a.action_id,
                    "account_id": ACCOUNT,
                    "entity_key": key,
                    "before_value": str(a.old_value),
                    "after_value": str(a.new_value),
                    "payload": ACTION_ADAPTER.dump_python(a, mode="json"),
                    "effective_at": at,
                }
                for a, at in rows
            ],
        )
        store.record_write_outcomes(
            [{"id": ids[a.action_id], "status": "applied", "message": "", "attempts": 1} for a, _ in rows]
        )
        history = history_from_ledger(store, [key], now=NOW)
    finally:
        store.dispose()
    assert sorted(history["target_changes"][key]) == [NOW - timedelta(days=5), NOW - timedelta(hours=1)]
    assert history["target_changes_today_pct"][key] == pytest.approx(2_000 * 100 / 30_000)
    assert history["changes_today_pct"][key] == pytest.approx(10.0)  # the budget change only
    assert history["changes_today_micros"][key] == 10 * USD


# -- delivery ----------------------------------------------------------------------------------------------


def meta_account(campaign_status: Status = Status.ENABLED, **ad_set: Any) -> Snapshot:
    ad_set_state = entity(
        EntityKind.AD_GROUP,
        "115",
        Platform.META,
        parent_id="7",
        campaign_id="7",
        daily_budget_micros=100 * USD,
        **ad_set,
    )
    creative = entity(
        EntityKind.CREATIVE,
        "ad9",
        Platform.META,
        parent_id="115",
        campaign_id="7",
        status=Status.PAUSED,
        delivery_blocked_by="DISAPPROVED",
        text="Shoes",
    )
    return snapshot(
        entity(EntityKind.CAMPAIGN, "7", Platform.META, status=campaign_status),
        ad_set_state,
        creative,
        platform=Platform.META,
    )


def test_enabling_a_disapproved_creative_is_blocked() -> None:
    # Meta effective status "reflects whether an object is actually delivering, taking into account its own
    # status and the status of its parents"; values include DISAPPROVED
    # (https://developers.facebook.com/documentation/ads-commerce/marketing-api/ads-webhooks/effective-status).
    enable = EnableCreative(
        action_id="en-ad9",
        entity=ref(EntityKind.CREATIVE, "ad9", Platform.META),
        agent=AgentName.CREATIVE_ROTATION,
        reason="rested",
        old_status=Status.PAUSED,
    )
    [d] = judge(meta_account(), enable)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "not_delivering")
    assert "DISAPPROVED" in d.message


def test_a_budget_under_a_paused_campaign_is_blocked_because_it_buys_nothing() -> None:
    cut = budget("115", 100 * USD, 90 * USD, EntityKind.AD_GROUP, platform=Platform.META)
    [d] = judge(meta_account(Status.PAUSED), cut)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "not_delivering")
    assert "CAMPAIGN_PAUSED" in d.message
    # The client's own word (effective_status CAMPAIGN_PAUSED) is enough without the parent in view.
    [d] = judge(meta_account(delivery_blocked_by="CAMPAIGN_PAUSED"), cut)
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "not_delivering")
    [d] = judge(meta_account(), cut)
    assert d.verdict is Verdict.ALLOWED


def test_a_keyword_bid_under_a_paused_ad_group_is_blocked() -> None:
    snap = google_account(BiddingStrategy.MANUAL_CPC)
    g1 = next(e for e in snap.entities if e.ref.entity_id == "g1")
    snap.entities[snap.entities.index(g1)] = g1.model_copy(update={"status": Status.PAUSED})
    [d] = judge(snap, bid("k1", USD, 1_100_000))
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "not_delivering")
    assert "AD_GROUP_PAUSED" in d.message


# -- evidence ----------------------------------------------------------------------------------------------


def test_a_holder_without_enough_data_gets_no_budget_change_in_either_direction() -> None:
    quiet = google_account(BiddingStrategy.MANUAL_CPC)
    c1 = quiet.entities[0].model_copy(update={"daily_history": [Metrics(clicks=1, cost_micros=USD)] * 14})
    quiet = quiet.model_copy(update={"entities": [c1, *quiet.entities[1:]]})
    for action in (budget("c1", 100 * USD, 90 * USD), budget("c1", 100 * USD, 110 * USD)):
        [d] = judge(quiet, action, limits=GuardrailLimits(allow_total_budget_increase=True))
        assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "insufficient_data"), action
        assert "14 clicks" in d.message and "30 clicks" in d.message


def test_the_evidence_thresholds_are_configurable() -> None:
    young = [Metrics()] * 10 + [Metrics(impressions=500, clicks=10, cost_micros=5 * USD)] * 4
    snap = google_account(BiddingStrategy.MANUAL_CPC)
    c1 = snap.entities[0].model_copy(update={"daily_history": young})
    snap = snap.model_copy(update={"entities": [c1, *snap.entities[1:]]})
    cut = budget("c1", 100 * USD, 90 * USD)
    [d] = judge(snap, cut)
    assert d.rule_id == "insufficient_data" and "4 days of data" in d.message
    [d] = judge(snap, cut, limits=GuardrailLimits(min_days_of_data=4))
    assert d.verdict is Verdict.ALLOWED


def test_a_keyword_bid_rests_on_the_keywords_own_clicks_not_its_campaigns() -> None:
    snap = google_account(BiddingStrategy.MANUAL_CPC)
    k1 = snap.entities[2].model_copy(update={"daily_history": [], "trailing_7d": Metrics(clicks=3, cost_micros=USD)})
    snap = snap.model_copy(update={"entities": [*snap.entities[:2], k1]})
    [d] = judge(snap, bid("k1", USD, 1_100_000))
    assert (d.verdict, d.rule_id) == (Verdict.BLOCKED, "insufficient_data")
    # With its own clicks, a keyword without per-day history (Google) takes its campaign's age.
    busy = k1.model_copy(update={"trailing_7d": Metrics(clicks=300, cost_micros=50 * USD)})
    snap = snap.model_copy(update={"entities": [*snap.entities[:2], busy]})
    [d] = judge(snap, bid("k1", USD, 1_100_000))
    assert d.verdict is Verdict.ALLOWED


def test_new_keywords_are_not_held_to_evidence() -> None:
    snap = google_account(BiddingStrategy.MANUAL_CPC)
    g1 = snap.entities[1].model_copy(update={"daily_history": []})
    snap = snap.model_copy(update={"entities": [snap.entities[0], g1, snap.entities[2]]})
    add = AddKeyword(
        action_id="kw",
        entity=ref(EntityKind.AD_GROUP, "g1"),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="converting search term",
        text="trail running shoes",
        cpc_bid_micros=USD,
    )
    [d] = judge(snap, add)
    assert d.verdict is Verdict.ALLOWED


def test_an_account_that_reports_nothing_gets_no_change_and_a_note_saying_why() -> None:
    silent = snapshot(
        entity(EntityKind.CAMPAIGN, "c1", daily_budget_micros=100 * USD, daily_history=[Metrics()] * 14),
    )
    action = budget("c1", 100 * USD, 90 * USD)
    decisions = judge(silent, action)
    assert decisions[0].rule_id == "insufficient_data"
    report = build_report(
        run_id="r",
        mode="dry-run",
        trigger="cli",
        status="completed",
        snapshots={ACCOUNT: silent},
        actions=[action],
        decisions=decisions,
        results=[],
    )
    assert any("reports no impressions, clicks or spend" in n for n in report.notes)


# -- rollback and reports --------------------------------------------------------------------------------


def test_a_rollback_restores_a_target_past_the_change_limits_and_the_learning_period(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'rollback.sqlite'}")
    try:
        store.start_run("r1", mode="live", trigger="cli", accounts=[ACCOUNT])
        key = ref(EntityKind.CAMPAIGN, "c1").key
        changed = roas("c1", 40_000, 30_000)
        ids = store.record_write_intents(
            "r1",
            [
                {
                    "action_id": changed.action_id,
                    "account_id": ACCOUNT,
                    "entity_key": key,
                    "before_value": "40000",
                    "after_value": "30000",
                    "payload": ACTION_ADAPTER.dump_python(changed, mode="json"),
                    "effective_at": NOW - timedelta(hours=1),
                }
            ],
        )
        store.record_write_outcomes([{"id": ids[changed.action_id], "status": "applied", "message": "", "attempts": 1}])
        snap = google_account()  # the campaign now has a ROAS target of 3.0
        plan = plan_rollback(store, "r1", {ACCOUNT: snap})
    finally:
        store.dispose()
    [restore] = plan.actions
    assert isinstance(restore, SetTargetRoas)
    assert (restore.old_target_roas_bps, restore.new_target_roas_bps) == (30_000, 40_000)
    [d] = judge(
        snap,
        restore,
        actor="rollback",
        rollback_before_values=plan.before_values,
        target_changes={key: [NOW - timedelta(hours=1)]},
    )
    assert d.verdict is Verdict.ALLOWED, d.message
    assert "rollback_restore" in d.checks_passed


def test_reports_show_a_roas_target_as_a_roas_and_a_cpa_target_as_money() -> None:
    snap = google_account()
    actions = [roas("c1", 30_000, 28_000), cpa("c1", 20 * USD, 22 * USD)]
    report = build_report(
        run_id="r",
        mode="dry-run",
        trigger="cli",
        status="completed",
        snapshots={ACCOUNT: snap},
        actions=actions,
        decisions=judge(snap, *actions),
        results=[],
    )
    roas_line, cpa_line = report.actions
    assert (roas_line.old_value, roas_line.final_value) == ("ROAS 3.00 (300 %)", "ROAS 2.80 (280 %)")
    assert cpa_line.old_value is not None and "20.00" in cpa_line.old_value


def test_the_chat_plan_names_each_target_change_with_its_roas() -> None:
    snap = google_account()
    action = roas("c1", 30_000, 28_000)
    report = build_report(
        run_id="r",
        mode="dry-run",
        trigger="chat",
        status="completed",
        snapshots={ACCOUNT: snap},
        actions=[action],
        decisions=judge(snap, action),
        results=[],
    )
    plan = [PlanLine.from_action_line(line) for line in report.actions]
    intent = OperatorIntent(intents=[IntentKind.LOWER_BIDS])
    summary = _plan_summary(intent, report, plan, live=False, what_if=False)
    assert "Smart Bidding targets: c1 c1 (ROAS 3.00 (300 %) → ROAS 2.80 (280 %))." in summary
