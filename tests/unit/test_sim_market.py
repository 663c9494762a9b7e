"""Specification of the entity-level simulated market and its fixtures (bidloop.tools.sim.market/fixtures)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bidloop.core.actions import (
    AddKeyword,
    AddNegativeKeyword,
    AgentName,
    EnableCreative,
    PauseCreative,
    SetBid,
    SetBudget,
)
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import BudgetPeriod, EntityKind, EntityRef, MatchType, Platform, Status
from bidloop.core.errors import InputError
from bidloop.tools.sim import SimClient, SimMarket, default_market, generated_market
from bidloop.tools.sim.market import _KINDS

P = 6


@pytest.fixture(scope="module")
def base() -> SimMarket:
    return default_market()


@pytest.fixture
def market(base: SimMarket) -> SimMarket:
    return base.clone()


def _ref(platform: Platform, account: str, kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=platform, account_id=account, kind=kind, entity_id=entity_id)


def _meta(entity_id: str, kind: EntityKind = EntityKind.AD_GROUP) -> EntityRef:
    return _ref(Platform.META, "sim-meta", kind, entity_id)


def _google(entity_id: str, kind: EntityKind) -> EntityRef:
    return _ref(Platform.GOOGLE_ADS, "sim-google", kind, entity_id)


def _set_budget(ref: EntityRef, micros: int) -> SetBudget:
    return SetBudget(
        action_id=f"budget-{ref.entity_id}-{micros}",
        entity=ref,
        agent=AgentName.OPERATOR,
        reason="test",
        old_daily_budget_micros=0,
        new_daily_budget_micros=micros,
    )


def _set_bid(ref: EntityRef, micros: int) -> SetBid:
    return SetBid(
        action_id=f"bid-{ref.entity_id}-{micros}",
        entity=ref,
        agent=AgentName.BID_SHIFTER,
        reason="test",
        old_cpc_bid_micros=0,
        new_cpc_bid_micros=micros,
    )


def _apply(market: SimMarket, action) -> None:
    result = market.apply_action(action)
    assert result.status is WriteStatus.APPLIED, result.message


def _by_id(market: SimMarket, account: str, kind: EntityKind):
    return SimClient(market).read_snapshot(account).by_id(kind)


def _day_total(market: SimMarket, account: str, kind: EntityKind, entity_id: str, field: str, days: int) -> float:
    """Play `days` full days from the next day boundary; return the total of one reported field over them."""
    to_boundary = (-market.step) % P
    market.advance(to_boundary)
    total = 0.0
    for _ in range(days):
        market.advance(P)
        state = _by_id(market, account, kind)[entity_id]
        total += getattr(state.daily_history[-1], field)
    return total


# ---------------------------------------------------------------- determinism and persistence


def test_same_seed_gives_identical_bytes_and_a_different_seed_differs(base: SimMarket) -> None:
    assert default_market().to_bytes() == base.to_bytes()
    assert default_market(seed=8).to_bytes() != base.to_bytes()


def test_same_calls_give_identical_bytes(base: SimMarket) -> None:
    a, b = base.clone(), base.clone()
    for m in (a, b):
        _apply(m, _set_budget(_meta("117"), 500_000_000))
        m.advance(9)
    assert a.to_bytes() == b.to_bytes()


def test_bytes_round_trip_restores_a_market_that_continues_identically(market: SimMarket) -> None:
    restored = SimMarket.from_bytes(market.to_bytes())
    assert restored.to_bytes() == market.to_bytes()
    market.advance(8)
    restored.advance(8)
    assert restored.to_bytes() == market.to_bytes()
    np.testing.assert_array_equal(restored.true_ledger().expected_value, market.true_ledger().expected_value)


def test_from_bytes_refuses_data_that_is_not_a_market() -> None:
    with pytest.raises(InputError):
        SimMarket.from_bytes(b"not a zip file")


def test_clone_is_independent_of_its_original(market: SimMarket) -> None:
    before = market.to_bytes()
    copy = market.clone()
    _apply(copy, _set_budget(_meta("117"), 10_000_000))
    copy.advance(3)
    assert market.to_bytes() == before


def test_the_exogenous_path_is_the_same_whatever_the_actions(market: SimMarket) -> None:
    other = market.clone()
    _apply(other, _set_budget(_meta("124"), 900_000_000))
    _apply(other, _set_bid(_meta("117"), 5_000_000))
    market.advance(7)
    other.advance(7)
    a, b = market.exo_path_ahead(12), other.exo_path_ahead(12)
    np.testing.assert_array_equal(a.kappa, b.kappa)
    np.testing.assert_array_equal(a.beta, b.beta)


def test_expected_rollout_sees_exactly_the_path_the_market_then_realises(market: SimMarket) -> None:
    before = market.clone()
    untouched = before.to_bytes()
    start = len(market.true_ledger().step)
    market.advance(10)
    ledger = market.true_ledger()
    predicted = before.expected_rollout(10, planned_spend=ledger.planned_spend[start:])
    assert before.to_bytes() == untouched, "peeking at the future changes nothing"
    # Spend depends only on the plan, the bids and the exogenous path: it must match exactly.
    np.testing.assert_allclose(predicted.spend, ledger.expected_spend[start:], rtol=1e-12)
    # Value also depends on creative rotation, which the rollout holds at its starting point.
    np.testing.assert_allclose(predicted.value.sum(), ledger.expected_value[start:].sum(), rtol=0.02)


# ---------------------------------------------------------------- money and hierarchy


_PARENT_KIND = {
    EntityKind.CAMPAIGN: EntityKind.ACCOUNT,
    EntityKind.AD_GROUP: EntityKind.CAMPAIGN,
    EntityKind.KEYWORD: EntityKind.AD_GROUP,
    EntityKind.CREATIVE: EntityKind.AD_GROUP,
    EntityKind.SEARCH_TERM: EntityKind.KEYWORD,
}


@pytest.mark.parametrize("account", ["sim-google", "sim-meta", "sim-amazon"])
def test_children_cost_sums_exactly_to_the_parent_in_integer_micros(market: SimMarket, account: str) -> None:
    market.advance(P + 3)
    snapshot = SimClient(market).read_snapshot(account)
    states = {(e.ref.kind, e.ref.entity_id): e for e in snapshot.entities}
    # Children of one parent, grouped by kind (an ad group's keywords and its creatives each add up).
    families: dict[tuple[EntityKind, str, EntityKind], list] = {}
    for e in snapshot.entities:
        if e.parent_id is not None:
            families.setdefault((_PARENT_KIND[e.ref.kind], e.parent_id, e.ref.kind), []).append(e)
    assert len(families) > 3
    for (parent_kind, parent_id, _), kids in families.items():
        parent = states[(parent_kind, parent_id)]
        for window in ("today", "trailing_7d"):
            total = sum(getattr(kid, window).cost_micros for kid in kids)
            assert type(total) is int
            assert total == getattr(parent, window).cost_micros, (parent_id, window)
        if kids[0].daily_history and parent.daily_history:
            for day, parent_day in enumerate(parent.daily_history):
                assert sum(k.daily_history[day].cost_micros for k in kids) == parent_day.cost_micros


def test_spend_never_exceeds_the_daily_budget(market: SimMarket) -> None:
    market.advance(3 * P)
    for account in ("sim-google", "sim-meta", "sim-amazon"):
        for holder in SimClient(market).read_snapshot(account).budget_holders():
            if holder.budget_period is BudgetPeriod.LIFETIME:
                continue  # a lifetime budget's daily equivalent moves from day to day (see the lifetime tests)
            for day in holder.daily_history:
                assert day.cost_micros <= holder.daily_budget_micros


# ---------------------------------------------------------------- dynamics


def test_more_budget_means_more_spend_and_less_means_less(market: SimMarket) -> None:
    ref = _google("21000102", EntityKind.CAMPAIGN)  # budget-limited: volume headroom 1.8
    more, less = market.clone(), market.clone()
    _apply(more, _set_budget(ref, 300_000_000))
    _apply(less, _set_budget(ref, 100_000_000))
    spend = {
        name: _day_total(m, "sim-google", EntityKind.CAMPAIGN, "21000102", "cost_micros", 2)
        for name, m in (("base", market), ("more", more), ("less", less))
    }
    assert spend["more"] > 1.2 * spend["base"]
    assert spend["less"] < 0.6 * spend["base"]
    assert spend["less"] <= 2 * 100_000_000


def test_raising_a_volume_limited_bid_buys_more_clicks_at_a_higher_cpc(market: SimMarket) -> None:
    lifted = market.clone()
    bid = _by_id(market, "sim-meta", EntityKind.AD_GROUP)["117"].cpc_bid_micros
    _apply(lifted, _set_bid(_meta("117"), int(bid * 1.6)))
    totals = {}
    for name, m in (("base", market), ("lifted", lifted)):
        clicks = _day_total(m, "sim-meta", EntityKind.AD_GROUP, "117", "clicks", 2)
        cost = sum(d.cost_micros for d in _by_id(m, "sim-meta", EntityKind.AD_GROUP)["117"].daily_history[-2:])
        totals[name] = (clicks, cost / clicks)
    assert totals["lifted"][0] > 1.2 * totals["base"][0]
    assert totals["lifted"][1] > 1.1 * totals["base"][1]


def test_a_keyword_bid_shifts_traffic_towards_that_keyword(market: SimMarket) -> None:
    kw, sibling = "31000202", "31000201"  # "marathon trainers" shares its ad group with "running shoes"
    state = _by_id(market, "sim-google", EntityKind.KEYWORD)[kw]
    lifted = market.clone()
    _apply(lifted, _set_bid(_google(kw, EntityKind.KEYWORD), state.cpc_bid_micros * 2))
    shares = {}
    for name, m in (("base", market), ("lifted", lifted)):
        m.advance(P + 3)  # to the last daypart of the next day: five dayparts of today
        kws = _by_id(m, "sim-google", EntityKind.KEYWORD)
        shares[name] = kws[kw].today.clicks / (kws[kw].today.clicks + kws[sibling].today.clicks)
    assert shares["lifted"] > 1.2 * shares["base"]


def test_fatigue_lowers_a_creatives_ctr_and_rest_restores_it() -> None:
    market = generated_market(40, seed=2, platform=Platform.META, family="fatigue_heavy", warmup_days=0)
    snapshot = SimClient(market).read_snapshot("sim-gen")
    ad_set = snapshot.of_kind(EntityKind.AD_GROUP)[0]
    creatives = [c for c in snapshot.of_kind(EntityKind.CREATIVE) if c.parent_id == ad_set.ref.entity_id]
    star, others = creatives[0], creatives[1:]
    for other in others:
        _apply(
            market,
            PauseCreative(
                action_id=f"p{other.ref.entity_id}",
                entity=other.ref,
                agent=AgentName.CREATIVE_ROTATION,
                reason="t",
                old_status=Status.ENABLED,
            ),
        )
    _apply(market, _set_budget(ad_set.ref, 3 * ad_set.daily_budget_micros))

    def ctr_of_last_day(c_id: str) -> float:
        state = SimClient(market).read_snapshot("sim-gen").by_id(EntityKind.CREATIVE)[c_id]
        return state.daily_history[-1].ctr or 0.0

    truth = market.truth_of_creatives
    market.advance(P)
    first_ctr, first_factor = ctr_of_last_day(star.ref.entity_id), truth()[("sim-gen", star.ref.entity_id)]
    market.advance(13 * P)
    tired_ctr, tired_factor = ctr_of_last_day(star.ref.entity_id), truth()[("sim-gen", star.ref.entity_id)]
    assert tired_factor < 0.9 * first_factor
    assert tired_ctr < 0.92 * first_ctr

    # Rest the tired creative for three days behind a fresh one, then bring it back alone.
    _apply(
        market,
        EnableCreative(
            action_id="e1",
            entity=others[0].ref,
            agent=AgentName.CREATIVE_ROTATION,
            reason="t",
            old_status=Status.PAUSED,
        ),
    )
    _apply(
        market,
        PauseCreative(
            action_id="p-star",
            entity=star.ref,
            agent=AgentName.CREATIVE_ROTATION,
            reason="t",
            old_status=Status.ENABLED,
        ),
    )
    market.advance(3 * P)
    assert truth()[("sim-gen", star.ref.entity_id)] > 0.97
    _apply(
        market,
        EnableCreative(
            action_id="e-star", entity=star.ref, agent=AgentName.CREATIVE_ROTATION, reason="t", old_status=Status.PAUSED
        ),
    )
    _apply(
        market,
        PauseCreative(
            action_id="p1",
            entity=others[0].ref,
            agent=AgentName.CREATIVE_ROTATION,
            reason="t",
            old_status=Status.ENABLED,
        ),
    )
    market.advance(P)
    assert ctr_of_last_day(star.ref.entity_id) > tired_ctr * 1.05


def test_reported_conversions_lag_the_truth() -> None:
    market = generated_market(1_000, seed=3, warmup_days=0)
    market.advance(P + 3)
    realised = market.true_ledger().conversions.sum()
    account = SimClient(market).read_snapshot("sim-gen").entities[0]
    reported = account.trailing_7d.conversions + account.today.conversions
    assert realised > 50
    assert 0 < reported < 0.75 * realised
    # Stop all spend: conversions of the past keep arriving.
    for holder in SimClient(market).read_snapshot("sim-gen").budget_holders():
        _apply(market, _set_budget(holder.ref, 0))
    market.advance(2 * P)
    holders = SimClient(market).read_snapshot("sim-gen").budget_holders()
    assert sum(h.daily_history[-1].cost_micros for h in holders) == 0
    assert sum(h.daily_history[-1].conversions for h in holders) > 0


def test_a_negative_keyword_stops_that_search_terms_spend(market: SimMarket) -> None:
    term = "free running shoes"
    negated = market.clone()
    result = negated.apply_action(
        AddNegativeKeyword(
            action_id="neg",
            entity=_google("14100201", EntityKind.AD_GROUP),
            agent=AgentName.KEYWORD_INSIGHT,
            reason="waste",
            text="free",
            match_type=MatchType.BROAD,
        )
    )
    assert result.status is WriteStatus.APPLIED and "1 search term" in result.message
    market.advance(2 * P)
    negated.advance(2 * P)
    terms = _by_id(negated, "sim-google", EntityKind.SEARCH_TERM)
    assert _by_id(market, "sim-google", EntityKind.SEARCH_TERM)[term].today.cost_micros > 0
    assert terms[term].today.cost_micros == 0
    assert terms["running shoes"].today.cost_micros > 0


def test_waste_search_terms_spend_but_never_convert(base: SimMarket) -> None:
    terms = _by_id(base, "sim-google", EntityKind.SEARCH_TERM)
    for text in ("free running shoes", "running shoes jobs", "diy running shoe repair"):
        assert terms[text].trailing_7d.cost_micros > 0
        assert terms[text].trailing_7d.conversions == pytest.approx(0.0, abs=1e-6)
    assert terms["best running shoes for flat feet"].trailing_7d.roas > terms["running shoes"].trailing_7d.roas


def test_add_keyword_takes_over_the_matching_search_terms_traffic(market: SimMarket) -> None:
    action = AddKeyword(
        action_id="kw",
        entity=_google("14100201", EntityKind.AD_GROUP),
        agent=AgentName.KEYWORD_INSIGHT,
        reason="converts",
        text="running shoes men size 11",
        match_type=MatchType.EXACT,
        cpc_bid_micros=1_500_000,
    )
    result = market.apply_action(action)
    assert result.status is WriteStatus.APPLIED
    market.advance(P)
    snapshot = SimClient(market).read_snapshot("sim-google")
    new = [k for k in snapshot.of_kind(EntityKind.KEYWORD) if k.text == "running shoes men size 11"]
    assert len(new) == 1 and new[0].match_type is MatchType.EXACT and new[0].cpc_bid_micros == 1_500_000
    term = snapshot.by_id(EntityKind.SEARCH_TERM)["running shoes men size 11"]
    assert term.parent_id == new[0].ref.entity_id
    assert new[0].today.cost_micros == term.today.cost_micros > 0
    again = market.apply_action(action)
    assert again.status is WriteStatus.APPLIED and "already exists" in again.message


def test_changes_take_effect_from_the_next_daypart_only(market: SimMarket) -> None:
    before = market.true_ledger()
    _apply(market, _set_budget(_meta("115"), 0))
    after = market.true_ledger()
    np.testing.assert_array_equal(before.spend, after.spend)
    market.advance(1)
    holder = [h for _, h in market.holder_entity_ids()].index("115")
    assert market.true_ledger().spend[-1, holder] == 0.0


def test_paused_creatives_get_no_traffic(market: SimMarket) -> None:
    ref = _meta("115001", EntityKind.CREATIVE)
    _apply(
        market,
        PauseCreative(
            action_id="p", entity=ref, agent=AgentName.CREATIVE_ROTATION, reason="t", old_status=Status.ENABLED
        ),
    )
    market.advance(P)
    state = _by_id(market, "sim-meta", EntityKind.CREATIVE)["115001"]
    assert state.status is Status.PAUSED
    assert state.today.clicks == 0 and state.today.cost_micros == 0


def test_a_missing_target_or_a_wrong_kind_fails_without_raising(market: SimMarket) -> None:
    missing = market.apply_action(_set_budget(_meta("999"), 1_000_000))
    assert missing.status is WriteStatus.FAILED
    keyword_budget = market.apply_action(_set_budget(_google("31000101", EntityKind.KEYWORD), 1_000_000))
    assert keyword_budget.status is WriteStatus.FAILED and "budget" in keyword_budget.message


def test_validate_only_changes_nothing(market: SimMarket) -> None:
    before = market.to_bytes()
    result = market.apply_action(_set_budget(_meta("117"), 700_000_000), validate_only=True)
    assert result.status is WriteStatus.VALIDATED
    assert market.to_bytes() == before


# ---------------------------------------------------------------- fixtures


def test_default_market_is_fast_and_starts_mid_morning_after_two_weeks_of_history() -> None:
    started = time.perf_counter()
    market = default_market()
    assert time.perf_counter() - started < 1.0
    assert market.day == 14 and market.daypart == 2
    assert market.now.isoformat() == "2026-06-15T08:00:00+00:00"
    holders = SimClient(market).read_snapshot("sim-meta").budget_holders()
    assert all(len(h.daily_history) == 14 for h in holders)


def test_default_market_accounts_match_the_default_settings(base: SimMarket) -> None:
    from bidloop.core.settings import Settings

    configured = {(a.id, a.platform) for a in Settings().accounts}
    assert {(a.account_id, a.platform) for a in base.accounts()} == configured


def test_meta_ad_sets_117_and_124_are_the_clear_roas_leaders(base: SimMarket) -> None:
    all_sets = SimClient(base).read_snapshot("sim-meta").of_kind(EntityKind.AD_GROUP)
    assert {a.ref.entity_id for a in all_sets} == {str(i) for i in range(115, 130)}
    ad_sets = [a for a in all_sets if a.daily_budget_micros and a.is_delivering]  # budget holders that deliver
    roas = {a.ref.entity_id: a.trailing_7d.roas for a in ad_sets}
    ranked = sorted(roas, key=lambda k: roas[k], reverse=True)
    assert set(ranked[:2]) == {"117", "124"}
    assert min(roas["117"], roas["124"]) > 3.5
    assert min(roas["117"], roas["124"]) > 1.3 * roas[ranked[2]]
    assert sum(r < 1.5 for r in roas.values()) >= 2


def test_meta_spend_lags_its_pace_mid_morning(base: SimMarket) -> None:
    snapshot = SimClient(base).read_snapshot("sim-meta")
    expected = snapshot.expected_spend_fraction * snapshot.account_daily_budget_micros
    assert 0.1 < snapshot.expected_spend_fraction < 0.4
    assert snapshot.totals_today().cost_micros < expected
    delivering = [h for h in snapshot.budget_holders() if h.is_delivering]
    week = sum(h.trailing_7d.cost_micros for h in delivering)
    assert week < 0.85 * 7 * snapshot.account_daily_budget_micros
    leaders = snapshot.by_id(EntityKind.AD_GROUP)
    for leader in ("117", "124"):
        assert leaders[leader].trailing_7d.cost_micros < 0.6 * 7 * leaders[leader].daily_budget_micros


@pytest.mark.parametrize("n_entities", [100, 1_000])
def test_generated_market_has_about_the_requested_size(n_entities: int) -> None:
    market = generated_market(n_entities, seed=1, warmup_days=1)
    assert abs(market.n_entities - n_entities) <= 0.1 * n_entities
    kinds = {_KINDS[k] for k in np.unique(market._e["kind"])}
    assert kinds == set(EntityKind) - {EntityKind.BIDDING_STRATEGY}  # no portfolio strategies in the sim
