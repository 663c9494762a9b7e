"""The safe-action filter and its gate: what each rule lets through, clips, holds for approval or blocks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bidloop.core.actions import AgentName, EnableCreative, PauseCreative, SetBid, SetBudget
from bidloop.core.clearance import verify_clearance
from bidloop.core.decisions import Decision, Verdict
from bidloop.core.entities import EntityKind, EntityRef, EntityState, Platform, Status
from bidloop.core.errors import GuardrailError, UnfilteredActionError, WritesPausedError
from bidloop.core.limits import GuardrailLimits
from bidloop.core.metrics import Metrics
from bidloop.core.snapshot import Snapshot
from bidloop.guardrails import FilterContext, evaluate, gate, rules

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
USD = 1_000_000


def ref(
    kind: EntityKind, entity_id: str, account_id: str = "acct", platform: Platform = Platform.GOOGLE_ADS
) -> EntityRef:
    return EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)


HISTORY = [Metrics(impressions=1_000, clicks=20, cost_micros=10 * USD) for _ in range(14)]
"""Fourteen days of 20 clicks and 10 USD: enough evidence for any default `insufficient_data` threshold."""


def make_snapshot(account_id: str = "acct", platform: Platform = Platform.GOOGLE_ADS) -> Snapshot:
    """Three campaigns of 100/100/50 USD, two keywords at 1 USD, two creatives (one paused), with history."""
    entities = [
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "c1", account_id, platform), name="Brand", daily_budget_micros=100 * USD
        ),
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "c2", account_id, platform), name="Generic", daily_budget_micros=100 * USD
        ),
        EntityState(
            ref=ref(EntityKind.CAMPAIGN, "c3", account_id, platform), name="Promo", daily_budget_micros=50 * USD
        ),
        EntityState(
            ref=ref(EntityKind.AD_GROUP, "g1", account_id, platform), name="Shoes", parent_id="c1", campaign_id="c1"
        ),
        EntityState(
            ref=ref(EntityKind.KEYWORD, "k1", account_id, platform),
            name="running shoes",
            text="running shoes",
            parent_id="g1",
            campaign_id="c1",
            cpc_bid_micros=USD,
        ),
        EntityState(
            ref=ref(EntityKind.KEYWORD, "k2", account_id, platform),
            name="trail shoes",
            text="trail shoes",
            parent_id="g1",
            campaign_id="c1",
            cpc_bid_micros=USD,
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "ad1", account_id, platform),
            name="Ad 1",
            parent_id="g1",
            campaign_id="c1",
            text="Fast shoes",
        ),
        EntityState(
            ref=ref(EntityKind.CREATIVE, "ad2", account_id, platform),
            name="Ad 2",
            parent_id="g1",
            campaign_id="c1",
            status=Status.PAUSED,
            text="Comfy shoes",
        ),
    ]
    entities = [e.model_copy(update={"daily_history": list(HISTORY)}) for e in entities]
    return Snapshot(
        account_id=account_id,
        platform=platform,
        as_of=NOW,
        account_daily_budget_micros=250 * USD,
        entities=entities,
    )


def budget(entity_id: str, old: int, new: int, action_id: str | None = None, **kw: object) -> SetBudget:
    return SetBudget(
        action_id=action_id or f"b-{entity_id}-{new}",
        entity=ref(EntityKind.CAMPAIGN, entity_id, **kw),  # type: ignore[arg-type]
        agent=AgentName.BID_SHIFTER,
        reason="shift budget to the better ROAS",
        old_daily_budget_micros=old,
        new_daily_budget_micros=new,
    )


def bid(entity_id: str, old: int, new: int, action_id: str | None = None) -> SetBid:
    return SetBid(
        action_id=action_id or f"k-{entity_id}-{new}",
        entity=ref(EntityKind.KEYWORD, entity_id),
        agent=AgentName.BID_SHIFTER,
        reason="lift the bid",
        old_cpc_bid_micros=old,
        new_cpc_bid_micros=new,
    )


CTX = FilterContext(run_id="run-1", actor="cli", now=NOW)


def judge(*actions: object, limits: GuardrailLimits | None = None, context: FilterContext = CTX) -> list[Decision]:
    return evaluate(list(actions), {"acct": make_snapshot()}, limits or GuardrailLimits(), context=context)


# -- verdicts on single actions ------------------------------------------------------------------


def test_bid_change_within_every_limit_is_allowed_unchanged_with_the_checks_it_passed() -> None:
    action = bid("k1", USD, 1_100_000)
    [decision] = judge(action)
    assert decision.verdict is Verdict.ALLOWED
    assert decision.final_action == action
    assert decision.may_apply
    for rule_id in ("target_kind", "unknown_entity", "stale_value", "max_change", "bid_limits", "approval_threshold"):
        assert rule_id in decision.checks_passed


def test_budget_increase_above_max_change_is_clipped_to_the_limit_with_values_in_the_message() -> None:
    decision, _ = judge(budget("c1", 100 * USD, 150 * USD), budget("c2", 100 * USD, 80 * USD))
    assert decision.verdict is Verdict.CLIPPED
    assert decision.rule_id == "max_change"
    assert decision.final_action is not None
    assert decision.final_action.new_daily_budget_micros == 120 * USD
    assert "100.00 USD" in decision.message and "150.00 USD" in decision.message and "120.00 USD" in decision.message
    assert "20 %" in decision.message


def test_budget_decrease_beyond_max_change_is_clipped_to_the_limit() -> None:
    [decision] = judge(budget("c1", 100 * USD, 10 * USD))
    assert decision.verdict is Verdict.CLIPPED
    assert decision.final_action.new_daily_budget_micros == 80 * USD  # type: ignore[union-attr]


def test_configured_max_change_pct_is_used() -> None:
    [decision] = judge(budget("c1", 100 * USD, 90 * USD), limits=GuardrailLimits(max_change_pct=5))
    assert decision.final_action.new_daily_budget_micros == 95 * USD  # type: ignore[union-attr]


def test_bid_above_ceiling_is_clipped_to_ceiling() -> None:
    limits = GuardrailLimits(bid_ceiling_micros=1_050_000)
    [decision] = judge(bid("k1", USD, 1_150_000), limits=limits)
    assert decision.verdict is Verdict.CLIPPED
    assert decision.rule_id == "bid_limits"
    assert decision.final_action.new_cpc_bid_micros == 1_050_000  # type: ignore[union-attr]
    assert "1.05 USD" in decision.message


def test_bid_below_floor_is_clipped_to_floor() -> None:
    limits = GuardrailLimits(bid_floor_micros=900_000)
    [decision] = judge(bid("k1", USD, 850_000), limits=limits)
    assert decision.verdict is Verdict.CLIPPED
    assert decision.rule_id == "bid_limits"
    assert decision.final_action.new_cpc_bid_micros == 900_000  # type: ignore[union-attr]


def test_bid_already_at_ceiling_cannot_be_raised_and_is_blocked() -> None:
    limits = GuardrailLimits(bid_ceiling_micros=USD)
    [decision] = judge(bid("k1", USD, 1_100_000), limits=limits)
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "bid_limits"
    assert decision.final_action is None


def test_budget_below_platform_minimum_is_clipped_up_to_the_minimum() -> None:
    limits = GuardrailLimits(min_budget_micros={Platform.GOOGLE_ADS: 45 * USD})
    [decision] = judge(budget("c3", 50 * USD, 41 * USD), limits=limits)
    assert decision.verdict is Verdict.CLIPPED
    assert decision.rule_id == "platform_min_budget"
    assert decision.final_action.new_daily_budget_micros == 45 * USD  # type: ignore[union-attr]
    assert "minimum daily budget is 45.00 USD" in decision.message


def test_budget_decrease_from_the_platform_minimum_is_blocked() -> None:
    limits = GuardrailLimits(min_budget_micros={Platform.GOOGLE_ADS: 50 * USD})
    [decision] = judge(budget("c3", 50 * USD, 45 * USD), limits=limits)
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "platform_min_budget"


def test_stale_old_value_is_blocked_so_the_agent_re_proposes() -> None:
    [decision] = judge(budget("c1", 90 * USD, 95 * USD))
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "stale_value"
    assert "90.00 USD" in decision.message and "100.00 USD" in decision.message


def test_unknown_entity_and_unknown_account_are_blocked() -> None:
    missing_entity = budget("c404", 100 * USD, 110 * USD)
    missing_account = budget("c1", 100 * USD, 110 * USD, account_id="other")
    decisions = judge(missing_entity, missing_account)
    assert [d.verdict for d in decisions] == [Verdict.BLOCKED, Verdict.BLOCKED]
    assert {d.rule_id for d in decisions} == {"unknown_entity"}


def test_entity_on_another_platform_than_the_snapshot_is_unknown() -> None:
    action = budget("c1", 100 * USD, 110 * USD, platform=Platform.META)
    [decision] = judge(action)
    assert decision.rule_id == "unknown_entity"


def test_action_kind_that_does_not_fit_the_entity_kind_is_blocked() -> None:
    action = SetBid(
        action_id="x",
        entity=ref(EntityKind.CREATIVE, "ad1"),
        agent=AgentName.BID_SHIFTER,
        reason="r",
        old_cpc_bid_micros=USD,
        new_cpc_bid_micros=USD + 1,
    )
    [decision] = judge(action)
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "target_kind"


def test_pause_and_enable_of_a_creative_follow_its_status() -> None:
    pause = PauseCreative(
        action_id="p",
        entity=ref(EntityKind.CREATIVE, "ad1"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="fatigue",
        old_status=Status.ENABLED,
    )
    enable_stale = EnableCreative(
        action_id="e",
        entity=ref(EntityKind.CREATIVE, "ad1"),
        agent=AgentName.CREATIVE_ROTATION,
        reason="fresh",
        old_status=Status.PAUSED,
    )
    decisions = judge(pause, enable_stale)
    assert decisions[0].verdict is Verdict.ALLOWED
    assert decisions[1].verdict is Verdict.BLOCKED
    assert decisions[1].rule_id in ("stale_value", "conflicting_action")


def test_action_that_changes_nothing_is_blocked_as_no_change() -> None:
    [decision] = judge(bid("k1", USD, USD))
    assert decision.rule_id == "no_change"


# -- batch rules ---------------------------------------------------------------------------------


def test_rebalance_that_conserves_the_total_is_allowed() -> None:
    decisions = judge(budget("c1", 100 * USD, 115 * USD), budget("c2", 100 * USD, 85 * USD))
    assert [d.verdict for d in decisions] == [Verdict.ALLOWED, Verdict.ALLOWED]


def test_increase_without_a_matching_decrease_is_blocked_by_the_account_cap_by_default() -> None:
    [decision] = judge(budget("c1", 100 * USD, 110 * USD))
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "account_budget_cap"
    assert "250.00 USD" in decision.message


def test_increases_are_clipped_in_order_so_the_total_fits_the_cap() -> None:
    limits = GuardrailLimits(account_daily_budget_cap_micros=270 * USD, allow_total_budget_increase=True)
    decisions = judge(budget("c1", 100 * USD, 115 * USD), budget("c2", 100 * USD, 115 * USD), limits=limits)
    assert decisions[0].verdict is Verdict.ALLOWED
    assert decisions[1].verdict is Verdict.CLIPPED
    assert decisions[1].rule_id == "account_budget_cap"
    assert decisions[1].final_action.new_daily_budget_micros == 105 * USD  # type: ignore[union-attr]


def test_decreases_later_in_the_batch_make_room_for_earlier_increases() -> None:
    decisions = judge(budget("c1", 100 * USD, 110 * USD), budget("c3", 50 * USD, 40 * USD))
    assert [d.verdict for d in decisions] == [Verdict.ALLOWED, Verdict.ALLOWED]


def test_explicit_cap_below_the_current_total_blocks_increases_even_with_decreases() -> None:
    limits = GuardrailLimits(account_daily_budget_cap_micros=200 * USD)
    decisions = judge(budget("c1", 100 * USD, 110 * USD), budget("c3", 50 * USD, 40 * USD), limits=limits)
    assert decisions[0].verdict is Verdict.BLOCKED
    assert decisions[0].rule_id == "account_budget_cap"
    assert decisions[1].verdict is Verdict.ALLOWED


def test_second_action_on_the_same_entity_is_blocked_as_duplicate_or_conflicting() -> None:
    decisions = judge(bid("k1", USD, 1_100_000, "a1"), bid("k1", USD, 1_100_000, "a2"), bid("k1", USD, 1_050_000, "a3"))
    assert decisions[0].verdict is Verdict.ALLOWED
    assert (decisions[1].verdict, decisions[1].rule_id) == (Verdict.BLOCKED, "duplicate_action")
    assert (decisions[2].verdict, decisions[2].rule_id) == (Verdict.BLOCKED, "conflicting_action")


def test_reused_action_id_is_blocked() -> None:
    decisions = judge(bid("k1", USD, 1_100_000, "same"), bid("k2", USD, 1_100_000, "same"))
    assert decisions[1].verdict is Verdict.BLOCKED
    assert decisions[1].rule_id == "duplicate_action"


def test_increase_above_the_approval_threshold_needs_approval() -> None:
    limits = GuardrailLimits(approval_above_micros=5 * USD)
    decisions = judge(budget("c1", 100 * USD, 110 * USD), budget("c2", 100 * USD, 90 * USD), limits=limits)
    assert decisions[0].verdict is Verdict.NEEDS_APPROVAL
    assert decisions[0].rule_id == "approval_threshold"
    assert not decisions[0].may_apply
    assert decisions[0].final_action is not None
    assert decisions[1].verdict is Verdict.ALLOWED  # a decrease never needs approval


def test_one_decision_per_action_in_the_same_order() -> None:
    actions = [bid("k1", USD, 1_100_000), budget("c404", 1, 2), bid("k2", USD, 900_000)]
    decisions = judge(*actions)
    assert [d.action_id for d in decisions] == [a.action_id for a in actions]


def test_no_limits_configured_means_the_conservative_defaults() -> None:
    [decision] = evaluate([budget("c1", 100 * USD, 90 * USD)], {"acct": make_snapshot()}, None, context=CTX)
    assert decision.final_action.new_daily_budget_micros == 90 * USD  # type: ignore[union-attr]
    [decision] = evaluate([budget("c1", 100 * USD, 50 * USD)], {"acct": make_snapshot()}, None, context=CTX)
    assert decision.final_action.new_daily_budget_micros == 80 * USD  # type: ignore[union-attr]


# -- failing closed --------------------------------------------------------------------------------


def test_rule_that_raises_blocks_the_action_as_filter_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_c: object) -> None:
        raise RuntimeError("rule exploded")

    monkeypatch.setattr(rules, "check_protected", broken)
    [decision] = judge(bid("k1", USD, 1_100_000))
    assert decision.verdict is Verdict.BLOCKED
    assert decision.rule_id == "filter_error"
    assert decision.final_action is None


def test_values_smuggled_past_pydantic_are_blocked_as_invalid() -> None:
    nan_bid = SetBid.model_construct(**{**bid("k1", USD, 1_100_000).__dict__, "new_cpc_bid_micros": float("nan")})
    negative = SetBid.model_construct(**{**bid("k2", USD, 1_100_000).__dict__, "new_cpc_bid_micros": -5})
    decisions = judge(nan_bid, negative, "not an action")
    assert [d.rule_id for d in decisions] == ["invalid_action"] * 3


def test_wrong_limits_type_raises_a_guardrail_error() -> None:
    with pytest.raises(GuardrailError):
        evaluate([], {}, {"max_change_pct": 100}, context=CTX)  # type: ignore[arg-type]


# -- gate ------------------------------------------------------------------------------------------


def test_gate_clears_allowed_and_clipped_decisions_with_the_clipped_value() -> None:
    decisions = judge(bid("k1", USD, 1_100_000), bid("k2", USD, 5 * USD), budget("c404", 1, 2))
    clearances = gate(decisions)
    assert [c.action.action_id for c in clearances] == [decisions[0].action_id, decisions[1].action_id]
    assert verify_clearance(clearances[1]).new_cpc_bid_micros == 1_200_000  # type: ignore[union-attr]


def test_gate_clears_needs_approval_only_when_approved() -> None:
    limits = GuardrailLimits(approval_above_micros=5 * USD)
    decisions = judge(budget("c1", 100 * USD, 110 * USD), budget("c2", 100 * USD, 90 * USD), limits=limits)
    assert [c.action.action_id for c in gate(decisions)] == [decisions[1].action_id]
    approved = gate(decisions, approved={decisions[0].action_id: True})
    assert [c.verdict for c in approved] == ["approved", "allowed"]


def test_gate_refuses_a_decision_built_by_hand() -> None:
    forged = Decision(
        action_id="k-k1",
        verdict=Verdict.ALLOWED,
        rule_id="all_checks_passed",
        message="trust me",
        final_action=bid("k1", USD, 50 * USD, "k-k1"),
    )
    with pytest.raises(UnfilteredActionError):
        gate([forged])


def test_gate_refuses_a_decision_edited_after_the_filter() -> None:
    [decision] = judge(bid("k1", USD, 1_100_000))
    inflated = decision.final_action.model_copy(update={"new_cpc_bid_micros": 19 * USD})  # type: ignore[union-attr]
    with pytest.raises(UnfilteredActionError):
        gate([decision.model_copy(update={"final_action": inflated})])


def test_gate_refuses_everything_while_writes_are_paused() -> None:
    decisions = judge(bid("k1", USD, 1_100_000))
    with pytest.raises(WritesPausedError):
        gate(decisions, paused=True)
